"""House rule: product code (search_service/, embeddings/) has no module over 400 lines and no function over 50."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("search_service", "embeddings")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50

# Modules over the limits on this branch (exempt from both checks). The lead empties this list as the branches
# that split them are merged; nothing may be added to it. `test_the_allow_list_is_not_stale` fails once a
# listed module is within the limits, so an entry cannot outlive its reason.
ALLOWED_OVER = {
    "search_service/engine/vectors.py",  # split on the vectors branch
    # over before this round's redesign; not yet assigned:
    "search_service/db/schema.py",  # 437 lines
}


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _offences(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    text = path.read_text(encoding="utf-8")
    found: list[str] = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{rel}: {lines} lines (max {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=rel)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - start + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{rel}:{node.lineno} {node.name}(): {length} lines (max {MAX_FUNCTION_LINES})")
    return found


def offenders() -> list[str]:
    """Every offence outside the allow-list."""
    return [o for p in _modules() if p.relative_to(ROOT).as_posix() not in ALLOWED_OVER for o in _offences(p)]


def test_modules_and_functions_stay_small() -> None:
    assert _modules(), "no product modules found"
    found = offenders()
    assert not found, "over the size limits:\n" + "\n".join(found)


def test_the_allow_list_is_not_stale() -> None:
    within = [rel for rel in sorted(ALLOWED_OVER) if not (ROOT / rel).is_file() or not _offences(ROOT / rel)]
    assert not within, f"remove from ALLOWED_OVER (gone, or within the limits now): {within}"
