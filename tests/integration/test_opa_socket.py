"""The gateway's policy client asks a real OPA on a Unix socket; no decision outlives a change.

OPA is the real binary serving a small decision policy on a Unix socket only.
The policy's data is changed through OPA's own API between two questions, as
a new bundle would change it: with the gateway's default settings the next
decision follows at once; only a site that opts into the decision cache keeps
the old one, for the cache's lifetime.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sovstack.components import launches
from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.gateway.authz import PolicyClient
from sovstack.gateway.config import Settings

POLICY = """\
package fixture.gate

import rego.v1

default allow := false

allow if input.role in data.fixture.allowed_roles

decision := {"allow": allow, "reasons": [sprintf("role %s", [input.role])]}

visible_models := ["m"] if allow
"""
ROLES = "http://localhost/v1/data/fixture/allowed_roles"


@pytest.fixture
def opa_socket(project_paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("opa-uds")
    (work / "gate.rego").write_text(POLICY)
    (work / "data.json").write_text(json.dumps({"fixture": {"allowed_roles": ["engineer"]}}))
    socket = work / "opa.sock"
    launch = launches.opa(
        project_paths, services.free_port(), [work / "gate.rego", work / "data.json"],
        socket=socket,
    )  # fmt: skip
    running = services.start(launch, work / "opa.log")
    try:
        services.wait_ready(running)
        yield socket
    finally:
        services.stop(running.pid)


def _client(socket: Path, **settings: float) -> PolicyClient:
    s = Settings(
        oidc_issuer="http://127.0.0.1:1/realms/plant",
        opa_url=f"unix://{socket}",
        audit_dir="/nonexistent/audit",
        audit_signing_key="/nonexistent/audit.key",
        upstreams=[{"id": "r", "model": "m", "url": "http://127.0.0.1:1", "site": "a"}],
        allow_plain_http=True,
        **settings,  # type: ignore[arg-type]  # the cache setting under test, by name
    )
    return PolicyClient(
        s.opa, "fixture/gate/decision", "fixture/gate/visible_models",
        s.opa_timeout_s, s.decision_cache_ttl_s,
    )  # fmt: skip


def _allow_only(socket: Path, roles: list[str]) -> None:
    """Change the policy's data, through OPA's API on the socket."""
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), trust_env=False) as opa:
        assert opa.put(ROLES, json=roles).status_code == 204


async def test_the_gateway_asks_opa_on_its_socket(opa_socket: Path) -> None:
    client = _client(opa_socket)
    async with client.opened():
        assert await client.healthy()
        decision = await client.decide({"role": "engineer"})
        assert decision.allow and decision.reasons == ("role engineer",)
        assert not (await client.decide({"role": "operator"})).allow
        assert await client.visible_models({"role": "engineer"}) == ["m"]


async def test_by_default_the_next_decision_follows_a_policy_change(opa_socket: Path) -> None:
    client = _client(opa_socket)
    async with client.opened():
        assert (await client.decide({"role": "engineer"})).allow
        _allow_only(opa_socket, ["operator"])
        assert not (await client.decide({"role": "engineer"})).allow
        assert (await client.decide({"role": "operator"})).allow


async def test_only_an_opted_in_cache_keeps_a_decision_past_a_change(opa_socket: Path) -> None:
    cached = _client(opa_socket, decision_cache_ttl_s=60.0)
    async with cached.opened():
        assert (await cached.decide({"role": "engineer"})).allow
        _allow_only(opa_socket, ["operator"])
        assert (await cached.decide({"role": "engineer"})).allow  # the site asked for this
    fresh = _client(opa_socket)
    async with fresh.opened():
        assert not (await fresh.decide({"role": "engineer"})).allow
