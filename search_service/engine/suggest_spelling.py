"""A `query` completion's word as the products write it: `crè` completes to `crème`, not the vocabulary's `creme`.

The vocabulary (`search_term`, `search_terms_of`) holds words with their accents folded (migration 0035), so that a
typo is corrected to a word the keyword index holds, and every path of `suggest` completed the last word to that
folded form: `Crème` was offered `creme`, `pât` `pate`, `fraî` `fraiche`, and the page wrote the pick into the box.
Each path already reads a product in scope holding the word (to know the word is in scope): it now also gives that
product's name (`source`: the index's first row, the narrow plans' smallest name, the walk's first found), and the
word is shown as that name writes it, lower-cased. A word the name does not spell (a brand's, a stem) keeps its
folded form; `merge` then shows it once beside the brand that spells it (`Haferglück`, not also `hafergluck`).
No round trip of its own.
"""

from __future__ import annotations

from typing import Any

from search_service.engine.suggest_typed import WORD, lower_as_sql
from search_service.engine.text import fold_accents


def completed_word(label: str, head: str) -> str:
    """The word a `query` completion adds to the earlier words (its label is `head word`)."""
    return label[len(head) :].strip() if head else label


def spelling(term: str, source: str | None) -> str:
    """`term` (folded) as the name `source` writes it, lower-cased; `term` where the name has no such word."""
    if not source or source.isascii():
        return term
    for word in WORD.findall(source):
        lowered = lower_as_sql(word)
        if lowered != term and fold_accents(lowered) == term:
            return lowered
    return term


def spelled(rows: list[Any], head: str) -> list[Any]:
    """`rows` with each `query` completion's word spelt as its source name writes it (`head` kept as typed)."""
    out = []
    for row in rows:
        if row["kind"] == "query":
            word = completed_word(row["label"], head)
            shown = spelling(word, row.get("source"))
            if shown != word:
                row = {**dict(row), "label": f"{head} {shown}".strip(" ")}
        out.append(row)
    return out
