"""Sum usage per group of client, model, site and/or UTC day.

A request is counted from its ``accepted`` record (which fixes its group: the
client, model and site the gateway authorised, and the day it was accepted)
and its one end record (``completed``, ``aborted`` or ``error``), which holds
what it used: ``tokens`` ``{prompt, completion}``, and ``gpu_us`` and
``energy_mj`` (integers in the record, audit/records.py) where the node could
measure them, summed here as ``gpu_seconds`` and ``energy_j``. A value that is absent or
null is unknown, never zero: each sum comes with the number of requests
whose value it lacks (``*_unknown``), and an accepted request whose end
record the checkpoint does not cover yet is ``unfinished`` and unknown in
every sum. ``denied`` records are no usage and are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sovstack.audit.checkpoint import Checkpoint
from sovstack.usage.errors import ReportError
from sovstack.usage.source import Covered

__all__ = ["DIMENSIONS", "ENDS", "MEASURES", "Group", "Report", "aggregate", "parse_by"]

DIMENSIONS: Final = ("client", "model", "site", "day")
ENDS: Final = ("completed", "aborted", "error")
# What is summed where an end record knows it (tokens from its ``tokens`` object).
MEASURES: Final = ("prompt_tokens", "completion_tokens", "gpu_seconds", "energy_j")

Key = tuple[str | None, ...]


def parse_by(text: str) -> tuple[str, ...]:
    """``"client,model"`` -> ``("client", "model")``; :class:`ReportError` on anything else."""
    names = tuple(part.strip() for part in text.split(","))
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown or not names:
        raise ReportError(
            f"--by takes a comma-separated list of {', '.join(DIMENSIONS)}; got {text!r}"
        )
    if len(set(names)) != len(names):
        raise ReportError(f"--by names a dimension twice: {text!r}")
    return names


@dataclass
class Group:
    """One row: the usage of the requests whose dimensions equal ``key`` (in ``by`` order)."""

    key: Key
    requests: int = 0
    completed: int = 0
    aborted: int = 0
    error: int = 0
    unfinished: int = 0
    sums: dict[str, int | float] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))
    unknown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))

    def add(self, ended: str | None, values: Mapping[str, int | float | None]) -> None:
        self.requests += 1
        if ended is None:
            self.unfinished += 1
        else:
            setattr(self, ended, getattr(self, ended) + 1)
        for name in MEASURES:
            value = values.get(name)
            if value is None:
                self.unknown[name] += 1
            else:
                self.sums[name] += value

    def merge(self, other: Group) -> None:
        for name in ("requests", *ENDS, "unfinished"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in MEASURES:
            self.sums[name] += other.sums[name]
            self.unknown[name] += other.unknown[name]


@dataclass(frozen=True)
class Report:
    """Groups in key order, their total, and the checkpoints (one per log) they cover."""

    by: tuple[str, ...]
    checkpoints: list[Checkpoint]
    groups: list[Group]
    total: Group
    uncovered: int
    warnings: list[str]


def _number(value: Any, name: str, request_id: Any, warnings: list[str]) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        warnings.append(f"request {request_id!r}: {name} {value!r} is not a non-negative number;"
                        " counted as unknown")  # fmt: skip
        return None
    if not math.isfinite(value):
        warnings.append(f"request {request_id!r}: {name} is not finite; counted as unknown")
        return None
    return value


def _values(end: Mapping[str, Any] | None, warnings: list[str]) -> dict[str, int | float | None]:
    if end is None:
        return {}
    tokens = end.get("tokens")
    if not isinstance(tokens, dict):
        tokens = {}
    rid = end.get("request_id")
    values = {
        name: _number(tokens.get(key), name, rid, warnings)
        for name, key in (("prompt_tokens", "prompt"), ("completion_tokens", "completion"))
    }
    for name, key, per_unit in (("gpu_seconds", "gpu_us", 1e6), ("energy_j", "energy_mj", 1e3)):
        value = end.get(key)
        if value is not None and (type(value) is not int or value < 0):
            warnings.append(f"request {rid!r}: {key} {value!r} is not a non-negative integer;"
                            " counted as unknown")  # fmt: skip
            value = None
        values[name] = None if value is None else value / per_unit
    return values


def _key(record: Mapping[str, Any], by: Sequence[str]) -> Key:
    fields = {
        "client": record.get("client"),
        "model": record.get("model"),
        "site": record.get("site"),
        "day": str(record.get("time", ""))[:10] or None,
    }
    return tuple(fields[name] for name in by)


def _requests(
    records: Iterable[Mapping[str, Any]], warnings: list[str]
) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """``(accepted record, its end record or None)`` per request.

    Only requests still open are held (memory follows the requests in flight,
    not the size of the log); those left open at the end come last, unfinished.
    """
    open_requests: dict[str, Mapping[str, Any]] = {}
    for record in records:
        request_id, event = record.get("request_id"), record.get("event")
        if not isinstance(request_id, str):
            continue
        if event == "accepted":
            open_requests.setdefault(request_id, record)
        elif event in ENDS:
            accepted = open_requests.pop(request_id, None)
            if accepted is None:
                warnings.append(
                    f"request {request_id!r} ends with no open accepted record (never accepted,"
                    " or ended twice); this end is left out"
                )
            else:
                yield accepted, record
    for accepted in open_requests.values():
        yield accepted, None


def _order(key: Key) -> tuple[tuple[bool, str], ...]:
    return tuple((part is None, part or "") for part in key)


def aggregate(logs: Sequence[Covered], by: Sequence[str]) -> Report:
    """The usage in ``logs`` (each already verified and cut at its checkpoint), grouped ``by``."""
    origins = [log.checkpoint.origin for log in logs]
    twice = sorted({o for o in origins if origins.count(o) > 1})
    if twice:
        raise ReportError(f"the log {twice[0]!r} is given twice: its usage would be counted twice")
    warnings = [f"{log.directory}: {w}" for log in logs for w in log.warnings]
    groups: dict[Key, Group] = {}
    for log in logs:
        for start, end in _requests(log.records, warnings):
            key = _key(start, by)
            group = groups.setdefault(key, Group(key))
            group.add(None if end is None else str(end["event"]), _values(end, warnings))
    total = Group(("total",) * len(by))
    for group in groups.values():
        total.merge(group)
    return Report(
        tuple(by),
        [log.checkpoint for log in logs],
        sorted(groups.values(), key=lambda g: _order(g.key)),
        total,
        sum(log.uncovered for log in logs),
        warnings,
    )
