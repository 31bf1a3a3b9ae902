"""A `query` completion's word as the products write it: `crè` completes to `crème`, `Haferglück` to no `hafergluck`.

The vocabulary (`search_term`, `search_terms_of`) holds words with their accents folded (migration 0035), so that a
typo is corrected to a word the keyword index holds, and every path of `suggest` completed the last word to that
folded form: `Crème` was offered `creme`, `Rosé` `rose`, `fraî` `fraiche`, and a brand typed whole, `Haferglück`,
was offered again as the word `hafergluck` beside the brand (the page then wrote the misspelt pick into the box).
Each word is now shown as the names and brands of a few products holding it write it (lower case, as before):
the spelling that starts with the last word as typed, else the most frequent, else the folded word itself. A word
no product name or brand spells so (a stem) keeps its folded form. One round trip, only when a row completes a word.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from search_service.db.sql import statement
from search_service.engine.suggest_typed import WORD, lower_as_sql
from search_service.engine.text import fold_accents

SPELLING_PROBES = 16  # products read a word: its spellings are its products' own


def completed_word(label: str, head: str) -> str:
    """The word a `query` completion adds to the earlier words (its label is `head word`)."""
    return label[len(head) :].strip() if head else label


def best_spelling(term: str, texts: list[str], typed_last: str) -> str:
    """`term` (folded) as `texts` (product names and brands) write it, lower-cased: one starting with the word as
    typed first (`rosé` typed keeps `rosé` where `Rose` is also sold), then the most frequent, then `term`."""
    counts = Counter(
        word for text in texts for word in (lower_as_sql(w) for w in WORD.findall(text)) if fold_accents(word) == term
    )
    if not counts:
        return term
    return min(counts, key=lambda w: (not w.startswith(typed_last), -counts[w], w != term, w))


async def spelled(conn: Any, rows: list[Any], head: str, typed_last: str) -> list[Any]:
    """`rows` with each `query` completion's word spelt as its products write it (`head` kept as typed)."""
    terms = sorted({completed_word(r["label"], head) for r in rows if r["kind"] == "query"})
    if not terms:
        return rows
    stmt = statement("engine/suggest", "word_spellings")
    found = await conn.fetch(stmt.sql, *stmt.bind(terms=terms, probe_cap=SPELLING_PROBES))
    spelling = {r["term"]: best_spelling(r["term"], list(r["texts"]), typed_last) for r in found}
    out = []
    for row in rows:
        word = completed_word(row["label"], head) if row["kind"] == "query" else ""
        if spelling.get(word, word) != word:
            row = {**dict(row), "label": f"{head} {spelling[word]}".strip(" ")}
        out.append(row)
    return out
