"""The usage report's own error: a request the report cannot answer (exit 2).

A log that does not verify raises the audit package's ``VerificationError``
instead (exit 1, with its evidence): tampering is not a usage problem.
"""

from __future__ import annotations

__all__ = ["ReportError"]


class ReportError(ValueError):
    """The report was asked for something it cannot give (bad grouping, the same log twice)."""
