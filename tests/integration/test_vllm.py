"""Real vLLM (CPU build) serves the locally generated tiny model."""

from __future__ import annotations

import json

import httpx

from sovstack.components.launches import VLLM_MODEL_NAME
from tests.integration.conftest import Served


def test_vllm_lists_the_tiny_model(vllm_server: Served) -> None:
    models = httpx.get(f"{vllm_server.url}/v1/models", trust_env=False).json()
    assert [m["id"] for m in models["data"]] == [VLLM_MODEL_NAME]


def test_vllm_answers_a_chat_completion(vllm_server: Served) -> None:
    response = httpx.post(
        f"{vllm_server.url}/v1/chat/completions",
        json={
            "model": VLLM_MODEL_NAME,
            "messages": [{"role": "user", "content": "Summarise the shift log"}],
            "max_tokens": 8,
            "ignore_eos": True,  # sampled at temperature 1, the tiny model may end early
        },
        timeout=60,
        trust_env=False,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["completion_tokens"] == 8
    assert body["usage"]["prompt_tokens"] > 0


def test_vllm_streams_a_completion_chunk_by_chunk(vllm_server: Served) -> None:
    events: list[str] = []
    with httpx.stream(
        "POST",
        f"{vllm_server.url}/v1/completions",
        json={"model": VLLM_MODEL_NAME, "prompt": "Pump P-101", "max_tokens": 6, "stream": True},
        timeout=60,
        trust_env=False,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")
        ]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 2  # streamed, not one buffered answer
    assert all(c["object"] == "text_completion" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
