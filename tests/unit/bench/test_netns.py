"""The bench refuses to run where it can see an interface other than loopback."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

netns = importlib.import_module("bench.netns")

HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
)
LO = "    lo:       0       0    0    0    0     0          0         0        0       0    0 " \
     "   0    0     0       0          0\n"  # fmt: skip
ETH0 = LO.replace("    lo:", "  eth0:")


def _net_dev(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "dev"
    path.write_text(HEADER + "".join(lines))
    return path


def test_the_interfaces_are_read_from_the_table(tmp_path: Path) -> None:
    assert netns.interfaces(_net_dev(tmp_path, LO, ETH0)) == ["lo", "eth0"]


def test_only_loopback_passes(tmp_path: Path) -> None:
    netns.require_only_loopback(_net_dev(tmp_path, LO))


def test_another_interface_refuses_and_is_named(tmp_path: Path) -> None:
    with pytest.raises(netns.NotIsolated, match="eth0"):
        netns.require_only_loopback(_net_dev(tmp_path, LO, ETH0))


def test_no_loopback_refuses(tmp_path: Path) -> None:
    with pytest.raises(netns.NotIsolated, match="no loopback"):
        netns.require_only_loopback(_net_dev(tmp_path))


def test_entering_refuses_before_touching_any_interface(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if already re-run: the mark is only a request, the interface list decides.
    monkeypatch.setenv(netns.MARK, "1")
    ran: list[object] = []
    monkeypatch.setattr(netns.subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(netns.NotIsolated, match="eth0"):
        netns.enter(["-m", "bench.gateway_bench"], net_dev=_net_dev(tmp_path, LO, ETH0))
    assert ran == []  # 'ip link set lo up' never ran
