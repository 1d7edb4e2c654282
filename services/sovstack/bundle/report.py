"""What the commands show: the build's table of size and time per component, verify's summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sovstack.bundle.profiles import left_out
from sovstack.bundle.verify import Report

__all__ = ["Row", "human_size", "table", "verify_summary"]


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


def verify_summary(report: Report) -> list[str]:
    """What ``bundle verify`` prints: signer, bundle, a line per component, then the verdict."""
    lines = []
    manifest = report.manifest
    if manifest is not None:
        total = sum(f.size for f in manifest.files)
        lines += [
            f"signature  ok (key id {report.signer})",
            f"bundle     sovstack {manifest.version}, profile {manifest.profile}, built "
            f"{manifest.built_at}, {len(manifest.files)} files, {human_size(total)}",
            f"{'component':<12} {'files':>6} {'size':>10}  result",
        ]
        for name, tally in sorted(report.components.items()):
            result = "ok" if not tally.problems else f"{tally.problems} problem(s)"
            lines.append(f"{name:<12} {tally.files:>6} {human_size(tally.size):>10}  {result}")
        if not manifest.complete:
            missing = ", ".join(left_out(manifest.profile, manifest.contents))
            lines.append(f"note: an INCOMPLETE bundle; it leaves out: {missing}")
        last = report.installed.version if report.installed else "none recorded"
        lines.append(f"version    {manifest.version} (last installed: {last})")
    if report.ok:
        return [*lines, f"VERIFIED   {report.source}"]
    lines.append(f"FAILED     {report.source}: {len(report.problems)} problem(s)")
    return lines + [f"  {problem}" for problem in report.problems]
