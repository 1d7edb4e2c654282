"""`sovstack dev up` / `dev down` (what `make dev` / `make dev-down` run), end to end."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sovstack.core import services

DEV_KEYS = {"gateway_url", "ca_file", "keycloak", "clients", "opa_url", "vllm", "audit_dir"}


def _sovstack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sovstack.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def dev_stack(tmp_path: Path) -> tuple[Path, list[str]]:
    state = tmp_path / "state"
    ports = {
        "--opa-port": services.free_port(),
        "--keycloak-port": services.free_port(),
        "--keycloak-management-port": services.free_port(),
        "--vllm-port": services.free_port(),
        "--gateway-port": services.free_port(),
    }
    args = ["--state-dir", str(state)]
    port_args = [str(x) for kv in ports.items() for x in kv]
    return state, [*args, *port_args]


def test_dev_up_serves_every_component_and_dev_down_leaves_nothing(
    dev_stack: tuple[Path, list[str]],
) -> None:
    state, args = dev_stack
    state_args = args[:2]
    up = _sovstack("dev", "up", *args)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        info = json.loads((state / "dev.json").read_text())
        assert set(info) == DEV_KEYS
        assert set(info["keycloak"]) == {"issuer", "token_url", "realm", "server_url"}
        assert all(
            set(c) == {"client_id", "client_secret", "roles", "site"} for c in info["clients"]
        )
        assert (state / "dev.json").stat().st_mode & 0o077 == 0  # secrets: owner only
        assert "curl" in up.stdout and "Authorization: Bearer" in up.stdout

        # Every endpoint it wrote answers, with the credentials it wrote.
        client = info["clients"][0]
        token = httpx.post(
            info["keycloak"]["token_url"],
            data={
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            },
            trust_env=False,
        )
        assert token.status_code == 200 and token.json()["access_token"]
        # OPA's API is on the socket in the state folder, where the gateway asks it.
        assert info["opa_url"] == f"unix://{state.resolve()}/opa.sock"
        opa = httpx.HTTPTransport(uds=info["opa_url"].removeprefix("unix://"))
        with httpx.Client(transport=opa, trust_env=False) as via_socket:
            assert via_socket.get("http://localhost/health").status_code == 200
        models = httpx.get(f"{info['vllm'][0]['url']}/v1/models", trust_env=False).json()
        assert [m["id"] for m in models["data"]] == [info["vllm"][0]["model"]]

        # The whole request path, as the printed example call takes it: through the gateway.
        reply = httpx.post(
            f"{info['gateway_url']}/v1/chat/completions",
            headers={
                "Authorization": f"Bearer {token.json()['access_token']}",
                "X-Data-Classification": "internal",
            },
            json={
                "model": info["vllm"][0]["model"],
                "max_tokens": 3,
                "messages": [{"role": "user", "content": "Summarise the shift log"}],
            },
            verify=ssl.create_default_context(cafile=info["ca_file"]),
            trust_env=False,
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["completion_tokens"] == 3
        assert f"--cacert {info['ca_file']} {info['gateway_url']}" in up.stdout

        again = _sovstack("dev", "up", *args)
        assert again.returncode != 0
        assert "already running" in again.stderr
        assert "Traceback" not in again.stderr
        pids = [int(e["pid"]) for e in json.loads((state / "run.json").read_text())]
    finally:
        down = _sovstack("dev", "down", *state_args)
    assert down.returncode == 0, down.stderr
    assert not any(services.alive(pid) for pid in pids)
    ports = [int(a) for a in args[3::2]]
    assert not any(services.port_in_use(p) for p in ports)
    assert not (state / "dev.json").exists()
    # A second `down` is harmless.
    assert _sovstack("dev", "down", *state_args).returncode == 0


def test_dev_up_refuses_a_port_in_use_with_a_clear_message(
    dev_stack: tuple[Path, list[str]],
) -> None:
    state, args = dev_stack
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", int(args[args.index("--vllm-port") + 1])))
    holder.listen()
    try:
        result = _sovstack("dev", "up", *args)
    finally:
        holder.close()
    assert result.returncode != 0
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (state / "run.json").exists()
