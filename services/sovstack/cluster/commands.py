"""Run host commands for the cluster through ``core.proc``; a failure is a :class:`ClusterError`.

The host tools (``ip``, ``mount``, ``debootstrap``, ``systemd-nspawn``,
``nsenter``, ``ssh-keygen``) are run with a plain argv, never a shell, and
always with the C locale so that their messages are stable.
"""

from __future__ import annotations

from collections.abc import Sequence

from sovstack.core import proc
from sovstack.core.errors import SovstackError

__all__ = ["C_LOCALE", "ClusterError", "run", "try_run"]

C_LOCALE = {"LC_ALL": "C"}


class ClusterError(SovstackError):
    """The local cluster could not be made, used or removed; the message says why."""


def run(argv: Sequence[str], timeout: float = 120.0) -> str:
    """Run ``argv``; return its stdout, or raise with its stderr when it fails."""
    return proc.run(argv, argv[0], env=C_LOCALE, timeout=timeout, error=ClusterError).stdout


def try_run(argv: Sequence[str], timeout: float = 30.0) -> tuple[int, str]:
    """Run ``argv`` and return (exit status, stdout); never raise for a failing command."""
    try:
        done = proc.run(
            argv, argv[0], env=C_LOCALE, timeout=timeout, check=False, error=ClusterError
        )
    except ClusterError:
        return 127, ""
    return done.returncode, done.stdout
