"""``sovstack usage report``: who used how much of which model, from the audit log alone.

The phases, each in its own module:

* **read** (:mod:`.source`) — verify each log offline, then read exactly the
  records its latest signed checkpoint covers (entries after it are not yet
  published and are left out, so a report can always be re-derived); a
  folder of worker logs (:func:`read_site`) gives one log per worker;
* **aggregate** (:mod:`.aggregate`) — per group of client, model, site and/or
  day: requests accepted, how they ended, tokens, GPU-seconds and joules,
  with the requests whose value is unknown counted beside each sum;
* **render** (:mod:`.formats`) — JSON, CSV or one self-contained HTML page,
  each naming the checkpoints the figures cover.

Errors: :class:`ReportError` (a usage problem: exit 2) here, and the audit
package's :class:`~sovstack.audit.VerificationError` (exit 1) when a log does
not verify.
"""

from __future__ import annotations

from sovstack.usage.aggregate import DIMENSIONS, Group, Report, aggregate, parse_by
from sovstack.usage.errors import ReportError
from sovstack.usage.source import Covered, read_covered, read_site

__all__ = [
    "DIMENSIONS",
    "Covered",
    "Group",
    "Report",
    "ReportError",
    "aggregate",
    "parse_by",
    "read_covered",
    "read_site",
]
