"""House rule: product code (search_service/, embeddings/) has no module over 400 lines and no function over 50."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("search_service", "embeddings")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _offences(path: Path, root: Path = ROOT) -> list[str]:
    rel = path.relative_to(root).as_posix()
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
    """Every offence in product code (no exceptions)."""
    return [o for p in _modules() for o in _offences(p)]


def test_modules_and_functions_stay_small() -> None:
    assert _modules(), "no product modules found"
    found = offenders()
    assert not found, "over the size limits:\n" + "\n".join(found)


def test_the_check_catches_an_oversized_function(tmp_path: Path) -> None:
    """The check itself can fail: a 51-line function and a 401-line module are reported."""
    body = "\n".join(f"    x{i} = {i}" for i in range(50))
    module = tmp_path / "big.py"
    module.write_text(f"def big():\n{body}\n" + "\n" * 350, encoding="utf-8")
    found = _offences(module, root=tmp_path)
    assert any("big(): 51 lines" in f for f in found) and any("401 lines" in f for f in found), found
