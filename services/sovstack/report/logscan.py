"""The log checks that read every record: pairing and retention, from one pass.

- ``pairing``: every ``accepted`` record has exactly one end record
  (``completed``, ``aborted`` or ``error``), and no end record lacks one;
- ``retention``: the first record is at least six months old; a younger
  log *cannot yet* show it (never passed).

Only the entries the latest checkpoint covers are read: nothing else is proven.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sovstack.audit.checkpoint import Checkpoint
from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import Scanner
from sovstack.report.context import Context
from sovstack.report.model import FAIL, PASS, PENDING

__all__ = [
    "RETENTION_MONTHS",
    "Scan",
    "dump",
    "pairing",
    "retention",
    "retention_floor",
    "scan_entries",
]

RETENTION_MONTHS: Final = 6
_END_EVENTS: Final = frozenset({"completed", "aborted", "error"})


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def retention_floor(as_of: datetime, months: int = RETENTION_MONTHS) -> datetime:
    """``as_of`` moved back ``months`` calendar months (the day clamped to the month's end)."""
    month0 = as_of.year * 12 + as_of.month - 1 - months
    year, month = divmod(month0, 12)
    for day in range(as_of.day, 27, -1):
        try:
            return as_of.replace(year=year, month=month + 1, day=day)
        except ValueError:
            continue
    return as_of.replace(year=year, month=month + 1, day=min(as_of.day, 28))


class Scan:
    """What one pass over the entries covered by the latest checkpoint collects."""

    def __init__(self, wanted: set[int]) -> None:
        self.wanted = wanted
        self.lines: dict[int, bytes] = {}
        self.first_time: str | None = None
        self.accepted: set[str] = set()
        self.ends: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()


def scan_entries(directory: Path, size: int, wanted: set[int]) -> Scan:
    """One pass over the first ``size`` entries: the first time, pairs, ``wanted`` lines."""
    scan = Scan(wanted)
    for index, line, _leaf in Scanner(directory):
        if index >= size:
            break
        record = decode_entry(line)[2]
        if index == 0:
            scan.first_time = str(record.get("time"))
        if index in wanted:
            scan.lines[index] = line
        event, request = str(record.get("event")), str(record.get("request_id"))
        scan.counts[event] += 1
        if event == "accepted":
            scan.accepted.add(request)
        elif event in _END_EVENTS:
            scan.ends[request] += 1
    return scan


def pairing(ctx: Context, base: str, scan: Scan, latest: Checkpoint) -> tuple[str, str, str, str]:
    unpaired = sorted(r for r in scan.accepted if scan.ends[r] == 0)
    twice = sorted(r for r in scan.accepted if scan.ends[r] > 1)
    orphans = sorted(r for r in scan.ends if r not in scan.accepted)
    evidence = ctx.write(
        f"{base}/pairing.json",
        dump(
            {
                "entries": latest.size,
                "events": dict(sorted(scan.counts.items())),
                "accepted_without_end": unpaired,
                "accepted_with_several_ends": twice,
                "end_without_accepted": orphans,
            }
        ),
    )
    problems = [
        f"{len(found)} {what} (first: {found[0]})"
        for what, found in (
            ("accepted requests without an end record", unpaired),
            ("accepted requests with several end records", twice),
            ("end records without an accepted record", orphans),
        )
        if found
    ]
    if problems:
        return ("pairing", FAIL, "; ".join(problems), evidence)
    return (
        "pairing",
        PASS,
        f"all {len(scan.accepted)} accepted requests have one end record",
        evidence,
    )


def retention(ctx: Context, base: str, scan: Scan, latest: Checkpoint) -> tuple[str, str, str, str]:
    as_of = ctx.clock.now()
    floor = retention_floor(as_of)
    if scan.first_time is None:
        return ("retention", PENDING, "cannot yet be shown: the log holds no record", "")
    first = datetime.fromisoformat(scan.first_time.replace("Z", "+00:00"))
    age_days = (as_of - first).days
    evidence = ctx.write(
        f"{base}/retention.json",
        dump(
            {
                "first_record_time": scan.first_time,
                "as_of": as_of.isoformat(),
                "floor_months": RETENTION_MONTHS,
                "floor": floor.isoformat(),
                "age_days": age_days,
                "entries": latest.size,
            }
        ),
    )
    if first <= floor:
        return (
            "retention",
            PASS,
            f"the log reaches back {age_days} days, to {scan.first_time}: past the"
            f" {RETENTION_MONTHS}-month floor ({floor.date()})",
            evidence,
        )
    return (
        "retention",
        PENDING,
        f"cannot yet be shown: the first record is from {scan.first_time}, {age_days} days"
        f" ago; the {RETENTION_MONTHS}-month floor is {floor.date()}",
        evidence,
    )
