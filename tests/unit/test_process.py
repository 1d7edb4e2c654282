"""Starting, watching and stopping component processes (real processes, no services)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from sovstack.core import services
from sovstack.core.errors import ComponentError
from sovstack.core.services import Launch


def _http_server(port: int, **kw: object) -> Launch:
    return Launch(
        name="web",
        argv=[sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/",
        **kw,  # type: ignore[arg-type]
    )


def test_start_waits_until_ready_and_stop_ends_the_whole_session(tmp_path: Path) -> None:
    port = services.free_port()
    running = services.start(_http_server(port), tmp_path / "web.log")
    try:
        services.wait_ready(running)
        assert services.port_in_use(port)
    finally:
        services.stop(running.pid)
    assert not services.alive(running.pid)
    assert not services.port_in_use(port)


def test_a_process_that_dies_early_is_reported_with_its_log(tmp_path: Path) -> None:
    launch = Launch(
        name="broken",
        argv=[sys.executable, "-c", "import sys; print('bad config: frobnicate'); sys.exit(3)"],
        port=services.free_port(),
        ready_url="http://127.0.0.1:1/",
    )
    running = services.start(launch, tmp_path / "broken.log")
    with pytest.raises(ComponentError, match=r"(?s)exited with status 3.*bad config: frobnicate"):
        services.wait_ready(running)


def test_a_component_never_ready_times_out_with_its_log_and_is_stopped(tmp_path: Path) -> None:
    port = services.free_port()
    launch = Launch(
        name="silent",
        argv=[
            sys.executable,
            "-c",
            "import time; print('still booting', flush=True); time.sleep(60)",
        ],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/",
        ready_timeout=1.5,
    )
    running = services.start(launch, tmp_path / "silent.log")
    with pytest.raises(ComponentError, match=r"(?s)not ready.*still booting"):
        services.wait_ready(running)
    assert not services.alive(running.pid)


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ComponentError, match="already in use"):
            services.start(_http_server(port), tmp_path / "web.log")
    assert not (tmp_path / "web.log").exists()


def test_a_missing_executable_is_a_clear_error(tmp_path: Path) -> None:
    launch = Launch(
        name="ghost",
        argv=["/nonexistent/bin/ghost"],
        port=services.free_port(),
        ready_url="http://127.0.0.1:1/",
    )
    with pytest.raises(ComponentError, match="cannot run /nonexistent/bin/ghost"):
        services.start(launch, tmp_path / "ghost.log")


def test_stop_of_a_gone_pid_is_harmless() -> None:
    services.stop(2**22 + 12345)
