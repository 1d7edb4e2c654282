"""Chaos under bounded load: kill -9 OPA, Keycloak, a vLLM replica, then the gateway.

A few clients keep sending chats to a real gateway in front of real OPA,
Keycloak and vLLM, all of this test's own (it kills them; the session
fixtures other tests share are left alone). Each component is killed with
SIGKILL mid-load, the clients are seen to feel it, and it is started again
on the same port; the gateway last, while long streams are in flight, and
then again on the same state folder. Afterwards:

* ``sovstack audit verify --check-records`` passes on the log;
* every answer a client got has its records in the log: one ``denied``, or
  one ``accepted`` and exactly one end (so no acknowledged record was lost);
  only a 2xx may have been ended by the gateway's restart (its ``completed``
  follows the response, and the kill may fall in between): an error answer's
  end is written before the answer, so the restart never closes one;
* every ``accepted`` record in the log has exactly one end;
* the streams in flight at the gateway's kill are closed at its next start
  by an ``aborted`` record with error ``gateway_restart``;
* no client ever got a 500.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sovstack.components import launches
from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.devstack import realm
from sovstack.policy import serve as policy_serve
from tests.integration.chaos_harness import NOT_OPENAI, Component, Load, Seen, Tokens, components
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway

# Sixteen sequences of up to 200 tokens each: still streaming when the gateway is killed.
LONG = {
    "model": launches.VLLM_MODEL_NAME,
    "prompt": ["Pump"] * 4,
    "n": 4,
    "max_tokens": 200,
    "stream": True,
}
ENDS = frozenset({"completed", "aborted", "error"})
RESTART = "gateway_restart"


def _streams(gateway: Gateway, token: str, count: int) -> tuple[list[str], threading.Semaphore]:
    """Start ``count`` long streams; their ids, and a semaphore released once each is under way."""
    ids: list[str] = []
    under_way = threading.Semaphore(0)

    def stream() -> None:
        with (
            gateway.client(token, **{"X-Data-Classification": "internal"}) as client,
            contextlib.suppress(httpx.HTTPError),
            client.stream("POST", "/v1/completions", json=LONG) as response,
        ):
            ids.append(response.headers["x-request-id"])
            started = False
            for chunk in response.iter_bytes():  # read on until the gateway dies
                if not started and b"data: {" in chunk:
                    started = True
                    under_way.release()

    for _ in range(count):
        threading.Thread(target=stream, daemon=True).start()
    return ids, under_way


def _trails(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    trails: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        trails.setdefault(record["request_id"], []).append(record)
    return trails


def _unended(gateway: Gateway) -> list[list[str]]:
    """The incomplete trails of the log, once its end records had a moment to land."""
    deadline = time.monotonic() + 15
    while True:
        trails = _trails(gateway.records()).values()
        unended = [
            [f"{r['request_id']} {r['event']}" for r in t] for t in trails if not _complete(t)
        ]
        if not unended or time.monotonic() > deadline:
            return unended
        time.sleep(0.5)


def _complete(trail: list[dict[str, Any]]) -> bool:
    events = [r["event"] for r in trail]
    return events == ["denied"] or (
        len(events) == 2 and events[0] == "accepted" and events[1] in ENDS
    )


@pytest.fixture
def stack(project_paths: Paths, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """OPA (the project's policies), Keycloak and one vLLM replica, all of this test's own."""
    opa_port = services.free_port()
    opa = Component(
        policy_serve.dev_opa(Paths(project_paths.root, tmp_path / "opa"), opa_port, lambda _: None),
        tmp_path / "opa.log",
    )
    clients = realm.demo_clients()
    kc_port = services.free_port()
    keycloak = Component(
        launches.keycloak(
            project_paths,
            kc_port,
            services.free_port(),
            tmp_path / "keycloak",
            realm.render_realm(project_paths.realm_template, clients),
            realm.REALM,
        ),
        tmp_path / "keycloak.log",
    )
    vllm_port = services.free_port()
    vllm = Component(launches.vllm(project_paths, vllm_port), tmp_path / "vllm.log")
    with components(opa, keycloak, vllm):
        kc_url = f"http://127.0.0.1:{kc_port}"
        yield {
            "opa": opa,
            "keycloak": keycloak,
            "vllm": vllm,
            "opa_url": f"http://127.0.0.1:{opa_port}",
            "idp": KeycloakServed(
                url=kc_url,
                log=keycloak.log,
                issuer=f"{kc_url}/realms/{realm.REALM}",
                clients=tuple(clients),
            ),
            "replica": Served(url=f"http://127.0.0.1:{vllm_port}", log=vllm.log),
        }


@pytest.mark.timeout(1500)
def test_kill_9_of_each_component_mid_load_loses_no_record_and_leaves_none_open(
    project_paths: Paths, tmp_path: Path, stack: dict[str, Any]
) -> None:
    idp: KeycloakServed = stack["idp"]
    opa, keycloak, vllm = stack["opa"], stack["keycloak"], stack["vllm"]

    def gateway_on_the_same_state() -> contextlib.AbstractContextManager[Gateway]:
        return run_gateway(
            project_paths,
            tmp_path / "gw",
            idp.issuer,
            stack["opa_url"],
            dev_upstreams(stack["replica"]),
        )

    tokens = Tokens(idp)
    current: list[Gateway] = []
    in_flight: list[str] = []
    with contextlib.ExitStack() as gateways:
        current.append(gateways.enter_context(gateway_on_the_same_state()))
        with Load(lambda: current[-1], tokens) as load:
            load.wait_answered(5, "answers before any fault")

            opa.kill()
            mark = len(load.seen)
            load.wait(
                "503 while OPA is down",
                lambda: any(s.code == "policy_unavailable" for s in load.seen[mark:]),
            )
            opa.start()
            opa.wait_ready()
            load.wait_answered(3, "answers after OPA is back")

            keycloak.kill()
            # Tokens already issued still verify: the gateway holds the realm's keys.
            load.wait_answered(3, "answers while Keycloak is down")
            keycloak.start()
            keycloak.wait_ready()
            tokens.refresh()  # a token from the new Keycloak (in-memory realm: new keys)
            load.wait_answered(3, "answers after Keycloak is back")

            vllm.kill()
            mark = len(load.seen)
            load.wait(
                "errors while the replica is down",
                lambda: any(s.status >= 500 for s in load.seen[mark:]),
            )
            vllm.start()
            vllm.wait_ready()
            load.wait_answered(3, "answers after the replica is back")

            # Quiet for a moment: with nothing in flight, every accepted request has
            # its end, so none is left for the gateway's restart to close but the
            # ones in flight at its kill.
            load.pause()
            unended = _unended(current[-1])
            load.resume()

            streams, under_way = _streams(current[-1], tokens.value, 2)
            for _ in range(2):
                assert under_way.acquire(timeout=120), "the long streams did not start"
            os.killpg(current[-1].pid, signal.SIGKILL)
            in_flight = list(streams)
            current.append(gateways.enter_context(gateway_on_the_same_state()))
            load.wait_answered(3, "answers after the gateway restarted")
        final = current[-1]
        deadline = time.monotonic() + 60  # end records follow their answers by a moment
        while time.monotonic() < deadline and not all(
            _complete(t) for t in _trails(final.records()).values()
        ):
            time.sleep(0.5)
        records = final.records()

    violations = _violations(load.seen, records, in_flight)
    violations += [f"before the gateway's kill, nothing in flight: {t}" for t in unended]
    verified = final.verify_log()
    if verified.returncode != 0:
        violations.append(f"audit verify failed: {verified.stdout}{verified.stderr}")
    assert not violations, "\n".join(violations)


def _violations(seen: list[Seen], records: list[dict[str, Any]], in_flight: list[str]) -> list[str]:
    """Every way the run broke the invariants of the module docstring (all, not the first)."""
    found = [f"{s}: a 500" for s in seen if s.status == 500]
    found += [f"{s}: no X-Request-ID" for s in seen if s.request_id is None]
    found += [f"{s}: not an OpenAI error" for s in seen if s.code == NOT_OPENAI]
    trails = _trails(records)
    for answer in seen:
        if answer.request_id is None:
            continue  # reported above; its records cannot be told apart
        trail = trails.get(answer.request_id, [])
        if not _complete(trail):
            found.append(f"{answer}: records {[r['event'] for r in trail]}")
        elif trail[-1]["error"] == RESTART and not 200 <= answer.status < 300:
            found.append(f"{answer}: answered, yet ended only by the gateway's restart")
        elif 200 <= answer.status < 300 and trail[0]["event"] != "accepted":
            found.append(f"{answer}: answered 2xx without an accepted record")
    for request_id, trail in trails.items():
        if not _complete(trail):
            found.append(f"request {request_id} in the log: {[r['event'] for r in trail]}")
    if len(in_flight) != 2:
        found.append(f"streams in flight at the gateway's kill: {in_flight}, not 2")
    for request_id in in_flight:
        end = trails.get(request_id, [{}])[-1]
        if (end.get("event"), end.get("error")) != ("aborted", RESTART):
            found.append(f"stream {request_id} in flight at the kill ended with {end}")
    return found
