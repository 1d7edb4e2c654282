"""The deployed gateway runs as worker processes, and `systemctl reload` rolls them.

On the gateway node: the unit's main process is the supervisor with one
worker per core (the role's default), each writing its own audit log; a
reload replaces every worker while a stream through the gateway (the openai
SDK, from the controller) goes on to its end, and the gateway answers after.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.deploy.conftest import STATE, gateway_sdk, on_node, token

pytestmark = pytest.mark.usefixtures("first_deploy")

ASK = [{"role": "user", "content": "Summarise the shift log"}]


def _gateway() -> dict[str, Any]:
    gateway: dict[str, Any] = json.loads((STATE / "deploy.d" / "gateway.json").read_text())[
        "gateways"
    ][0]
    return gateway


def _workers(host: str) -> list[int]:
    """The pids of the gateway's workers: the children of the unit's main process."""
    main = on_node(host, "systemctl", "show", "-p", "MainPID", "--value", "sovstack-gateway")
    assert main.returncode == 0, main.stderr
    children = on_node(
        host, "cat", f"/proc/{main.stdout.strip()}/task/{main.stdout.strip()}/children"
    )
    return sorted(int(pid) for pid in children.stdout.split())


def test_the_gateway_runs_a_worker_per_core_each_with_its_own_log() -> None:
    gateway = _gateway()
    cores = int(on_node(gateway["host"], "nproc").stdout)
    assert gateway["audit_workers"] == cores
    assert len(_workers(gateway["host"])) == cores
    listed = on_node(gateway["host"], "ls", gateway["audit_dir"])
    assert listed.stdout.split() == [f"worker-{i}" for i in range(cores)]


def test_a_reload_replaces_every_worker_without_cutting_a_stream(
    deployed: dict[str, Any],
) -> None:
    gateway = _gateway()
    before = _workers(gateway["host"])
    sdk = gateway_sdk(deployed, token(deployed, "line-monitor"))
    stream = sdk.chat.completions.create(
        model="tiny-llama", messages=ASK, max_tokens=48, stream=True
    )
    chunks = [next(iter(stream))]
    reloaded = on_node(gateway["host"], "systemctl", "reload", "sovstack-gateway")
    assert reloaded.returncode == 0, reloaded.stderr
    chunks += list(stream)
    assert chunks[-1].choices[0].finish_reason is not None
    deadline = time.monotonic() + 120
    while set(after := _workers(gateway["host"])) & set(before) or len(after) != len(before):
        assert time.monotonic() < deadline, (before, after)
        time.sleep(1)
    answer = sdk.chat.completions.create(model="tiny-llama", messages=ASK, max_tokens=4)
    assert answer.choices[0].message.content is not None
