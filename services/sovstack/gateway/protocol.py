"""What a request body may hold, per route, and the body the model receives.

Each route (``chat``, ``completions``, ``embeddings``) has an allowlist: the
OpenAI fields this kit supports, each with a check of its type and range
(:mod:`sovstack.gateway.checks`), plus the vLLM extensions a site admits by
name in the ``vllm_extensions`` setting (none by default). Anything else is
refused with 400 naming it, before the policy is asked; with
``unknown_fields: drop`` names this module does not know at all are dropped
instead (a known extension that is not admitted is always refused). The body
sent upstream is built anew from the checked fields only: the model never
sees a field the gateway did not check.

Fields that change what a request costs or how it is scheduled (n, best_of,
token caps, logprobs, priority, beam search, guided decoding, tools) are
reported in :attr:`Checked.facts`, which the policy sees as ``input.request``.

Some vLLM fields are never forwarded, whatever the settings say: they reach
into the engine (``kv_transfer_params``, ``vllm_xargs``, ``logits_processors``)
or replace the gateway's request id (``request_id``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

from sovstack.gateway.checks import (
    Check,
    any_of,
    boolean,
    free_json,
    integer,
    json_object,
    list_of,
    named,
    number,
    obj,
    one_of,
    refuse,
    text,
)
from sovstack.gateway.errors import BadRequest

__all__ = ["NEVER_FORWARDED", "VLLM_EXTENSIONS", "BodyRules", "Checked"]

KINDS: Final = ("chat", "completions", "embeddings")
NEVER_FORWARDED: Final = frozenset({"request_id", "kv_transfer_params", "vllm_xargs",
                                    "logits_processors"})  # fmt: skip
_TOKEN: Final = integer(0, 2**31 - 1)
_TOKENS: Final = list_of(_TOKEN, 1 << 20, 1)
# A model name is an identifier: bounded, and without control or line-break characters.
_MODEL_BAD: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _model(value: Any, path: str) -> Any:
    if type(value) is not str or not 1 <= len(value) <= 256 or _MODEL_BAD.search(value):
        raise refuse(path, "must be a name of 1 to 256 characters, with no control characters")
    return value


_STOP = any_of(text(1024), list_of(text(1024), 16), what="a string or a list of up to 16")
_TOOL_CALL = obj(
    {"id": text(256), "type": one_of("function"),
     "function": obj({"name": text(256, 1), "arguments": text()}, ("name",))},
    ("function",),
)  # fmt: skip
_PART = obj({"type": one_of("text"), "text": text()}, ("type", "text"))
_MESSAGE = obj(
    {"role": one_of("system", "developer", "user", "assistant", "tool"),
     "content": any_of(text(), list_of(_PART, 1024), what="a string or a list of text parts"),
     "name": text(256), "tool_calls": list_of(_TOOL_CALL, 128), "tool_call_id": text(256)},
    ("role",),
)  # fmt: skip
_TOOL = obj(
    {"type": one_of("function"),
     "function": obj({"name": text(256, 1), "description": text(), "parameters": free_json,
                      "strict": boolean}, ("name",))},
    ("type", "function"),
)  # fmt: skip
_TOOL_CHOICE = any_of(
    one_of("none", "auto", "required"),
    obj({"type": one_of("function"), "function": obj({"name": text(256, 1)}, ("name",))},
        ("type", "function")),
    what="'none', 'auto', 'required' or a named function",
)  # fmt: skip
_RESPONSE_FORMAT = obj(
    {"type": one_of("text", "json_object", "json_schema"),
     "json_schema": obj({"name": text(256), "description": text(), "schema": free_json,
                         "strict": boolean})},
    ("type",),
)  # fmt: skip
_PROMPT = any_of(
    text(min_len=0), list_of(text(), 1024, 1), _TOKENS, list_of(_TOKENS, 1024, 1),
    what="a string, a list of strings, a list of token ids or a list of those",
)  # fmt: skip
_SAMPLING = ("chat", "completions")

# vLLM's own fields, forwarded only when a site names them in vllm_extensions.
VLLM_EXTENSIONS: Final[dict[str, tuple[tuple[str, ...], Check]]] = {
    "top_k": (_SAMPLING, integer(-1, 1 << 20)),
    "min_p": (_SAMPLING, number(0, 1)),
    "repetition_penalty": (_SAMPLING, number(0, 10)),
    "length_penalty": (_SAMPLING, number(-10, 10)),
    "min_tokens": (_SAMPLING, integer(0, 1 << 20)),
    "ignore_eos": (_SAMPLING, boolean),
    "stop_token_ids": (_SAMPLING, list_of(_TOKEN, 64)),
    "include_stop_str_in_output": (_SAMPLING, boolean),
    "skip_special_tokens": (_SAMPLING, boolean),
    "spaces_between_special_tokens": (_SAMPLING, boolean),
    "prompt_logprobs": (_SAMPLING, integer(0, 20)),
    "use_beam_search": (_SAMPLING, boolean),
    "structured_outputs": (_SAMPLING, free_json),
    "guided_json": (_SAMPLING, free_json),
    "guided_regex": (_SAMPLING, text(4096)),
    "guided_choice": (_SAMPLING, list_of(text(1024), 256)),
    "guided_grammar": (_SAMPLING, text(65536)),
    "priority": (KINDS, integer(-(2**31), 2**31 - 1)),
    "cache_salt": (KINDS, text(256, 1)),
    "truncate_prompt_tokens": (KINDS, integer(1, 1 << 20)),
    "documents": (("chat",), list_of(free_json, 256)),
    "chat_template": (("chat",), text(65536)),
    "chat_template_kwargs": (("chat",), json_object),
    "add_generation_prompt": (("chat",), boolean),
    "continue_final_message": (("chat",), boolean),
    "echo": (("chat",), boolean),
}
_GUIDED: Final = ("structured_outputs", "guided_json", "guided_regex", "guided_choice",
                  "guided_grammar")  # fmt: skip


@dataclass(frozen=True)
class Checked:
    """A checked request: the body for the model, and what the policy is told of it."""

    model: str
    body: dict[str, Any]  # only checked fields; no token cap applied yet
    facts: dict[str, Any]  # input.request for the policy

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def wants_usage(self) -> bool:
        return bool((self.body.get("stream_options") or {}).get("include_usage"))


class BodyRules:
    """The allowlists of one gateway, made once from its settings."""

    def __init__(
        self, *, max_tokens: int, max_n: int, extensions: Collection[str] = (),
        drop_unknown: bool = False,
    ) -> None:  # fmt: skip
        tokens, n = integer(1, max_tokens), integer(1, max_n)
        stream_options = obj({"include_usage": boolean})
        sampling: dict[str, Check] = {
            "frequency_penalty": number(-2, 2), "presence_penalty": number(-2, 2),
            "logit_bias": _logit_bias, "max_tokens": tokens, "n": n, "seed": _seed,
            "stop": _STOP, "stream": boolean, "stream_options": stream_options,
            "temperature": number(0, 2), "top_p": number(0, 1), "user": text(256),
        }  # fmt: skip
        routes: dict[str, dict[str, Check]] = {
            "chat": sampling | {
                "model": _model, "messages": list_of(_MESSAGE, 4096, 1),
                "max_completion_tokens": tokens, "logprobs": boolean,
                "top_logprobs": integer(0, 20), "tools": list_of(_TOOL, 128),
                "tool_choice": _TOOL_CHOICE, "parallel_tool_calls": boolean,
                "response_format": _RESPONSE_FORMAT,
            },
            "completions": sampling | {
                "model": _model, "prompt": _PROMPT, "best_of": n, "echo": boolean,
                "logprobs": integer(0, 5), "suffix": text(),
            },
            "embeddings": {
                "model": _model, "input": _PROMPT, "encoding_format": one_of("float", "base64"),
                "dimensions": integer(1, 65536), "user": text(256),
            },
        }  # fmt: skip
        for name in extensions:
            kinds, check = VLLM_EXTENSIONS[name]
            for kind in kinds:
                routes[kind].setdefault(name, check)
        self._routes = routes
        self._drop_unknown = drop_unknown
        self._required = {"chat": ("model", "messages"), "completions": ("model", "prompt"),
                          "embeddings": ("model", "input")}  # fmt: skip

    def check(self, kind: str, body: dict[str, Any]) -> Checked:
        """The checked body of a ``kind`` request; :class:`BadRequest` naming what is wrong."""
        fields = self._routes[kind]
        unknown = [k for k in body if k not in fields and body[k] is not None]
        if unknown:
            refused = [k for k in unknown if not self._drop_unknown or _known(k)]
            if refused:
                raise BadRequest(_unknown_message(refused), param=refused[0][:64],
                                 code="unknown_field")  # fmt: skip
        for name in self._required[kind]:
            if body.get(name) is None:
                raise refuse(name, "is required", f"missing_{name}")
        out = {k: fields[k](v, k) for k, v in body.items() if v is not None and k in fields}
        if "best_of" in out and out["best_of"] < out.get("n", 1):
            raise refuse("best_of", "must be at least n")
        return Checked(out["model"], out, _facts(out))


def _known(name: str) -> bool:
    return name in VLLM_EXTENSIONS or name in NEVER_FORWARDED


def _unknown_message(names: list[str]) -> str:
    never = [n for n in names if n in NEVER_FORWARDED]
    if never:
        return f"the request holds fields this gateway never forwards: {named(never)}"
    extensions = [n for n in names if n in VLLM_EXTENSIONS]
    if extensions:
        return (
            f"the request holds vLLM fields this gateway does not admit: {named(extensions)} "
            "(the vllm_extensions setting)"
        )
    return f"the request holds unknown fields: {named(names)}"


def _seed(value: Any, path: str) -> Any:
    return integer(-(2**63), 2**64 - 1)(value, path)


def _logit_bias(value: Any, path: str) -> Any:
    if type(value) is not dict or len(value) > 1024:
        raise refuse(path, "must be an object of at most 1024 token ids")
    for token, bias in value.items():
        if not token.isdigit() or len(token) > 10:
            raise refuse(path, f"has a key that is not a token id: {named([token])}")
        number(-100, 100)(bias, f"{path}.{token[:10]}")
    return value


# What the policy is told when a request sets none of the fields that change cost.
_NO_FACTS: Final[dict[str, Any]] = {
    "stream": False, "max_tokens": None, "max_completion_tokens": None, "min_tokens": None,
    "ignore_eos": False, "n": 1, "best_of": None, "beam_search": False, "logprobs": None,
    "top_logprobs": None, "prompt_logprobs": None, "priority": None, "guided": (),
    "tools": 0, "tool_choice": None, "prompts": 1,
}  # fmt: skip
_AS_IS: Final = frozenset(_NO_FACTS) - {"guided", "tools", "tool_choice", "beam_search", "prompts"}
_COSTLY: Final = _AS_IS | {"tools", "tool_choice", "use_beam_search", "response_format",
                           *_GUIDED}  # fmt: skip


def _facts(body: dict[str, Any]) -> dict[str, Any]:
    """What the policy is told: every field that changes cost or scheduling."""
    facts = dict(_NO_FACTS)
    # A batch of prompts (or inputs) costs as many requests: n sequences for each.
    batch = body.get("prompt", body.get("input"))
    if type(batch) is list and type(batch[0]) is not int:
        facts["prompts"] = len(batch)
    costly = body.keys() & _COSTLY
    if not costly:
        return facts
    for key in costly & _AS_IS:
        facts[key] = body[key]
    guided = [k for k in _GUIDED if k in costly]
    response_format = body.get("response_format")
    if response_format and response_format["type"] != "text":
        guided.append(response_format["type"])
    facts["guided"] = tuple(guided)
    facts["tools"] = len(body.get("tools", ()))
    facts["beam_search"] = bool(body.get("use_beam_search"))
    # "none", "auto", "required", or "function" for a named one (the name is the client's).
    tool_choice = body.get("tool_choice")
    facts["tool_choice"] = tool_choice if isinstance(tool_choice, str | None) else "function"
    return facts
