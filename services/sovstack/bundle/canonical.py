"""Canonical JSON: the one byte string a manifest has, so that a signature over it is stable.

UTF-8, keys sorted, no insignificant whitespace, no floats (sizes are
integers; a float's text form is not canonical), no NaN. A verifier re-encodes
what it parsed and refuses a manifest whose bytes differ: two parsers can then
never read two different manifests out of one signed file.
"""

from __future__ import annotations

import json
from typing import Any, Final

from sovstack.bundle.errors import ManifestError

__all__ = ["dumps", "loads"]

_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _no_floats(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise ManifestError(f"{where} is a float: a manifest holds integers and strings only")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_floats(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _no_floats(item, f"{where}[{i}]")


def dumps(value: Any) -> bytes:
    """The canonical bytes of ``value`` (a JSON object of strings, integers, booleans, lists)."""
    _no_floats(value, "manifest")
    return _ENCODER.encode(value).encode("utf-8")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ManifestError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def loads(data: bytes) -> Any:
    """Parse ``data``, refusing duplicate keys and any encoding but the canonical one."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_refuse_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"not UTF-8 JSON: {exc}") from exc
    if dumps(value) != data:
        raise ManifestError("not in canonical form (sorted keys, no spaces, UTF-8)")
    return value
