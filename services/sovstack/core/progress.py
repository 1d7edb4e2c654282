"""The progress callback every long step takes: one line of text for a person per call."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Echo"]

Echo = Callable[[str], None]
