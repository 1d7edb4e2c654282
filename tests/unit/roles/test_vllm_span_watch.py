"""The watch between the nodes of a spanning replica (roles/vllm/files/sovstack_vllm_span.py).

Real sockets on loopback: a share's listener, and the watch that ends a share
once a peer it has seen is gone. ``on_loss`` stands in for ending the process.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from tests.unit.roles import load_role_file


def _module() -> Any:
    return load_role_file("vllm", "sovstack_vllm_span")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_peer_seen_up_and_then_gone_ends_the_share() -> None:
    span = _module()
    target = ("127.0.0.1", _free_port())
    server = span.listen(target)
    lost: list[tuple[str, int]] = []
    gone = threading.Event()
    span.watch([target], lambda t: (lost.append(t), gone.set()), interval_s=0.05)
    assert not gone.wait(0.5)  # up: nothing happens
    with socket.create_connection(target, timeout=1):
        pass  # the listener accepts
    server.close()
    assert gone.wait(5)
    assert lost == [target]


def test_a_peer_never_seen_is_waited_for_not_lost() -> None:
    span = _module()
    target = ("127.0.0.1", _free_port())
    gone = threading.Event()
    span.watch([target], lambda t: gone.set(), interval_s=0.05)
    assert not gone.wait(0.6)  # still starting: the rendezvous waits for it
    server = span.listen(target)
    assert not gone.wait(0.3)
    server.close()
    assert gone.wait(5)
