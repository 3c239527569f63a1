"""Rows, tables and the JSON results file."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

COLUMNS = ("benchmark", "N", "netreload", "reference", "ratio", "target", "met?")


@dataclass
class Row:
    """One line of a benchmark's table: netreload against its reference,
    both measured in this run. ``met`` is None when there is no target (or
    the target is not set for this N) and False when the measurement failed."""

    benchmark: str
    what: str
    n: int
    value: float | None
    reference: float | None
    unit: str
    reference_label: str = ""
    target: str = "—"
    met: bool | None = None
    note: str = ""
    detail: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.reference:
            return None
        return self.value / self.reference

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        if value < 1:
            return f"{value * 1000:.1f} ms"
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if unit == "writes":
        return f"{int(value)}"
    return f"{value:g} {unit}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:.1f}×" if ratio >= 10 else f"{ratio:.2f}×"


def fmt_met(row: Row) -> str:
    if row.met is None:
        return "n/a" if not row.note.startswith(("FAILED", "skipped")) else "—"
    return "yes" if row.met else "NO"


def table(rows: list[Row]) -> str:
    cells = [COLUMNS]
    for row in rows:
        reference = fmt(row.reference, row.unit)
        if row.reference_label and row.reference is not None:
            reference += f" ({row.reference_label})"
        cells.append(
            (
                row.what,
                str(row.n),
                fmt(row.value, row.unit) if row.value is not None else (row.note or "—"),
                reference,
                fmt_ratio(row.ratio),
                row.target,
                fmt_met(row),
            )
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    out = []
    for k, line in enumerate(cells):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"  * {row.what}, N={row.n}: {row.note}" for row in rows if row.note]
    return "\n".join(out + notes)


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 50 samples is the largest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
