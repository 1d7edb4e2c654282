"""Run host commands for the cluster; a failure becomes a :class:`ClusterError`.

The host tools (``ip``, ``mount``, ``debootstrap``, ``systemd-nspawn``,
``nsenter``, ``ssh-keygen``) are run with a plain argv, never a shell, and
always with the C locale so that their messages are stable.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from sovstack.core.services import ComponentError

__all__ = ["ClusterError", "run", "try_run"]


class ClusterError(ComponentError):
    """The local cluster could not be made, used or removed; the message says why."""


def _env() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C"}


def _spawn(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, env=_env(),
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def run(argv: Sequence[str], timeout: float = 120.0) -> str:
    """Run ``argv``; return its stdout, or raise with its stderr when it fails."""
    try:
        done = _spawn(argv, timeout)
    except FileNotFoundError as exc:
        raise ClusterError(f"cannot run {argv[0]}: it is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{' '.join(argv)} did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise ClusterError(f"{' '.join(argv)} failed (exit {done.returncode}): {detail}")
    return done.stdout


def try_run(argv: Sequence[str], timeout: float = 30.0) -> tuple[int, str]:
    """Run ``argv`` and return (exit status, stdout); never raise for a failing command."""
    try:
        done = _spawn(argv, timeout)
    except (OSError, subprocess.TimeoutExpired):
        return 127, ""
    return done.returncode, done.stdout
