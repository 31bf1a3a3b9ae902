"""What a suggestion's typed text asks for: its prefix, the words before the last one and the last one
(`split_prefix`), and the other readings of the sizes glued to their unit in it, as search reads `q` both ways
(engine.md, "Sizes glued to their unit"): names completing the prefix with its sizes spaced (`name_prefixes`) and
products holding the earlier words with their sizes glued as typed (`glued_head`).
"""

from __future__ import annotations

import re

from search_service.engine.text import (
    caseless,
    fold_accents,
    negated_operands,
    spaced_sizes,
    without_exclusions,
)

PREFIX_MAX_LENGTH = 100
WORD = re.compile(r"\w+", re.UNICODE)
# A word before the last as PostgreSQL's parser reads it: a decimal point stays in it (`1.5`, `4.0`, names' words),
# where `\w+` split `1.5 l` into `1 5 l`, which no product holds.
_HEAD_WORD = re.compile(r"\w+(?:\.[0-9]+)*")


def lower_as_sql(text: str) -> str:
    """`lower()` as PostgreSQL computes it, a character at a time into one: Python's lowers `İ` to two characters
    and a word-final `Σ` to `ς`, so a name typed as stored (`İznik`, `ΟΔΟΣ`) matched nothing PostgreSQL lowered."""
    return text.lower() if text.isascii() else "".join(c.lower()[0] for c in text)


def _before_last(prefix: str) -> tuple[str, str]:
    """(the text before the last word, the last word as typed) of a prefix (`split_prefix`'s first part), the
    excluded words left out; the last word is empty where the prefix ends in none or it is excluded."""
    negated = negated_operands(prefix)
    text = without_exclusions(prefix) if negated else prefix
    words = list(WORD.finditer(text))
    if not words:
        return text, ""
    last_excluded = bool(negated) and negated[-1].excluded and negated[-1].end == len(prefix)
    if last_excluded or not (prefix[-1:].isalnum() or prefix.endswith("_")):
        return text, ""
    return text[: words[-1].start()], words[-1].group()


def split_prefix(q: str) -> tuple[str, str, str]:
    """(prefix, head, last_word): the whole typed text in lower case, the words before the last one, the last
    with its accents folded. Words that `-` excludes are neither (`milk -oat ch`: `milk`, `ch`), and an excluded last
    word is none (`milk -oat`: no completion, which would turn it into the word: `milk oat`). The words before the
    last are read with their sizes spaced, as search's prefix reads them (`text.last_word_prefix`): `1l haf` wanted
    a product word `1l`, which names writing `1 L` lack; a decimal size keeps its point (`1,5l pea`: `1.5 l`)."""
    prefix = " ".join(lower_as_sql(q).split())[:PREFIX_MAX_LENGTH]
    before, last = _before_last(prefix)
    if not WORD.search(before + last):
        return prefix, "", ""
    head = " ".join(_HEAD_WORD.findall(spaced_sizes(before) or before))
    return prefix, head, fold_accents(last)  # the last as the vocabulary holds words (migration 0035)


def glued_head(prefix: str) -> str | None:
    """The words before the last with their sizes as typed, where they glue one to its unit (`1l haf`: `1l`), or
    None: a `query` completion's products hold the head read either way, as search matches `q` (a name writing
    `Hafermilch 1l` lacks the `1` and `l` of the spaced reading, `1 l`)."""
    before, _last = _before_last(prefix)
    return " ".join(_HEAD_WORD.findall(before)) if spaced_sizes(before) is not None else None


def name_prefixes(prefix: str) -> list[str]:
    """The prefixes a product name completes, caseless (`text.caseless`) and in byte order: the typed one and, where
    it glues a size to its unit, the one with the size spaced (`22mm ptfe th` completes `22 mm PTFE Thread Seal
    Tape`, as search for `22mm ptfe thread` finds it). Neither starts the other: their names are disjoint ranges."""
    spaced = spaced_sizes(prefix, quote="")
    return sorted({caseless(prefix), caseless(spaced)}) if spaced is not None else [caseless(prefix)]
