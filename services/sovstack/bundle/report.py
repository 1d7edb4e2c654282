"""What a build shows: one line per step as it goes, and a table of size and time per component."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Row", "human_size", "table"]


@dataclass(frozen=True)
class Row:
    component: str
    files: int
    size: int
    seconds: float
    fetched: int
    reused: int


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def table(rows: Sequence[Row]) -> list[str]:
    """The per-component table printed at the end of a build, with a total line."""
    head = f"{'component':<12} {'files':>6} {'size':>10} {'time':>8}  new / cached"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.component:<12} {r.files:>6} {human_size(r.size):>10} {r.seconds:>7.1f}s  "
            f"{r.fetched} / {r.reused}"
        )
    lines.append("-" * len(head))
    total = Row(
        "total",
        sum(r.files for r in rows),
        sum(r.size for r in rows),
        sum(r.seconds for r in rows),
        sum(r.fetched for r in rows),
        sum(r.reused for r in rows),
    )
    lines.append(
        f"{total.component:<12} {total.files:>6} {human_size(total.size):>10} "
        f"{total.seconds:>7.1f}s  {total.fetched} / {total.reused}"
    )
    return lines
