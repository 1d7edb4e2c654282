"""Processes a chaos test may kill, and clients that keep sending through it.

:class:`Component` is one real component started as ``make dev`` starts it,
that a test kills with SIGKILL (its whole process session) and starts again
on the same port. :class:`Load` is a few clients sending chats in a loop to
whichever gateway is current, keeping every answer they got (:class:`Seen`),
fetching a new token after a 401, and riding out refused connections.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from sovstack.components import launches
from sovstack.core import services
from tests.integration.conftest import KeycloakServed
from tests.integration.gateway_harness import Gateway

CHAT = {
    "model": launches.VLLM_MODEL_NAME,
    "messages": [{"role": "user", "content": "Any alarms on line 3?"}],
    "max_tokens": 8,
}


class Component:
    """One component process of this test's own: started, killed with SIGKILL, started again."""

    def __init__(self, launch: services.Launch, log: Path) -> None:
        self.launch, self.log = launch, log
        self.running: services.Running | None = None

    def start(self) -> None:
        self.running = services.start(self.launch, self.log)

    def wait_ready(self) -> None:
        assert self.running is not None
        services.wait_ready(self.running)

    def kill(self) -> None:
        """SIGKILL its whole process session (vLLM's engine, Keycloak's Java) and reap it."""
        assert self.running is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.running.pid, signal.SIGKILL)
        self.running.proc.wait(30)
        deadline = time.monotonic() + 30
        while services.port_in_use(self.launch.port):  # its children let go of the port too
            assert time.monotonic() < deadline, f"{self.launch.name} still holds its port"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.running is not None:
            services.stop(self.running.pid)


@contextlib.contextmanager
def components(*components: Component) -> Iterator[None]:
    try:
        for component in components:
            component.start()
        for component in components:
            component.wait_ready()
        yield
    finally:
        for component in components:
            component.stop()


@dataclass(frozen=True)
class Seen:
    """One answer a client received (``request_id`` None: it came without X-Request-ID)."""

    request_id: str | None
    status: int
    code: str | None


NOT_OPENAI = "(not an OpenAI error)"


def error_code(response: httpx.Response) -> str | None:
    """The OpenAI error code of an error answer (``NOT_OPENAI`` if it has no such shape)."""
    if response.status_code < 400:
        return None
    try:
        error = response.json()["error"]
        code = error["code"]
        assert {"message", "type", "param", "code"} <= set(error)
    except (ValueError, KeyError, TypeError, AssertionError):
        return NOT_OPENAI
    return code if isinstance(code, str) else None


class Tokens:
    """The clients' access token, fetched again after a 401 (Keycloak may be down then)."""

    def __init__(self, keycloak: KeycloakServed) -> None:
        self._keycloak = keycloak
        self._lock = threading.Lock()
        self.value = keycloak.token("line-monitor")

    def refresh(self) -> None:
        with self._lock, contextlib.suppress(httpx.HTTPError):
            self.value = self._keycloak.token("line-monitor")


class Load:
    """``workers`` clients sending chats in a loop to whichever gateway is current."""

    def __init__(self, gateway: Callable[[], Gateway], tokens: Tokens, workers: int = 3) -> None:
        self._gateway, self._tokens = gateway, tokens
        self.seen: list[Seen] = []
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._busy = threading.Semaphore(workers)  # one held per client with a request out
        self._workers = workers
        self._threads = [threading.Thread(target=self._client) for _ in range(workers)]

    def _client(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(0.1):
                continue
            with self._busy:
                self._request()

    def pause(self) -> None:
        """Stop sending, and return once no client has a request out."""
        self._running.clear()
        for _ in range(self._workers):
            assert self._busy.acquire(timeout=150), "a client's request did not end"
        for _ in range(self._workers):
            self._busy.release()

    def resume(self) -> None:
        self._running.set()

    def _request(self) -> None:
        gateway = self._gateway()
        headers = {"X-Data-Classification": "internal"}
        try:
            with gateway.client(self._tokens.value, **headers) as client:
                response = client.post("/v1/chat/completions", json=CHAT)
        except httpx.HTTPError:
            time.sleep(0.2)  # the gateway is down or was killed mid-answer
            return
        request_id = response.headers.get("x-request-id")
        self.seen.append(Seen(request_id, response.status_code, error_code(response)))
        if response.status_code == 401:
            self._tokens.refresh()
            time.sleep(0.5)
        elif response.status_code >= 500:
            time.sleep(0.2)

    def answered(self, since: int = 0) -> int:
        return sum(1 for s in self.seen[since:] if 200 <= s.status < 300)

    def wait(self, what: str, until: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s; {self.tail()}"
            time.sleep(0.1)

    def wait_answered(self, count: int, what: str, timeout: float = 120) -> None:
        since = len(self.seen)
        self.wait(what, lambda: self.answered(since) >= count, timeout)

    def tail(self) -> list[Seen]:
        return self.seen[-5:]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(150)
