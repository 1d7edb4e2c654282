"""Client budgets shared by worker processes: one bucket and one in-flight count per client.

Each test uses the real table (shared memory, flock on a real file); workers
are handles attached as the supervisor's workers attach them, and one test
forks a real process to show the memory is shared.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sovstack.gateway.budgets import SharedBudgets, SharedClientSlots, SharedRateLimiter
from sovstack.gateway.errors import RateLimited


def _scope() -> dict[str, object]:
    return {"type": "http", "state": {}}


def test_a_clients_requests_in_flight_are_counted_across_workers(tmp_path: Path) -> None:
    table = SharedBudgets(tmp_path)
    zero = SharedClientSlots(table.attach(0), per_client=2)
    one = SharedClientSlots(table.attach(1), per_client=2)
    zero.take(_scope(), "line-monitor")
    one.take(_scope(), "line-monitor")
    with pytest.raises(RateLimited, match="2 requests in flight") as refused:
        zero.take(_scope(), "line-monitor")
    assert refused.value.code == "too_many_in_flight"
    one.take(_scope(), "quality-lab")  # another client has its own count
    one.release("line-monitor")
    zero.take(_scope(), "line-monitor")  # the slot given back on one worker is free on all


def test_a_restarted_worker_leaves_nothing_of_its_predecessor_held(tmp_path: Path) -> None:
    table = SharedBudgets(tmp_path)
    zero = SharedClientSlots(table.attach(0), per_client=1)
    SharedClientSlots(table.attach(1), per_client=1).take(_scope(), "line-monitor")
    with pytest.raises(RateLimited):
        zero.take(_scope(), "line-monitor")
    table.attach(1)  # worker 1 died holding the slot; its successor attaches
    zero.take(_scope(), "line-monitor")


def test_one_token_bucket_per_client_for_all_workers(tmp_path: Path) -> None:
    table = SharedBudgets(tmp_path)
    zero = SharedRateLimiter(table.attach(0), rate=0.001, burst=2)
    one = SharedRateLimiter(table.attach(1), rate=0.001, burst=2)
    zero.check("line-monitor")
    one.check("line-monitor")
    with pytest.raises(RateLimited) as refused:
        zero.check("line-monitor")
    assert refused.value.code == "rate_limited"
    one.check("quality-lab")


def test_the_table_is_shared_with_a_forked_worker(tmp_path: Path) -> None:
    table = SharedBudgets(tmp_path)
    parent = SharedClientSlots(table.attach(0), per_client=2)
    parent.take(_scope(), "line-monitor")
    pid = os.fork()
    if pid == 0:  # the worker: takes the second slot, then finds none left
        child = SharedClientSlots(table.attach(1), per_client=2)
        child.take(_scope(), "line-monitor")
        try:
            child.take(_scope(), "line-monitor")
        except RateLimited:
            os._exit(0)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with pytest.raises(RateLimited):  # the slot the child took is held here too
        parent.take(_scope(), "line-monitor")


def test_a_full_table_refuses_a_new_client(tmp_path: Path) -> None:
    slots = SharedClientSlots(SharedBudgets(tmp_path, slots=2).attach(0), per_client=5)
    slots.take(_scope(), "a")
    slots.take(_scope(), "b")
    with pytest.raises(RateLimited, match="table of client budgets is full"):
        slots.take(_scope(), "c")
    slots.take(_scope(), "a")  # the clients it holds go on
