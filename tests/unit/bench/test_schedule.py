"""The order of a bench's phases."""

from __future__ import annotations

import importlib
from collections import Counter
from itertools import pairwise

schedule = importlib.import_module("bench.schedule")

NAMES = ["direct", "all on", "cache", "auth off", "policy off", "audit off", "all off"]


def test_every_target_runs_once_per_level_and_round() -> None:
    steps = schedule.rotating(NAMES, 3)
    assert Counter(steps) == Counter(
        {(r, level, n): 1 for r in range(3) for level in schedule.LEVELS for n in NAMES}
    )
    # Within a round, every target at 1 in flight before any at 64.
    for r in range(3):
        levels = [level for round_, level, _ in steps if round_ == r]
        assert levels == sorted(levels)


def test_no_target_always_comes_first_or_follows_the_same_one() -> None:
    steps = schedule.rotating(NAMES, 2)
    firsts = {steps[0][2], steps[len(NAMES) * 2][2]}
    assert len(firsts) == 2
    before: dict[tuple[int, str], list[str]] = {}
    for (_, level, prev), (_, same, name) in pairwise(steps):
        if level == same:  # at each level, across the rounds
            before.setdefault((level, name), []).append(prev)
    assert all(len(set(prevs)) == len(prevs) for prevs in before.values())


def test_the_old_order_put_all_on_after_directs_light_work_only() -> None:
    steps = schedule.per_target(NAMES, 3)
    after = {}
    for prev, step in pairwise(steps):
        if step[1] == 1:  # a light phase: what ran just before it
            after.setdefault(step[2], []).append((prev[2], prev[1]))
    # Forward rounds: 'all on' at 1 in flight right after direct's 64, which loads only the stub.
    assert ("direct", 64) in after["all on"]
    # 'auth off' always came right after another gateway's phase at 64 in flight.
    assert all(
        name not in ("direct", "auth off") and level == 64 for name, level in after["auth off"]
    )
