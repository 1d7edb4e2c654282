"""What every check runner is given: the inputs, the folder for evidence, the clock.

The clock is the only source of time in a report. A fixed clock (``--clock``)
makes a run reproducible: every timestamp is that instant, every measured
duration is zero, and the durations and timestamps the tools print into
their evidence (``opa test``, pytest's JUnit) are taken out, so two runs
over the same inputs give byte-identical files.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Clock", "Context", "Inputs", "LogInput", "Timer", "safe_name"]


@dataclass(frozen=True)
class LogInput:
    directory: Path
    pubkey: Path


@dataclass(frozen=True)
class Inputs:
    """Everything a report is computed from. Only ``policies`` is required."""

    policies: Path
    project_root: Path  # where the catalogue's pytest checks live (tests/)
    opa: Path
    logs: tuple[LogInput, ...] = ()
    witness_state: Path | None = None
    bundle: Path | None = None
    bundle_pubkey: Path | None = None
    hosts: tuple[str, ...] = ()  # testinfra host specs: ansible://all, ssh://..., local://
    inventory: Path | None = None
    proofs: int = 8  # inclusion proofs per log, at indexes derived from its root


@dataclass
class Timer:
    seconds: float = 0.0


@dataclass(frozen=True)
class Clock:
    """Wall time and durations; ``fixed`` pins both (durations are then 0)."""

    fixed: datetime | None = None

    def now(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC)

    @contextmanager
    def timed(self) -> Iterator[Timer]:
        timer = Timer()
        start = time.perf_counter()
        try:
            yield timer
        finally:
            if self.fixed is None:
                timer.seconds = round(time.perf_counter() - start, 3)


@dataclass
class Context:
    """A run in progress: inputs, the staging folder evidence goes to, the clock."""

    inputs: Inputs
    folder: Path
    clock: Clock = field(default_factory=Clock)
    # What the report shows beside the findings, by topic (e.g. "logs": one summary per log).
    facts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def write(self, relative: str, data: bytes | str) -> str:
        """Write one evidence file under the report folder; return its relative path."""
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return relative


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """``text`` as one file-name part: letters, digits, '.', '_' and '-' only."""
    return _UNSAFE.sub("_", text).strip("._") or "_"
