"""Render a usage :class:`~sovstack.usage.aggregate.Report` as JSON, CSV or HTML.

Every format names the checkpoints the figures cover (origin, size, root
hash in hex), so that a reader can check a report against the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sovstack.usage.aggregate import Report
from sovstack.usage.formats.html import to_html
from sovstack.usage.formats.tabular import to_csv, to_json

__all__ = ["FORMATS", "render"]

FORMATS: Final[dict[str, Callable[[Report], str]]] = {
    "json": to_json,
    "csv": to_csv,
    "html": to_html,
}


def render(report: Report, fmt: str) -> str:
    """``report`` as text in ``fmt`` (one of :data:`FORMATS`)."""
    return FORMATS[fmt](report)
