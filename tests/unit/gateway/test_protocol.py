"""The model gets only fields the gateway checked; the policy sees the costly ones."""

from __future__ import annotations

from typing import Any

import pytest

from sovstack.gateway.errors import BadRequest
from sovstack.gateway.protocol import NEVER_FORWARDED, VLLM_EXTENSIONS, BodyRules

RULES = BodyRules(max_tokens=4096, max_n=4)
MESSAGES = [{"role": "user", "content": "Summarise the log"}]
CHAT: dict[str, Any] = {"model": "tiny-llama", "messages": MESSAGES}
COMPLETION: dict[str, Any] = {"model": "tiny-llama", "prompt": "Pump"}


def _refused(kind: str, body: dict[str, Any], rules: BodyRules = RULES) -> BadRequest:
    with pytest.raises(BadRequest) as raised:
        rules.check(kind, body)
    assert raised.value.status == 400
    return raised.value


# Every field the security review saw forwarded unchanged and unseen by the policy.
SEEN_FORWARDED = {
    "use_beam_search": True, "prompt_logprobs": 5, "min_tokens": 200, "ignore_eos": True,
    "chat_template": "{{ 'x' }}", "chat_template_kwargs": {"enable_thinking": True},
    "priority": -10, "request_id": "mine", "kv_transfer_params": {"do_remote_decode": True},
    "vllm_xargs": {"a": 1}, "structured_outputs": {"regex": "a+"}, "guided_json": {},
    "guided_regex": "a+", "guided_choice": ["a"], "guided_grammar": "root ::= 'a'",
    "logits_processors": ["m.P"], "cache_salt": "s", "documents": [{"text": "d"}],
}  # fmt: skip


@pytest.mark.parametrize("field", sorted(SEEN_FORWARDED))
def test_a_vllm_field_is_refused_by_default_and_named(field: str) -> None:
    error = _refused("chat", CHAT | {field: SEEN_FORWARDED[field]})
    assert error.code == "unknown_field" and error.param == field
    assert repr(field) in error.message


def test_best_of_is_refused_on_chat_and_bounded_on_completions() -> None:
    assert _refused("chat", CHAT | {"best_of": 2}).param == "best_of"
    assert RULES.check("completions", COMPLETION | {"best_of": 4}).facts["best_of"] == 4
    assert _refused("completions", COMPLETION | {"best_of": 5}).param == "best_of"
    assert _refused("completions", COMPLETION | {"best_of": 2, "n": 3}).param == "best_of"


def test_unknown_fields_are_named_bounded_in_number_and_length() -> None:
    body = CHAT | {f"field-{i}-" + "x" * 500: 1 for i in range(1000)}
    error = _refused("chat", body)
    assert len(error.message) < 1000 and "and 992 more" in error.message


def test_a_site_admits_vllm_fields_by_name_and_the_policy_sees_the_costly_ones() -> None:
    rules = BodyRules(
        max_tokens=4096,
        max_n=4,
        extensions=["ignore_eos", "min_tokens", "priority", "guided_regex"],
    )
    checked = rules.check(
        "chat", CHAT | {"ignore_eos": True, "min_tokens": 8, "priority": 3, "guided_regex": "a+"}
    )
    assert checked.body == CHAT | {
        "ignore_eos": True,
        "min_tokens": 8,
        "priority": 3,
        "guided_regex": "a+",
    }
    facts = checked.facts
    assert (facts["ignore_eos"], facts["min_tokens"], facts["priority"]) == (True, 8, 3)
    assert facts["guided"] == ("guided_regex",)
    # Admitted means checked too.
    assert _refused("chat", CHAT | {"min_tokens": "8"}, rules).param == "min_tokens"
    # And still refused where the admitted field does not apply.
    assert _refused("embeddings", {"model": "m", "input": "x", "ignore_eos": True}, rules)


def test_the_engine_fields_are_never_admitted() -> None:
    assert {"request_id", "kv_transfer_params", "vllm_xargs", "logits_processors"} == set(
        NEVER_FORWARDED
    )
    assert not NEVER_FORWARDED & set(VLLM_EXTENSIONS)


