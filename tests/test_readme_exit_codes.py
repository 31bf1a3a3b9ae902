"""README's list of exit codes holds every code a command can give: it read as complete while `import csv --strict`
exits 3, `import csv` 75 on a lost connection, `db status` and `serve` 3."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI_CODE = ("search_service", "embeddings")
EXIT_CALL = re.compile(r"(?:sys\.exit|SystemExit)\(([^()]*)\)")
NAMED_CODE = re.compile(r"^\s*(\w*EXIT\w*|exit_code)\s*=\s*(\d+)", re.MULTILINE)


def codes_in_code() -> dict[int, list[str]]:
    """Each literal exit code in product code (sys.exit, SystemExit, *_EXIT and exit_code constants): where."""
    found: dict[int, list[str]] = {}
    for path in sorted(p for package in CLI_CODE for p in (ROOT / package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT).as_posix()
        numbers = [n for call in EXIT_CALL.findall(text) for n in re.findall(r"\b\d+\b", call)]
        numbers += [value for _name, value in NAMED_CODE.findall(text)]
        for number in numbers:
            found.setdefault(int(number), []).append(rel)
    return found


def readme_codes() -> set[int]:
    """The codes README's "Exit codes:" paragraph names, each opening a clause ("; 3 …")."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme.split("Exit codes:", 1)[1].split("\n\n", 1)[0]
    return {int(n) for n in re.findall(r"(?:^|[:;])\s+(\d+)\s", paragraph)}


def test_the_readme_lists_every_exit_code_a_command_gives() -> None:
    found = codes_in_code()
    assert {1, 3, 75, 130} <= set(found), found  # the scan itself finds them
    missing = {code: where for code, where in found.items() if code != 0 and code not in readme_codes()}
    assert not missing, f"exit codes the README does not list: {missing}"
