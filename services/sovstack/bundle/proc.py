"""The build's tools (pip, apt, mvn, dpkg-scanpackages) run by ``core.proc``, as the bundle wants.

In the C locale (their messages are parsed), failing as :class:`BundleError`,
and echoing only the lines ``show`` picks (pip's and apt's progress is long).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sovstack.bundle.errors import BundleError
from sovstack.core import proc
from sovstack.core.progress import Echo

__all__ = ["run"]


def _quiet(line: str) -> str | None:
    return None


def run(
    argv: Sequence[str | Path],
    what: str,
    echo: Echo | None = None,
    show: Callable[[str], str | None] = _quiet,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run ``argv`` and return its output (with ``echo``, its errors too, in order)."""
    env = {"LC_ALL": "C", **(env or {})}
    return proc.run(argv, what, echo=echo, show=show, env=env, cwd=cwd, error=BundleError).stdout
