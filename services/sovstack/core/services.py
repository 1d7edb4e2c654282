"""Start a component as a process, wait until it answers, stop it.

A started component runs in its own process session, so that stopping it
stops every process it spawned (vLLM forks an engine core, Keycloak's script
execs Java) and nothing else. Readiness is an HTTP check; a process that dies
or stays unready past its deadline raises :class:`ComponentError` carrying the
tail of its log, which is what a person needs to see first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sovstack.core.errors import ComponentError

__all__ = [
    "Launch",
    "Running",
    "alive",
    "free_port",
    "log_tail",
    "port_in_use",
    "start",
    "stop",
    "wait_ready",
]

LOG_TAIL_LINES = 40


def _status_ok(response: httpx.Response) -> bool:
    return response.status_code == 200


@dataclass(frozen=True)
class Launch:
    """How to start one component and how to tell it is ready."""

    name: str
    argv: Sequence[str]
    ready_url: str
    port: int
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready_timeout: float = 180.0
    is_ready: Callable[[httpx.Response], bool] = _status_ok
    # The CA to trust when the readiness URL is HTTPS (the site CA).
    ca_file: Path | None = None


@dataclass(frozen=True)
class Running:
    """A started component: its process, where it logs, and how it started."""

    launch: Launch
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def start(launch: Launch, log: Path) -> Running:
    """Start ``launch`` in a new session, output appended to ``log``; do not wait."""
    if port_in_use(launch.port):
        raise ComponentError(
            f"{launch.name}: port {launch.port} on 127.0.0.1 is already in use; "
            "stop what holds it or choose another port"
        )
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **launch.env}
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                list(launch.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=launch.cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ComponentError(f"{launch.name}: cannot run {launch.argv[0]}: {exc}") from exc
    return Running(launch=launch, proc=proc, log=log)


def wait_ready(running: Running) -> None:
    """Block until the component answers its readiness check, or raise with its log."""
    launch = running.launch
    deadline = time.monotonic() + launch.ready_timeout
    # trust_env=False: a proxy variable must never route a loopback probe elsewhere.
    verify: ssl.SSLContext | bool = True
    if launch.ca_file is not None:
        verify = ssl.create_default_context(cafile=str(launch.ca_file))
    with httpx.Client(timeout=5.0, trust_env=False, verify=verify) as client:
        while True:
            code = running.proc.poll()
            if code is not None:
                raise ComponentError(
                    f"{launch.name} exited with status {code} before it was ready. "
                    f"Last lines of {running.log}:\n{log_tail(running.log)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if launch.is_ready(client.get(launch.ready_url)):
                    return
            if time.monotonic() > deadline:
                stop(running.pid)
                raise ComponentError(
                    f"{launch.name} was not ready at {launch.ready_url} after "
                    f"{launch.ready_timeout:.0f}s. Last lines of {running.log}:\n"
                    f"{log_tail(running.log)}"
                )
            time.sleep(0.5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(pid: int, grace: float = 20.0) -> None:
    """Stop the process session led by ``pid``: SIGTERM, then SIGKILL after ``grace``."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    if pgid != pid:
        # Not a session we started; only ever signal that one process.
        pgid = 0
    _signal(pid, pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid) and (pgid == 0 or not _group_alive(pgid)):
            return
        time.sleep(0.2)
    _signal(pid, pgid, signal.SIGKILL)
    _reap(pid)


def _signal(pid: int, pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        if pgid:
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    # A child of ours lingers as a zombie until waited for; others are not ours to wait on.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