def test_unknown_fields_may_be_dropped_but_known_unadmitted_ones_still_refused() -> None:
    rules = BodyRules(max_tokens=4096, max_n=4, drop_unknown=True)
    assert rules.check("chat", CHAT | {"whatever": {"x": 1}}).body == CHAT
    assert _refused("chat", CHAT | {"ignore_eos": True}, rules).param == "ignore_eos"
    assert _refused("chat", CHAT | {"vllm_xargs": {}}, rules).param == "vllm_xargs"


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("stream_options", "x", "stream_options"),
        ("stream_options", {"include_usage": "yes"}, "stream_options.include_usage"),
        ("stream_options", {"continuous_usage_stats": True}, "stream_options"),
        ("stream", 1, "stream"),
        ("max_tokens", "8", "max_tokens"),
        ("max_tokens", True, "max_tokens"),
        ("max_tokens", 0, "max_tokens"),
        ("max_tokens", 10**6, "max_tokens"),
        ("max_completion_tokens", 4097, "max_completion_tokens"),
        ("n", 5, "n"),
        ("temperature", "hot", "temperature"),
        ("temperature", 3, "temperature"),
        ("top_p", [], "top_p"),
        ("logprobs", 3, "logprobs"),
        ("top_logprobs", 21, "top_logprobs"),
        ("stop", ["a"] * 17, "stop"),
        ("logit_bias", {"x": 1}, "logit_bias"),
        ("logit_bias", {"5": 101}, "logit_bias.5"),
        ("seed", 2**70, "seed"),
        ("user", "u" * 257, "user"),
        ("tools", [{"type": "function"}], "tools[0]"),
        ("tools", [{"type": "function", "function": {"name": "f", "x": 1}}], "tools[0].function"),
        ("tool_choice", "sometimes", "tool_choice"),
        ("response_format", {"type": "xml"}, "response_format.type"),
        ("messages", [], "messages"),
        ("messages", "hi", "messages"),
        ("messages", [{"content": "hi"}], "messages[0]"),
        ("messages", [{"role": "root", "content": "hi"}], "messages[0].role"),
        ("messages", [{"role": "user", "content": 5}], "messages[0].content"),
        ("messages", [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
         "messages[0].content"),
        ("messages", [{"role": "user", "content": "x", "documents": []}], "messages[0]"),
        ("model", "", "model"),
        ("model", "m" * 1100, "model"),
        ("model", 7, "model"),
        ("model", "tiny\u2028llama", "model"),
        ("model", "tiny\x85llama", "model"),
        ("model", "tiny\ud800llama", "model"),
    ],
)  # fmt: skip
def test_a_wrong_value_anywhere_is_refused_naming_where(field: str, value: Any, param: str) -> None:
    assert _refused("chat", CHAT | {field: value}).param == param


def test_free_form_json_is_bounded_in_depth() -> None:
    deep: Any = {}
    for _ in range(40):
        deep = {"d": deep}
    tool = {"type": "function", "function": {"name": "f", "parameters": deep}}
    assert _refused("chat", CHAT | {"tools": [tool]}).code == "too_deep"
    shallow = {"type": "object", "properties": {"pump": {"type": "string"}}}
    tool["function"]["parameters"] = shallow  # type: ignore[index]
    checked = RULES.check("chat", CHAT | {"tools": [tool], "tool_choice": "required"})
    assert checked.facts["tools"] == 1 and checked.facts["tool_choice"] == "required"


