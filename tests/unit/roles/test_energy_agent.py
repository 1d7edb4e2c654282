"""The energy agent the vllm role installs: NVML's counters summed, or null and why.

NVML is what the agent talks to the driver through; here it is a fake ``pynvml``
module (the transport). The agent's HTTP server runs for real on loopback.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.unit.roles import load_role_file


def _load() -> Any:
    return load_role_file("vllm", "sovstack_energy_agent")


class NotSupported(Exception):
    pass


def _fake_nvml(counters: list[int | None]) -> types.ModuleType:
    """A pynvml whose GPU i has counter counters[i] (None: the GPU cannot count energy)."""
    nvml = types.ModuleType("pynvml")
    nvml.nvmlInit = lambda: None  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: len(counters)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]

    def energy(handle: int) -> int:
        value = counters[handle]
        if value is None:
            raise NotSupported("Not Supported")
        return value

    nvml.nvmlDeviceGetTotalEnergyConsumption = energy  # type: ignore[attr-defined]
    return nvml


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[int | None]]]:
    counters: list[int | None] = [1_000, 2_500]
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(counters))
    server = _load().serve("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", counters
    server.shutdown()
    server.server_close()


def _get(url: str) -> httpx.Response:
    return httpx.get(url, trust_env=False, timeout=5)


def test_the_counters_of_the_nodes_gpus_are_summed_in_millijoules(
    agent: tuple[str, list[int | None]],
) -> None:
    url, counters = agent
    assert _get(f"{url}/energy").json() == {"energy_mj": 3_500, "devices": 2}
    counters[1] = 4_000
    assert _get(f"{url}/energy?devices=1").json() == {"energy_mj": 4_000, "devices": 1}
    assert _get(f"{url}/energy?devices=7").json()["energy_mj"] is None
    assert _get(f"{url}/energy?devices=x").status_code == 400
    assert _get(f"{url}/other").status_code == 404


def test_a_gpu_without_the_counter_gives_null_and_the_reason(
    agent: tuple[str, list[int | None]],
) -> None:
    url, counters = agent
    counters[0] = None
    answer = _get(f"{url}/energy").json()
    assert answer["energy_mj"] is None and "Not Supported" in answer["reason"]


def test_without_nvml_the_answer_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    counter = _load().Counter()
    assert counter.read() == {"energy_mj": None, "reason": "nvidia-ml-py is not installed"}
