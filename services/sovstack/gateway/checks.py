"""Small value checks for request bodies, each naming the field it refuses.

A check is a function ``(value, path) -> value``: it returns the value to
forward (the same object, or a cleaned copy for an object with declared
fields) or raises :class:`BadRequest` whose ``param`` is ``path`` (e.g.
``messages[2].content``). They are plain functions over exact types, so a
typical chat body is checked in a few microseconds (the gateway is benchmarked).
``null`` means "not given": the field is left out, and an unknown field that
is null is left out too rather than refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from sovstack.gateway.errors import BadRequest

__all__ = [
    "Check",
    "any_of",
    "boolean",
    "free_json",
    "integer",
    "json_object",
    "list_of",
    "named",
    "number",
    "obj",
    "one_of",
    "refuse",
    "text",
]

Check = Callable[[Any, str], Any]

# Deep enough for any real JSON schema or template argument; shallow enough that
# nothing downstream (vLLM, the audit's JSON encoder) can hit a recursion limit.
MAX_DEPTH: Final = 32
_NAMES_SHOWN: Final = 8


def refuse(path: str, what: str, code: str = "invalid_value") -> BadRequest:
    return BadRequest(f"'{path}' {what}", param=path, code=code)


def named(names: list[str]) -> str:
    """Field names for a message: bounded in number and length, whatever a client sent."""
    shown = ", ".join(repr(n[:64]) for n in names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def boolean(value: Any, path: str) -> Any:
    if type(value) is not bool:
        raise refuse(path, "must be true or false")
    return value


def integer(lo: int, hi: int) -> Check:
    def check(value: Any, path: str) -> Any:
        if type(value) is not int or not lo <= value <= hi:
            raise refuse(path, f"must be an integer from {lo} to {hi}")
        return value

    return check


def number(lo: float, hi: float) -> Check:
    def check(value: Any, path: str) -> Any:
        if type(value) not in (int, float) or not lo <= value <= hi:
            raise refuse(path, f"must be a number from {lo} to {hi}")
        return value

    return check


def text(max_len: int = 1 << 20, min_len: int = 0) -> Check:
    def check(value: Any, path: str) -> Any:
        if type(value) is not str or not min_len <= len(value) <= max_len:
            raise refuse(path, f"must be a string of {min_len} to {max_len} characters")
        return value

    return check


def one_of(*allowed: str) -> Check:
    def check(value: Any, path: str) -> Any:
        if type(value) is not str or value not in allowed:
            raise refuse(path, f"must be one of {', '.join(map(repr, allowed))}")
        return value

    return check


def list_of(item: Check, max_items: int, min_items: int = 0) -> Check:
    def check(value: Any, path: str) -> Any:
        if type(value) is not list or not min_items <= len(value) <= max_items:
            raise refuse(path, f"must be a list of {min_items} to {max_items} items")
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return check


def any_of(*checks: Check, what: str) -> Check:
    """The first check that accepts the value; ``what`` says what was expected."""

    def check(value: Any, path: str) -> Any:
        for one in checks:
            try:
                return one(value, path)
            except BadRequest:
                continue
        raise refuse(path, f"must be {what}")

    return check


def obj(fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An object with only the declared ``fields``; each present value checked, nulls left out."""

    names = frozenset(fields)

    def check(value: Any, path: str) -> Any:
        if type(value) is not dict:
            raise refuse(path, "must be an object")
        if not names.issuperset(value):
            # A null says nothing and is never forwarded: the openai SDK sends back a
            # reply's message with every field of it, most of them null.
            unknown = [k for k in value if k not in names and value[k] is not None]
            if unknown:
                raise refuse(path, f"has unknown fields: {named(unknown)}", "unknown_field")
        for key in required:
            if value.get(key) is None:
                raise refuse(path, f"needs {key!r}", "missing_field")
        return {k: fields[k](v, f"{path}.{k}") for k, v in value.items() if v is not None}

    return check


def free_json(value: Any, path: str) -> Any:
    """Any JSON value (a schema, template arguments) nested at most ``MAX_DEPTH`` deep."""
    level = [value]
    for _ in range(MAX_DEPTH):
        deeper: list[Any] = []
        for item in level:
            if type(item) is dict:
                deeper.extend(item.values())
            elif type(item) is list:
                deeper.extend(item)
        if not deeper:
            return value
        level = deeper
    raise refuse(path, f"is nested more than {MAX_DEPTH} deep", "too_deep")


def json_object(value: Any, path: str) -> Any:
    """A JSON object of any fields (template arguments), nested at most ``MAX_DEPTH`` deep."""
    if type(value) is not dict:
        raise refuse(path, "must be an object")
    return free_json(value, path)