def test_the_body_sent_on_holds_only_checked_fields_and_no_nulls() -> None:
    asked = CHAT | {
        "max_tokens": None,
        "temperature": 0.5,
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": {"type": "object"}},
        },
    }
    checked = RULES.check("chat", asked)
    assert "max_tokens" not in checked.body and checked.body["temperature"] == 0.5
    assert checked.stream and checked.wants_usage
    assert checked.facts["guided"] == ("json_schema",)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("completions", {"model": "m", "prompt": ["a", "b"], "logprobs": 2, "echo": True}),
        ("completions", {"model": "m", "prompt": [1, 2, 3], "suffix": "x"}),
        ("completions", {"model": "m", "prompt": [[1, 2], [3]]}),
        ("embeddings", {"model": "m", "input": ["a"], "encoding_format": "base64"}),
        ("chat", {"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}),
    ],
)  # fmt: skip
def test_what_the_openai_sdk_sends_passes(kind: str, body: dict[str, Any]) -> None:
    assert RULES.check(kind, body).model == "m"


@pytest.mark.parametrize(
    ("kind", "body", "param"),
    [
        ("completions", {"model": "m"}, "prompt"),
        ("completions", {"model": "m", "prompt": [-1]}, "prompt"),
        ("completions", {"model": "m", "prompt": []}, "prompt"),
        ("completions", {"model": "m", "prompt": "x", "logprobs": 6}, "logprobs"),
        ("embeddings", {"model": "m", "input": "x", "max_tokens": 4}, "max_tokens"),
        ("embeddings", {"input": "x"}, "model"),
    ],
)
def test_each_route_has_its_own_allowlist(kind: str, body: dict[str, Any], param: str) -> None:
    assert _refused(kind, body).param == param


def test_the_policy_is_told_every_field_that_changes_cost() -> None:
    assert RULES.check("chat", CHAT).facts == {
        "stream": False, "max_tokens": None, "max_completion_tokens": None, "min_tokens": None,
        "ignore_eos": False, "n": 1, "best_of": None, "beam_search": False, "logprobs": None,
        "top_logprobs": None, "prompt_logprobs": None, "priority": None, "guided": (),
        "tools": 0, "tool_choice": None, "prompts": 1,
    }  # fmt: skip
    rules = BodyRules(max_tokens=4096, max_n=4, extensions=list(VLLM_EXTENSIONS))
    tool = {"type": "function", "function": {"name": "f"}}
    costly = rules.check("chat", CHAT | {
        "stream": True, "max_tokens": 9, "max_completion_tokens": 8, "min_tokens": 7,
        "ignore_eos": True, "n": 3, "use_beam_search": True, "logprobs": True,
        "top_logprobs": 5, "prompt_logprobs": 2, "priority": -1, "guided_choice": ["a"],
        "response_format": {"type": "json_object"}, "tools": [tool, tool],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    })  # fmt: skip
    assert costly.facts == {
        "stream": True, "max_tokens": 9, "max_completion_tokens": 8, "min_tokens": 7,
        "ignore_eos": True, "n": 3, "best_of": None, "beam_search": True, "logprobs": True,
        "top_logprobs": 5, "prompt_logprobs": 2, "priority": -1,
        "guided": ("guided_choice", "json_object"), "tools": 2, "tool_choice": "function",
        "prompts": 1,
    }  # fmt: skip
    batch = {"model": "m", "prompt": ["a", "b", "c"], "n": 4}
    assert RULES.check("completions", batch).facts["prompts"] == 3
    assert RULES.check("completions", batch | {"prompt": [1, 2]}).facts["prompts"] == 1
    assert RULES.check("completions", batch | {"prompt": [[1], [2]]}).facts["prompts"] == 2
    assert RULES.check("embeddings", {"model": "m", "input": ["a", "b"]}).facts["prompts"] == 2


def test_a_reply_sent_back_as_the_sdk_dumps_it_passes_its_nulls_dropped() -> None:
    reply = {
        "role": "assistant",
        "content": "P-7 is fine.",
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": None,
    }
    body = CHAT | {"messages": [*MESSAGES, reply], "metadata": None}
    checked = RULES.check("chat", body)
    assert checked.body == CHAT | {
        "messages": [*MESSAGES, {"role": "assistant", "content": "P-7 is fine."}]
    }
    assert _refused("chat", body | {"metadata": {"a": "b"}}).param == "metadata"
