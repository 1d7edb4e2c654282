"""Find and run the real OPA and Regal binaries; the one error type of this package."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sovstack.core import proc
from sovstack.core.errors import SovstackError
from sovstack.core.paths import Paths
from sovstack.core.proc import Finished

__all__ = ["PolicyError", "opa_bin", "regal_bin", "run"]

# Regal looks for newer releases on GitHub unless told not to (its config says
# so too); nothing in this project calls home.
_QUIET = {"REGAL_DISABLE_VERSION_CHECK": "1"}


class PolicyError(SovstackError):
    """Policies that do not pass a check, or a tool or key that is missing; the message says why."""


def _binary(path: Path, step: str) -> Path:
    if not path.is_file():
        raise PolicyError(
            f"{path} is missing: run 'make deps' (or 'sovstack deps --only {step}') first"
        )
    return path


def opa_bin(paths: Paths) -> Path:
    """The pinned OPA binary, or a PolicyError naming how to fetch it."""
    return _binary(paths.opa_bin, "opa")


def regal_bin(paths: Paths) -> Path:
    """The pinned Regal binary, or a PolicyError naming how to fetch it."""
    return _binary(paths.regal_bin, "regal")


def run(
    argv: Sequence[str | Path],
    what: str,
    cwd: Path | None = None,
    stdin: str | None = None,
    check: bool = True,
) -> Finished:
    """Run a tool to its end (``core.proc``); with ``check``, a failure raises with its output."""
    return proc.run(
        argv, what, cwd=cwd, stdin=stdin, env=_QUIET, timeout=300, check=check, error=PolicyError
    )
