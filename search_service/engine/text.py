"""Product text and what shoppers type, made alike before they meet: the ingest path stores names, brands,
descriptions and category paths in this form, and the API reads `q`, `brand` and suggestion prefixes in it.

- Composed (NFC): macOS and PDFs paste decomposed accents.
- Full-width Latin letters, digits and signs (U+FF01-FF5E, and the ideographic space U+3000) as their ASCII
  forms, and the Latin ligatures (U+FB00-FB06) as their letters: Japanese, Chinese and Korean input methods type
  `ＯＡＴ ＭＩＬＫ`, PDFs paste `ﬂour`, and neither matched the words. Only these compatibility forms: the rest of
  NFKC would change what a name says (`™` to `TM`, `m²` to `m2`, `½` to `1⁄2`).
- Invisible characters that never mean anything in a product's text dropped wherever they are: soft hyphens
  (they split `choco­late` into two words), zero-width spaces, word joiners, BOMs. The zero-width (non-)joiners
  stay: Persian and Indic words and emoji sequences need them.
- Surrounding whitespace and invisible characters (right-to-left marks pasted with a name, Hangul fillers:
  INVISIBLE_CHARS) trimmed: a brand held `U+200F RTL`, which its facet listed and its filter never matched.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

_FOLDED = {0x3000: " "} | {code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}
_FOLDED |= {code: unicodedata.normalize("NFKC", chr(code)) for code in range(0xFB00, 0xFB07)}
_DROPPED = dict.fromkeys((0x00AD, 0x200B, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF))
_TRANSLATION = _FOLDED | _DROPPED


# What renders as nothing, trimmed from text's ends as whitespace is: Unicode's format characters (Cf) of the Basic
# Multilingual Plane (a BOM, a zero-width space, a right-to-left mark) and the letters and symbols drawn blank (the
# Hangul fillers U+115F, U+1160, U+3164, U+FFA0, the braille blank U+2800). One list, as a regex class's body, for
# every path: q, brands, listing rows, stores, and the API's patterns (params.py); the BMP only, since a JSON Schema
# pattern has no escape for the other planes.
INVISIBLE_CHARS = (
    r"\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u180e"
    r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufeff\uffa0\ufff9-\ufffb"
)
_INVISIBLE = re.compile(f"[{INVISIBLE_CHARS}]")


def _trimmable(ch: str) -> bool:
    return ch.isspace() or _INVISIBLE.match(ch) is not None


def trim_invisible(text: str) -> str:
    """`text` without surrounding whitespace or invisible characters (INVISIBLE_CHARS: a BOM, a right-to-left mark,
    a Hangul filler)."""
    start, end = 0, len(text)
    while start < end and _trimmable(text[start]):
        start += 1
    while end > start and _trimmable(text[end - 1]):
        end -= 1
    return text[start:end]


def searchable(text: str) -> str:
    """`text` as it is stored and matched (the module says how); may be empty."""
    if text.isascii():  # the common case: nothing to fold, drop or compose
        return text.strip()
    return trim_invisible(unicodedata.normalize("NFC", text.translate(_TRANSLATION)))


# No-break spaces, which glibc's iswspace (PostgreSQL's t_isspace) does not call spaces and Python's split does: read
# as spaces in what is typed, so `milk<NBSP>-oat` excludes oat in search (websearch read `milk<NBSP>-oat` as one word
# and wanted oat) as it did in suggest (split on it). U+0085, also one, is a control character the API refuses.
_QUERY_SPACES = dict.fromkeys((0x00A0, 0x2007, 0x202F), " ")
# Apostrophe-likes typed for `'` (iOS and macOS type `’`): suggest's prefixes compare text, so `goat’s` completed
# nothing that `goat's` did (search's parser splits words at either). Names hold `'`.
_APOSTROPHES = dict.fromkeys((0x0060, 0x00B4, 0x02BC, 0x2018, 0x2019, 0x201B), "'")
_QUERY_FOLDS = _QUERY_SPACES | _APOSTROPHES
# Unicode hyphens and dashes inside a word as `-` (`lactose‐fr` lost `Lactose-Free` in suggest); elsewhere they stay
# as typed: a `-` before a word is websearch's NOT, and a dash typed there is no exclusion.
_INNER_DASH = re.compile(r"(?<=[^\W_])[\u2010-\u2015\u2212\ufe63](?=[^\W_])")


Q_MAX_LENGTH = 256  # characters of `q`, as sent, that `/v1/search` takes (api/params.clean_query)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode's control characters (Cc): q and brand refuse them


def taken_as_query(text: str) -> bool:
    """Whether `/v1/search` takes `text` (a suggestion's, which the page sends as `q`, a brand's also as `brand`):
    no control characters, at most Q_MAX_LENGTH characters. A name stored with an ESC or a BEL, or past 256
    characters, was suggested, and the search its pick ran was a 400."""
    return len(text) <= Q_MAX_LENGTH and _CONTROL.search(text) is None


def query_text(q: str) -> str:
    """`q` as `/v1/search` and `/v1/suggest` both read it: `searchable`, with its no-break spaces as spaces, its
    apostrophe-likes as `'`, the hyphens and dashes inside its words as `-` and its runs of NOTs bounded
    (`bounded_nots`)."""
    if q.isascii():
        return bounded_nots(searchable(q.replace("`", "'") if "`" in q else q))
    return bounded_nots(_INNER_DASH.sub("-", searchable(q.translate(_QUERY_FOLDS))))


def _unaccent_table() -> dict[int, str]:
    """PostgreSQL's `unaccent` rules (contrib/unaccent, PostgreSQL 15; one character to its folded text, or to
    nothing) as a translation table: the same folding `plinqy_simple` applies to words (migration 0035)."""
    table: dict[int, str] = {}
    rules = (Path(__file__).parent / "data" / "unaccent.rules").read_text(encoding="utf-8")
    for line in rules.splitlines():
        source, _tab, folded = line.partition("\t")
        table[ord(source)] = folded.strip()
    return table


_UNACCENT = _unaccent_table()


def fold_accents(text: str) -> str:
    """`text` with accents folded and `ß`, `æ`, `œ` spelled out, as PostgreSQL's `unaccent` folds a word: a typed
    `pât` completes to the vocabulary's `pate` (search_term holds words as the keyword side matches them)."""
    return text if text.isascii() else text.translate(_UNACCENT)


