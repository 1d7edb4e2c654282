"""The nodes of a replica that spans several end and come back together.

vLLM's multiprocess backend across nodes does not notice a node that went away
while it is idle: the first node's engine keeps answering /health with 200 and
hangs on the next request. So each share of a spanning replica watches the
others and ends its own process when one of them goes (systemd starts it again,
``Restart=always``, and it waits at vLLM's rendezvous until every node is back):

- each other node's share (``sovstack_vllm_headless``) listens on
  ``SOVSTACK_SPAN_LISTEN`` (its address and the replica's master port plus its
  rank), accepting and closing connections, so that it can be seen alive;
- the first node's API server (loaded with the API-key guard) watches those
  listeners, and each other node watches the first node's master port
  (torch.distributed's store, which lives as long as the first node's engine):
  ``SOVSTACK_SPAN_WATCH``, comma-separated ``host:port``.

A share watches a peer only once it has seen it up since it started, and ends
itself after ``MISSES`` checks in a row found it gone. While the first node's
process is down or waiting for the others, /health does not answer, and the
gateway takes the replica out.

Standard library only: it runs inside vLLM's Python.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["INTERVAL_S", "MISSES", "listen", "start_from_environment", "watch"]

INTERVAL_S = 2.0
MISSES = 2
# After asking the process to stop, how long before it is ended outright (a hung engine).
_STOP_GRACE_S = 20.0


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    return host, int(port)


def _up(target: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(target, timeout=INTERVAL_S):
            return True
    except OSError:
        return False


def listen(address: tuple[str, int]) -> socket.socket:
    """Accept and close connections on ``address`` in a daemon thread, until the socket closes."""
    server = socket.create_server(address)

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # closed
                return
            connection.close()

    threading.Thread(target=serve, name="span-listen", daemon=True).start()
    return server


def watch(
    targets: list[tuple[str, int]],
    on_loss: Callable[[tuple[str, int]], None],
    interval_s: float = INTERVAL_S,
    is_up: Callable[[tuple[str, int]], bool] = _up,
) -> threading.Thread:
    """Call ``on_loss(target)`` once a target seen up has been down ``MISSES`` checks in a row."""

    def run() -> None:
        seen: set[tuple[str, int]] = set()
        misses = dict.fromkeys(targets, 0)
        while True:
            for target in targets:
                if is_up(target):
                    seen.add(target)
                    misses[target] = 0
                elif target in seen:
                    misses[target] += 1
                    if misses[target] >= MISSES:
                        on_loss(target)
                        return
            time.sleep(interval_s)

    thread = threading.Thread(target=run, name="span-watch", daemon=True)
    thread.start()
    return thread


def _stop(target: tuple[str, int]) -> None:
    print(
        f"sovstack span: {target[0]}:{target[1]} is gone; this share stops so that the"
        " replica's nodes start again together",
        file=sys.stderr,
        flush=True,
    )
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(_STOP_GRACE_S)
    os._exit(1)


_started = threading.Event()


def start_from_environment() -> None:
    """Listen and watch as ``SOVSTACK_SPAN_LISTEN`` and ``SOVSTACK_SPAN_WATCH`` say (once)."""
    if _started.is_set():
        return
    _started.set()
    here = os.environ.get("SOVSTACK_SPAN_LISTEN", "")
    if here:
        listen(_address(here))
    peers = [_address(p) for p in os.environ.get("SOVSTACK_SPAN_WATCH", "").split(",") if p]
    if peers:
        watch(peers, _stop)
