"""Writing a benchmark's result: its JSON and its Markdown, side by side under one stem."""

from __future__ import annotations

import contextlib
import json
import os
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def write_json_and_markdown(result: dict[str, Any], markdown: str, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """`out_dir/<stem>.json` and `out_dir/<stem>.md` (the directory created when missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def measured_run(benchmark: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`measure()`'s fields in a result that says when, on what, and under which load (before and after) it ran."""
    load_before = round(os.getloadavg()[0], 2)
    fields = measure()
    return {
        "benchmark": benchmark,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 2),
        **fields,
    }


def save_and_show(result: dict[str, Any], markdown: str, out_dir: Path, stem: str) -> None:
    """Both files written, the Markdown printed with where they went."""
    json_path, md_path = write_json_and_markdown(result, markdown, out_dir, stem)
    print(markdown, f"\nwrote {json_path} and {md_path}", sep="")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or what `platform` says where there is none."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or ""
