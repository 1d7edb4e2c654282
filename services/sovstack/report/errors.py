"""The report's errors, one exit code each::

    ReportError     usage or I/O: the pack cannot be made or read (exit 2; nothing is signed)
    Refused         ``report verify``: a file of the pack is not what was signed (exit 1);
                    carries the first bad file and why

A pack whose controls are not satisfied is not an error: it is signed, and
``audit report`` exits 1.
"""

from __future__ import annotations

__all__ = ["Refused", "ReportError"]


class ReportError(Exception):
    """The report cannot be made or read; the message says why (exit 2)."""


class Refused(Exception):
    """A report folder does not verify: ``path`` is the first bad file, ``why`` says how."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why
