"""JSON Lines as the audit commands write and read them: one object per ``\\n``.

``audit export``, ``tail`` and ``prove`` print one JSON object a line, and
``audit verify-proof`` reads them back. A record may hold any text a client
sent (a model name is copied from the request), including characters that
Python's ``str.splitlines`` and many other tools take for line breaks: NEL
(U+0085), LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029). JSON
escapes the C0 ones (``\\v``, ``\\f``, ``\\x1c``-``\\x1e``) but not those
three, so :func:`dump_line` escapes them too, and :func:`split_lines` breaks
only at ``\\n``, the one separator of JSON Lines. Escaping changes no value:
the line decodes to the same object, and a proof's ``entry`` to the same bytes.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["dump_line", "split_lines"]

# Only inside JSON strings can these appear, so an escape there is always valid JSON.
_BREAKS: Final = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dump_line(value: Any) -> str:
    """``value`` as one JSON line (no newline), keys sorted, UTF-8 text kept readable."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False).translate(_BREAKS)


def split_lines(text: str) -> list[str]:
    """The non-blank lines of JSON Lines ``text``, split at ``\\n`` only (``\\r\\n`` too)."""
    return [line for line in text.split("\n") if line.strip()]
