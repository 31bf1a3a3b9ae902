"""The docs hold together: every relative link of README.md and docs/*.md reaches a file that exists and, where it
names an anchor, a heading of that file (GitHub's slugs: a renamed heading broke links into it without a word), and
every command-line option is named beside its command."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import click

from search_service.cli.commands import cli

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(path: Path) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text lowercased, punctuation but `-` and `_` dropped, spaces to `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def test_every_relative_link_and_anchor_of_the_docs_resolves() -> None:
    broken = []
    for doc in documents():
        for line in prose_lines(doc):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):
                    continue  # http(s), mailto: not checked here (no network in tests)
                file_part, _, anchor = target.partition("#")
                linked = (doc.parent / file_part).resolve() if file_part else doc
                if not linked.exists():
                    broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_slugs_are_githubs() -> None:
    assert slug("`GET /v1/suggest?q&lat&lon&radius_m&bbox&limit`") == "get-v1suggestqlatlonradius_mbboxlimit"
    assert slug("2026-12-07, thirty-seventh session") == "2026-12-07-thirty-seventh-session"
    assert slug("Coarse rows for whole scans (measured, not built: branch `coarse-rows`)") == (
        "coarse-rows-for-whole-scans-measured-not-built-branch-coarse-rows"
    )


def command_options(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every (command path, long option) of the CLI."""
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += command_options(command, (*path, name))
            continue
        for param in command.params:
            if isinstance(param, click.Option):
                found += [((*path, name), flag) for flag in param.opts + param.secondary_opts if flag[:2] == "--"]
    return [(path, flag) for path, flag in found if flag != "--help"]


def test_every_command_line_option_is_documented_beside_its_command() -> None:
    """Each option is named in a document that names its command (the README's table or a docs page): `--help`
    says more, but an option named nowhere was found only by reading the code."""
    texts = [doc.read_text(encoding="utf-8") for doc in documents()]
    missing = []
    for path, flag in command_options(cli):
        command = re.compile(rf"(?<![\w-]){re.escape(path[-1])}(?![\w-])")
        option = re.compile(rf"{re.escape(flag)}(?![\w-])")
        if not any(command.search(text) and option.search(text) for text in texts):
            missing.append(f"{' '.join(path)} {flag}")
    assert not missing, "documented nowhere: " + ", ".join(missing)
