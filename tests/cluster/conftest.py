"""The cluster tier: testinfra against the running local cluster (``make cluster-test``).

``make cluster-test`` brings the cluster up, runs this folder with
``--hosts=ansible://all --ansible-inventory=inventory/local`` (so each test
taking testinfra's ``host`` runs once per node, over SSH with the cluster's
key) and brings the cluster down, even when a test fails. Run without
``--hosts``, testinfra would test *this* machine instead: refused.

Probes only ever reach loopback or the cluster network.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sovstack.cluster.record import Record
from tests.conftest import ROOT

STATE = ROOT / ".sovstack" / "cluster"


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("hosts", default=None):
        raise pytest.UsageError(
            "tests/cluster test the running local cluster: run 'make cluster-test' "
            "(or 'sovstack cluster up' then pytest tests/cluster "
            "--hosts=ansible://all --ansible-inventory=inventory/local)"
        )


@pytest.fixture(scope="session")
def cluster_info() -> dict[str, Any]:
    """What 'cluster up' recorded: nodes, addresses, the bridge and the control host's address."""
    record = Record.load(STATE / "state.json")
    if record is None or not record.info.get("ready"):
        pytest.fail("the local cluster is not up: 'make cluster-test' brings it up first")
    return record.info


@dataclass(frozen=True)
class Listener:
    """A TCP service on the control host that answers every connection with a banner."""

    address: str
    port: int
    banner: bytes


def _serve(address: str) -> Iterator[Listener]:
    server = socket.create_server((address, 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    banner = f"sovstack-probe {address}:{port}\n".encode()
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(banner)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield Listener(address, port, banner)
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.fixture(scope="session")
def loopback_service() -> Iterator[Listener]:
    """A service on the host's loopback: outside the cluster network."""
    yield from _serve("127.0.0.1")


@pytest.fixture(scope="session")
def bridge_service(cluster_info: dict[str, Any]) -> Iterator[Listener]:
    """A service on the control host's cluster address: inside the cluster network."""
    yield from _serve(cluster_info["host_address"])


PROBE = """\
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:
        print("connected", s.recv(100).decode().strip())
except OSError as e:
    print("refused" if isinstance(e, ConnectionRefusedError) else f"failed {e}")
"""


def sovstack() -> list[str]:
    """The CLI of this checkout, as a user runs it."""
    return [sys.executable, "-m", "sovstack.cli"]
