"""Before a dispatcher starts: does the secret key open the subscriptions' stored signing secrets? A mistyped
PLINQY_SECRET_KEY_FILE makes a new key there, which opens none of them: every delivery would go unsigned."""

from __future__ import annotations

from typing import Any

from search_service.db.secretbox import SecretBox, SecretBoxError
from search_service.db.sql import statement


def signing_key_problem(conn: Any, box: SecretBox, source: str) -> str | None:
    """One line saying what is wrong and what to do when the key (from `source`) opens none of a few stored
    signing secrets; None when it opens one, or when there are none yet. conn: a psycopg connection."""
    tokens = [row[0] for row in conn.execute(statement("events/dispatch", "some_webhook_secrets").psycopg)]
    for token in tokens:
        try:
            box.decrypt(token.encode())
            return None
        except SecretBoxError:
            continue
    if not tokens:
        return None
    return (
        f"the secret key ({source}) opens none of the {len(tokens)} webhook signing secrets tried, so no delivery "
        "could be signed: point PLINQY_SECRET_KEY_FILE (or PLINQY_SECRET_KEY) at the key they were stored with "
        "(a mistyped path makes a new key there), then start again"
    )
