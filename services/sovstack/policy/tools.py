"""Find and run the real OPA and Regal binaries; the one error type of this package."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from sovstack.core.paths import Paths

__all__ = ["PolicyError", "opa_bin", "regal_bin", "run"]

# Regal looks for newer releases on GitHub unless told not to (its config says
# so too); nothing in this project calls home.
_QUIET = {"REGAL_DISABLE_VERSION_CHECK": "1"}


class PolicyError(RuntimeError):
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
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion; with ``check``, a non-zero exit raises with its output."""
    args = [str(a) for a in argv]
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **_QUIET},
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PolicyError(f"{what}: could not run {args[0]}: {exc}") from exc
    if check and done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise PolicyError(f"{what} failed (exit {done.returncode}):\n{output}")
    return done
