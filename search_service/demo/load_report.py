"""What a seed did: rows and seconds per table, and the phases around the COPYs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TableStat:
    table: str
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LoadReport:
    """What a seed did. `tables`: table -> {"rows", "seconds", "rows_per_s"} of its COPY."""

    scale: str
    seed: int
    skipped: bool = False
    message: str = ""
    tables: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: int = 0
    copy_seconds: float = 0.0
    rows_per_s: float = 0.0
    generate_seconds: float = 0.0
    embed_seconds: float = 0.0
    index_seconds: float = 0.0
    analyze_seconds: float = 0.0
    seconds: float = 0.0
    vectors: int = 0  # products copied with a vector
    ai_tasks: int = 0  # products left for the worker to embed
    indexes_recreated: list[str] = field(default_factory=list)
    constraints_readded: list[str] = field(default_factory=list)

    def add(self, stat: TableStat) -> None:
        self.tables[stat.table] = {
            "rows": stat.rows,
            "seconds": round(stat.seconds, 3),
            "rows_per_s": round(stat.rows_per_s, 1),
        }
        self.rows += stat.rows
        self.copy_seconds += stat.seconds
        self.rows_per_s = self.rows / self.copy_seconds if self.copy_seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """Human-readable summary, one line per table."""
        if self.skipped:
            return [self.message]
        out = [f"seeded scale {self.scale!r} (seed {self.seed}) in {self.seconds:.1f}s"]
        for table, t in self.tables.items():
            out.append(
                f"  {table:<14} {int(t['rows']):>10,} rows  {t['seconds']:>8.2f}s  {t['rows_per_s']:>12,.0f} rows/s"
            )
        out.append(
            f"  copy {self.rows:,} rows at {self.rows_per_s:,.0f} rows/s; generate {self.generate_seconds:.1f}s, "
            f"embed {self.embed_seconds:.1f}s, indexes {self.index_seconds:.1f}s, analyze {self.analyze_seconds:.1f}s"
        )
        out.append(f"  vectors written: {self.vectors:,}; products queued for the worker: {self.ai_tasks:,}")
        if self.message:
            out.append(f"  {self.message}")
        return out
