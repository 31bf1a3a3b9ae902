"""Writing a benchmark's result: its JSON and its Markdown, side by side under one stem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json_and_markdown(result: dict[str, Any], markdown: str, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """`out_dir/<stem>.json` and `out_dir/<stem>.md` (the directory created when missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path
