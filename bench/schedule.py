"""The order of a bench's phases: every target at one load, then every target at the next.

A phase is one target at one number of connections for a fixed time. The
order of the targets rotates each round by an even share of their number,
and runs backwards every other round, so no target always comes first nor
always follows the same one; the bench also waits for quiet before each
phase, so one target's backlog (audit records still being made durable,
OPA's decision logs) never lands in the next one's figures.

:func:`per_target` is the order used before issue 16 (each target at 1 then
at 64, the list reversed every other round, no waiting): in every forward
round it put "all on" at 1 in flight right after direct at 64 (load on the
stub alone), and every other gateway variant right after another gateway's
phase at 64.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["LEVELS", "Step", "per_target", "rotating"]

LEVELS = (1, 64)
Step = tuple[int, int, str]  # (round, connections, target)


def rotating(names: Sequence[str], rounds: int, levels: Sequence[int] = LEVELS) -> list[Step]:
    """Round by round, each level across all targets: rotated, backwards every other round."""
    steps: list[Step] = []
    for r in range(rounds):
        k = (r * len(names)) // rounds
        order = [*names[k:], *names[:k]]
        if r % 2:
            order.reverse()
        steps += [(r, level, name) for level in levels for name in order]
    return steps


def per_target(names: Sequence[str], rounds: int, levels: Sequence[int] = LEVELS) -> list[Step]:
    """The old order: each target's levels in a row, the list reversed every other round."""
    steps: list[Step] = []
    for r in range(rounds):
        order = names if r % 2 == 0 else list(reversed(names))
        steps += [(r, level, name) for name in order for level in levels]
    return steps
