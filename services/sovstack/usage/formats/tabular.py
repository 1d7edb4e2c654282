"""The report as rows: JSON (a document) and CSV (one row per group, no total row).

A sum is given with the number of requests whose value is unknown beside it
(``energy_j`` and ``energy_j_unknown``): a reader can tell "0 J" from "not
measured". CSV repeats the checkpoint columns on every row so that a row
copied out of the file still says what it covers.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Final

from sovstack.audit.checkpoint import Checkpoint
from sovstack.usage.aggregate import ENDS, MEASURES, Group, Report

__all__ = ["COUNTS", "checkpoint_fields", "row", "to_csv", "to_json"]

COUNTS: Final = ("requests", *ENDS, "unfinished")


def checkpoint_fields(checkpoint: Checkpoint) -> dict[str, Any]:
    return {"origin": checkpoint.origin, "size": checkpoint.size, "root": checkpoint.root.hex()}


def _figure(value: int | float) -> int | float:
    # Sums of measured floats carry binary noise; microseconds and millijoules are plenty.
    return value if isinstance(value, int) else round(value, 6)


def row(report: Report, group: Group) -> dict[str, Any]:
    """One group as a flat mapping: its dimensions, counts, sums and unknown counts."""
    values: dict[str, Any] = dict(zip(report.by, group.key, strict=True))
    values.update({name: getattr(group, name) for name in COUNTS})
    for name in MEASURES:
        values[name] = _figure(group.sums[name])
        values[f"{name}_unknown"] = group.unknown[name]
    return values


def to_json(report: Report) -> str:
    document = {
        "checkpoints": [checkpoint_fields(c) for c in report.checkpoints],
        "by": list(report.by),
        "groups": [row(report, g) for g in report.groups],
        "total": {k: v for k, v in row(report, report.total).items() if k not in report.by},
        "entries_after_checkpoints": report.uncovered,
        "warnings": report.warnings,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    # A spreadsheet would run a client name such as "=HYPERLINK(...)" as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = [*report.by, *COUNTS, *(f"{m}{s}" for m in MEASURES for s in ("", "_unknown"))]
    cps = [checkpoint_fields(c) for c in report.checkpoints]
    named = [";".join(str(c[part]) for c in cps) for part in ("origin", "size", "root")]
    writer.writerow([*columns, "checkpoint_origin", "checkpoint_size", "checkpoint_root"])
    for group in report.groups:
        values = row(report, group)
        writer.writerow([*(_cell(values[c]) for c in columns), *named])
    return out.getvalue()