# Lower-case letters whose capital is also another letter's, as that one: `KIRMIZI` lowers to `kirmizi`, `STRASSE`
# to `strasse`, and a name completion compares them with `Kırmızı`, `Straße` so.
_CASELESS = {ord("ı"): "i", ord("ß"): "ss"}


def caseless(lowered: str) -> str:
    """Lower-cased text (PostgreSQL's lower()) as `plinqy_caseless` folds it (migration 0055), what name completions
    compare: `ı` as `i`, `ß` as `ss`, so a name typed in capitals completes (`KIRMIZI E`: Kırmızı Elma). Accents
    stay: a name completion starts with what was typed."""
    return lowered if lowered.isascii() else lowered.translate(_CASELESS)


# A size glued to its unit (`1l`, `500g`, `1,5kg`, `6x1l`): the parser keeps it one token, which matches only names
# that glue it too, never `1 L` or `500 g`. Units as shops write them, case-insensitive; `x` is a pack's count
# (`6x`, `6x1l`). Letters before the digits (GU10, E14, CR2032) or a unit not listed (4K) are not sizes.
_UNITS = "kg|mg|g|ml|cl|dl|l|mm|cm|m|oz|lbs|lb|mah|ah|kwh|kw|v|w|mb|gb|tb|pack|pk|x"
_NUMBER = r"[0-9]+(?:[.,][0-9]+)?"
_SIZE = re.compile(rf"(?:([0-9]+)(x))?({_NUMBER})({_UNITS})", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+(?:[.,][^\W_]+)*")


def spaced_sizes(q: str, quote: str = '"') -> str | None:
    """`q` with each size glued to its unit spaced as a phrase (`whole milk 1l` -> `whole milk "1 l"`, `6x1l` ->
    `"6 x 1 l"`), a decimal comma as a point (`1,5kg` -> `"1.5 kg"`: the keyword side also reads it with commas), or
    None when it holds none: the keyword side matches `q` or this, so names that write it either way match. A
    phrase: `5g` spaced as two words matched any `5` and any `g` of a product's text (`5% fat, 300 g`). Inside a
    phrase typed (`-"1l"`, `"whole milk 1l"`) it is spaced without quotes of its own: those ended the phrase
    (`-""1 l""`: an empty phrase excluded, `1` and `l` wanted). `quote=""`: the sizes spaced alone, the text as
    typed otherwise (a suggestion's name prefix: `22mm ptfe th` -> `22 mm ptfe th`)."""

    def spaced(token: re.Match[str], mark: str) -> str:
        size = _SIZE.fullmatch(token.group())
        if size is None:
            return token.group()
        return mark + " ".join(part.replace(",", ".") for part in size.groups() if part) + mark

    def outside(token: re.Match[str]) -> str:
        return spaced(token, quote)

    def inside(token: re.Match[str]) -> str:
        return spaced(token, "")

    parts = q.split('"')  # the odd ones are inside a phrase (an unclosed quote: to the end, as websearch reads it)
    out = '"'.join(_TOKEN.sub(inside if n % 2 else outside, part) for n, part in enumerate(parts))
    return out if out != q else None


# Search-as-you-type: the last word typed, letters only, is also a prefix (Meilisearch's and Typesense's default).
# Punctuation around it is no part of it (`mozz.`, `(mozz`, `parac'`), but a quote or hyphen before it is an operator.
# 1-2 letters are a prefix only after a word (`whole mi`): alone they start too many words to be worth the scan.
_LAST_WORD = re.compile(r"(?:^|(?<=\s))[^\w\s\"-]*([^\W\d_]+)[^\w\s\"]*$")
_SHORT_PREFIX = 3  # letters below which a last word is a prefix only after a word
_SYNTAX = re.compile(r'"|(?:^|\s)-|(?:^|\s)or(?:\s|$)', re.IGNORECASE)  # websearch's phrase, NOT and OR
_MAX_WORDS = 8  # compound probes: a word's splits and each pair's join, none for a longer query
_OPERATOR = re.compile(r'"|(?:^|(?<=\s))(?:or|-+)(?=\s|$)', re.IGNORECASE)
# What `-` excludes, read as PostgreSQL 15's websearch_to_tsquery reads it (tsquery.c, gettoken_query_websearch), so
# that the vector side's filter, the text embedded and the compound and prefix words agree with the keyword side: a
# `-` where an operand may start (at the start, after a space, one of the operator characters `!&|()<`, a phrase's
# closing quote or another `-`) is a NOT of the next operand: a phrase (to the next quote or the end) or a word (to
# a space, an operator character, a quote or a colon). A `-` inside a word or a phrase is none (`x-ray`, `,-oat`,
# `"a -b"`), and two NOTs cancel (`--oat`: oat wanted). An `or` needs no reading here: read as a word, it ends
# where PostgreSQL's operator does, and what follows either is read alike.
_OPERATOR_CHARS = frozenset("!&|()<")
_WORD_ENDS = _OPERATOR_CHARS | {'"', ":"}
_NOT_SPACES = frozenset("\x85\xa0\u2007\u202f")  # no-break spaces: no space to glibc's iswspace (C.UTF-8)


def _pg_space(ch: str) -> bool:
    """A space as PostgreSQL's t_isspace reads it: C's isspace for ASCII, glibc's iswspace past it."""
    return ch in " \t\n\v\f\r" if ch < "\x80" else ch.isspace() and ch not in _NOT_SPACES


@dataclass(frozen=True)
class Negated:
    """An operand of `q` after a run of NOTs: q[start:operand] the NOTs (and operator characters between them),
    q[operand:end] the operand; excluded where the NOTs are odd in number."""

    start: int
    operand: int
    end: int
    nots: int

    @property
    def excluded(self) -> bool:
        return self.nots % 2 == 1


def negated_operands(q: str) -> list[Negated]:
    """The operands of `q` that a NOT reaches, as websearch_to_tsquery reads them (above); a NOT with no operand
    after it (`milk -`) reaches none."""
    return [n for n in _not_runs(q) if n.operand < n.end]


def _not_runs(q: str) -> list[Negated]:
    """`q`'s runs of NOTs, as negated_operands reads them, and a run at its end with no operand after it (`milk -`:
    operand == end == len(q))."""
    found: list[Negated] = []
    if "-" not in q:
        return found
    at, operand_next, nots, first_not = 0, True, 0, 0
    while at < len(q):
        ch = q[at]
        if not operand_next:  # after an operand: operator characters and spaces are skipped
            if ch in _OPERATOR_CHARS or _pg_space(ch):
                at += 1
            else:
                operand_next = True  # an implicit AND: `ch` starts the next operand
            continue
        if ch == "-":
            first_not, nots = (first_not if nots else at), nots + 1
        if ch == "-" or ch in _OPERATOR_CHARS or _pg_space(ch):
            at += 1
            continue
        end = at + 1
        if ch == '"':
            end = q.find('"', end) + 1 or len(q)
        else:
            while end < len(q) and q[end] not in _WORD_ENDS and not _pg_space(q[end]):
                end += 1
        if nots:
            found.append(Negated(first_not, at, end, nots))
        at, operand_next, nots = end, False, 0
    if nots:
        found.append(Negated(first_not, len(q), len(q), nots))
    return found


def bounded_nots(q: str) -> str:
    """`q` with each run of more than two NOTs as one `-` (an odd run) or `--` (an even one), the operator characters
    and spaces between them dropped: what it excludes is the same, and websearch_to_tsquery holds a run on a stack
    of 32 operators (tsquery.c, STACKDEPTH): 33 dashes raised `tsquery stack too small`. A run of two (`--oat`) and
    every other character stay as typed."""
    kept, at = [], 0
    for run in _not_runs(q):
        if run.nots > 2:
            kept += [q[at : run.start], "-" if run.excluded else "--"]
            at = run.operand
    return "".join(kept) + q[at:] if kept else q


def may_exclude(q: str) -> bool:
    """Whether `q` excludes an operand (`milk -oat`, `milk (-oat)`; not `milk --oat`, `x-ray`): websearch's NOT."""
    return any(n.excluded for n in negated_operands(q))


def exclusion_readings(q: str) -> list[str] | None:
    """product_filter's `excluding`: `q`, and `q` with its sizes spaced as the keyword side also reads it (a point
    and a comma: `spaced_sizes`), so `-500ml` excludes `500 ml` too; None where `q` excludes nothing."""
    if not may_exclude(q):
        return None
    sized = spaced_sizes(q)
    return [q] if sized is None else [q, sized, sized.replace(".", ",")]


def without_exclusions(q: str) -> str:
    """`q` without what `-` excludes, read as websearch_to_tsquery reads it (above), with the operator characters and
    spaces around it (`milk (-oat)`: `milk`), and without the NOTs that cancel (`milk --oat`: `milk oat`). `q`
    itself when it has no NOT."""
    negated = negated_operands(q)
    if not negated:
        return q
    kept, at = [], 0
    for n in negated:
        start = n.start
        while n.excluded and start > at and (q[start - 1] in _OPERATOR_CHARS or _pg_space(q[start - 1])):
            start -= 1
        kept.append(q[at:start])
        at = n.end if n.excluded else n.operand
        while n.excluded and at < len(q) and q[at] in _OPERATOR_CHARS:
            at += 1
        kept.append(" ")
    kept.append(q[at:])
    return " ".join("".join(kept).split())


def embedded_text(q: str) -> str:
    """The text the vector side embeds: `q` without its excluded words and phrases and websearch's operators (quotes,
    `or`, a lone `-`): `milk -oat` embedded as typed sits near oat milk. Empty for a query of excluded words only."""
    return " ".join(_OPERATOR.sub(" ", without_exclusions(q)).split())


def last_word_prefix(q: str) -> tuple[str, str] | None:
    """(the words before it, the last word folded as the vocabulary holds it) when `q` ends in a word of letters
    that no operator touches, 3+ letters or any after a word, else None. The words before it are read with their
    sizes spaced (`spaced_sizes`). Excluded words are left out first (`tooth pa -zq`: `pa` after `tooth`): the
    keyword side keeps their exclusion on the prefix's matches."""
    rest = without_exclusions(q)
    if rest != q and re.search(r"(?:^|\s)or$", rest, re.IGNORECASE):
        return None  # `milk or -oat`: its `or` is an operator, no word typed
    text = spaced_sizes(rest) or rest
    last = _LAST_WORD.search(text)
    if last is None:
        return None
    head = text[: last.start()].strip()
    head = head if re.search(r"[^\W_]", head) else ""  # punctuation alone (`( mozz`) is no word before it
    if head.count('"') % 2 or head.lower().endswith((" or", "-")) or head.lower() == "or":
        return None
    if len(last.group(1)) < _SHORT_PREFIX and not head:
        return None
    return head, fold_accents(last.group(1).lower())


def ends_in_space(q: str) -> bool:
    """Whether `q` as sent ends in whitespace (format characters after it aside): a last word followed by a space
    is typed whole, no prefix (Meilisearch's rule), though the API trims `q`."""
    end = len(q)
    while end and not q[end - 1].isspace() and _trimmable(q[end - 1]):
        end -= 1
    return bool(end) and q[end - 1].isspace()


def query_words(q: str) -> list[str]:
    """`q`'s words in order, folded as the vocabulary holds them, for the compound probes (`oatmilk`, `tooth paste`);
    none for a query using websearch's syntax (a phrase, an OR), whose words do not simply all match, or of more
    than 8 words (a compound alternative holds every word: the first 8 alone matched without the 9th). Excluded
    words (`tooth paste -mint`) are left out: they only remove matches, and the keyword side keeps them out of a
    compound's matches too."""
    q = without_exclusions(q)
    if _SYNTAX.search(q):
        return []
    words = [fold_accents(word.lower()) for word in _TOKEN.findall(spaced_sizes(q) or q)]
    return words if len(words) <= _MAX_WORDS else []
