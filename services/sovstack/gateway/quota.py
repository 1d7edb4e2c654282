"""Each client's usage in the current UTC day and month: what the policy's quotas judge.

The ledger is counted from audit records only, so the same function serves
both ways it is fed: :meth:`Ledger.rebuild` reads the whole log once at start
(after the abandoned requests are closed, before any request is taken), and
:meth:`Ledger.count` takes each record the gateway makes durable. Usage
therefore survives a restart exactly as far as the log does, and a request
is counted once its record is durable, never before.

What counts, per client (the ``client`` of the records):

* ``requests``: ``accepted`` records (counted at acceptance, so requests in
  flight count against a request budget at once);
* ``tokens``: prompt + completion tokens of the request's end record;
* ``joules``: its ``energy_mj`` / 1000 where the node measured energy;
  a request whose energy is unknown adds nothing (the report says how many).

A request belongs to the period (day, month) of its ``accepted`` record, as
in ``sovstack usage report``; its end record adds to that period even when
it ends after midnight. Periods other than the current day and month are
dropped. The gateway sends :meth:`usage` to the policy as ``input.usage``
(policies/sovstack/quota): counting costs a dict update per record and no
network round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from time import gmtime, strftime
from typing import Any, Final

from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import Scanner

__all__ = ["Ledger", "Usage"]

_ENDS: Final = frozenset({"completed", "aborted", "error"})


@dataclass
class Usage:
    """One client's counts in one period."""

    requests: int = 0
    tokens: int = 0
    energy_mj: int = 0

    def as_input(self, period: str) -> dict[str, Any]:
        return {
            "period": period,
            "requests": self.requests,
            "tokens": self.tokens,
            "joules": self.energy_mj / 1000,
        }


def _periods(time: str) -> tuple[str, str]:
    """The day and month of a record's ``time`` ("2026-12-07T…Z" -> "2026-12-07", "2026-12")."""
    return time[:10], time[:7]


def _now() -> str:
    # The prefix of a record's time (all _periods reads), cheaper than format_time per request.
    return strftime("%Y-%m-%dT%H:%M:%SZ", gmtime())


class Ledger:
    """Usage per client and period, counted from audit records (see the module docstring)."""

    def __init__(self, clock: Callable[[], str] = _now) -> None:
        self._clock = clock  # the time now, in a record's text form
        self._open: dict[str, tuple[str, str, str]] = {}  # request id -> client, day, month
        self._used: dict[tuple[str, str], Usage] = {}  # (client, day or month) -> usage
        self._current: tuple[str, str] = _periods(clock())

    def rebuild(self, directory: Path) -> int:
        """Count every record of the log in ``directory``; the number of records read.

        Blocking (it reads the whole log): run it in a worker thread, once, at start.
        """
        read = 0
        for _, data, _ in Scanner(directory):
            self.count(decode_entry(data)[2])
            read += 1
        return read

    def count(self, record: Mapping[str, Any]) -> None:
        """Add one durable record's usage (records other than accepted and end ones add none)."""
        event, client = record["event"], record["client"]
        if event == "accepted" and client is not None:
            day, month = _periods(record["time"])
            self._open[record["request_id"]] = (client, day, month)
            for usage in self._kept(client, day, month):
                usage.requests += 1
        elif event in _ENDS:
            opened = self._open.pop(record["request_id"], None)
            if opened is None:
                return  # an end whose acceptance is in no period we keep
            client, day, month = opened
            tokens = record["tokens"] or {}
            used = (tokens.get("prompt") or 0) + (tokens.get("completion") or 0)
            energy = record.get("energy_mj") or 0
            for usage in self._kept(client, day, month):
                usage.tokens += used
                usage.energy_mj += energy

    def usage(self, client: str | None) -> dict[str, Any]:
        """``input.usage`` for ``client``: its usage in the current UTC day and month."""
        self._roll()
        return {
            name: self._used.get((client or "", period), Usage()).as_input(period)
            for name, period in zip(("day", "month"), self._current, strict=True)
        }

    def _kept(self, client: str, *periods: str) -> list[Usage]:
        """The usage of ``client`` in each of ``periods`` that is current (others are not kept)."""
        return [
            self._used.setdefault((client, period), Usage())
            for period in periods
            if period in self._current
        ]

    def _roll(self) -> None:
        """Drop the usage of periods that ended (a new day or month starts from nothing)."""
        current = _periods(self._clock())
        if current == self._current:
            return
        self._current = current
        keep = set(current)
        for key in [k for k in self._used if k[1] not in keep]:
            del self._used[key]
