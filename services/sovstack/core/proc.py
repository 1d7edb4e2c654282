"""Run a program to completion: the one place a sovstack package spawns a command.

Two ways to watch it. With ``echo``, its output and errors are read as one
stream, line by line, and each line that ``show`` turns into text is echoed as
progress (pip, apt, go, mvn, debootstrap). Without, its stdout and stderr are
kept apart, so the caller can parse stdout (opa, ip). Either way the last
lines of what it said are kept, and:

- a program that is not installed raises ``error(f"{what}: {program} is not installed")``;
- one that runs past ``timeout`` seconds is killed and raises
  ``error(f"{what}: ... did not finish within Ns")`` with the tail;
- with ``check``, a non-zero exit raises ``error(f"{what} failed (exit N): CMD")``
  followed by the tail, which is what a person reads first.

``error`` is the caller's own :class:`SovstackError` subclass, so each package
raises the type it documents. Programs are run with a plain argv (never a
shell), stdin closed unless ``stdin`` is given, and ``env`` laid over the
process environment.
"""

from __future__ import annotations

import collections
import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sovstack.core.errors import CommandError, SovstackError
from sovstack.core.progress import Echo

__all__ = ["Finished", "brief", "run"]

TAIL_LINES = 25


@dataclass(frozen=True)
class Finished:
    """A program that ran to its end. ``stderr`` is empty when it was merged into ``stdout``."""

    returncode: int
    stdout: str
    stderr: str
    tail: str  # its last lines (of stderr when it said anything there, else of stdout)


def brief(argv: Sequence[str | Path]) -> str:
    """The command line, with pip's dozens of '--platform TAG' pairs said once."""
    words: list[str] = []
    tags: list[str] = []
    pairs = iter(str(a) for a in argv)
    for word in pairs:
        if word == "--platform":
            tags.append(next(pairs, ""))
            if len(tags) == 1:
                words += ["--platform", "{tags}"]
        else:
            words.append(word)
    shown = " ".join(words)
    return shown.replace("{tags}", f"<{len(tags)} tags: {tags[0]} and older>") if tags else shown


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _all(line: str) -> str | None:
    return line


def run(
    argv: Sequence[str | Path],
    what: str,
    *,
    echo: Echo | None = None,
    show: Callable[[str], str | None] = _all,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
    timeout: float | None = None,
    check: bool = True,
    error: type[SovstackError] = CommandError,
) -> Finished:
    """Run ``argv`` to its end and return what it said; raise ``error`` as the module says."""
    args = [str(a) for a in argv]
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if echo is not None else subprocess.PIPE,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise error(f"{what}: {args[0]} is not installed") from exc
    except OSError as exc:
        raise error(f"{what}: cannot run {args[0]}: {exc}") from exc
    if echo is not None:
        done, expired = _streamed(proc, echo, show, timeout)
    else:
        done, expired = _captured(proc, stdin, timeout)
    if expired:
        raise error(
            f"{what}: {brief(args)} did not finish within {timeout:.0f}s; it said:\n{done.tail}"
        )
    if check and done.returncode != 0:
        raise error(f"{what} failed (exit {done.returncode}): {brief(args)}\n{done.tail}")
    return done


def _streamed(
    proc: subprocess.Popen[str],
    echo: Echo,
    show: Callable[[str], str | None],
    timeout: float | None,
) -> tuple[Finished, bool]:
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, expire) if timeout is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    lines: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        assert proc.stdout is not None  # noqa: S101 -- Popen with stdout=PIPE always sets it
        for raw in proc.stdout:
            line = raw.rstrip()
            lines.append(line)
            tail.append(line)
            shown = show(line)
            if shown:
                echo(f"    {shown}")
        code = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
    return Finished(code, "\n".join(lines), "", "\n".join(tail)), expired.is_set()


def _tail_of(out: str, err: str) -> str:
    # Both streams: a tool often says what failed on one and why on the other (apt
    # names the missing dependency on stdout and ends with 'E: ...' on stderr).
    return _tail("\n".join(part for part in (out.rstrip(), err.rstrip()) if part))


def _captured(
    proc: subprocess.Popen[str], stdin: str | None, timeout: float | None
) -> tuple[Finished, bool]:
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return Finished(proc.returncode, out, err, _tail_of(out, err)), True
    return Finished(proc.returncode, out, err, _tail_of(out, err)), False
