"""Run the build's tools (pip, apt, mvn, dpkg-scanpackages) with their progress shown briefly."""

from __future__ import annotations

import collections
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sovstack.bundle.errors import BundleError

__all__ = ["Echo", "brief", "run"]

Echo = Callable[[str], None]


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


def run(
    argv: Sequence[str | Path],
    what: str,
    echo: Echo | None = None,
    show: Callable[[str], str | None] = lambda line: None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run ``argv``, echoing what ``show`` makes of each output line; return all output.

    On failure, raise a :class:`BundleError` that names the step and ends
    with the tail of the tool's output, which is what a person reads first.
    """
    tail: collections.deque[str] = collections.deque(maxlen=25)
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "LC_ALL": "C", **(env or {})},
            cwd=cwd,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise BundleError(f"{what}: {argv[0]} is not installed") from exc
    assert proc.stdout is not None  # noqa: S101 -- Popen with stdout=PIPE always sets it
    for raw in proc.stdout:
        line = raw.rstrip()
        lines.append(line)
        tail.append(line)
        shown = show(line) if echo is not None else None
        if echo is not None and shown:
            echo(f"    {shown}")
    if proc.wait() != 0:
        raise BundleError(
            f"{what} failed (exit {proc.returncode}): {brief(argv)}\n" + "\n".join(tail)
        )
    return "\n".join(lines)
