"""Apportioning a replica's busy time and energy over its requests, driven by a fake counter.

The counter and the clock are set by hand (the transport a sampler reads
them through is what is faked); the meter's arithmetic is what runs.
"""

from __future__ import annotations

from sovstack.gateway.energy import NO_COUNTER, Meter, Share


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def at(self, seconds: float) -> Clock:
        self.now = 100.0 + seconds
        return self


def test_a_request_alone_gets_its_time_and_all_the_energy_of_its_intervals() -> None:
    clock = Clock()
    meter = Meter(clock)
    meter.sample(1_000)  # t=0: the first reading
    clock.at(1)
    meter.begin("a")
    clock.at(2)
    meter.sample(6_000)  # 5 J in [0, 2]
    clock.at(2.5)
    meter.end("a")
    share = meter.settle("a", tokens=10)
    # 5 J measured, then 0.5 s at the last interval's 2.5 W, estimated: 1.25 J.
    assert share == Share(replica_us=1_500_000, gpu_us=1_500_000, energy_mj=6_250,
                          energy_unmeasured=None)  # fmt: skip
    clock.at(3)
    meter.sample(8_000)  # 2 J, of which 1.25 were handed out already; nobody left
    assert meter.settle("a", tokens=10) is None  # once


def test_busy_time_is_split_evenly_over_the_requests_in_flight() -> None:
    clock = Clock()
    meter = Meter(clock)
    meter.begin("a")
    clock.at(1)
    meter.begin("b")
    clock.at(2)
    meter.end("a")
    clock.at(4)
    meter.end("b")
    a, b = meter.settle("a", 5), meter.settle("b", 5)
    assert a is not None and b is not None
    assert (a.gpu_us, b.gpu_us) == (1_500_000, 2_500_000)  # 1 + 1/2, 1/2 + 2
    assert (a.replica_us, b.replica_us) == (2_000_000, 3_000_000)
    assert a.gpu_us + b.gpu_us == 4_000_000  # the replica's busy time


def _settled_pair(first: str) -> dict[str, Share]:
    """a (30 tokens) and b (10) side by side for 1 s in an interval of 8 J; a history at 10/s."""
    clock = Clock()
    meter = Meter(clock)
    meter.sample(0)
    meter.begin("earlier")
    clock.at(1)
    meter.settle("earlier", tokens=10)  # the replica's mean rate: 10 tokens/s
    clock.at(2)
    meter.sample(1_000)
    meter.begin("a")
    meter.begin("b")
    clock.at(3)
    meter.end("a")
    meter.end("b")
    meter.sample(9_000)
    tokens = {"a": 30, "b": 10}
    second = "b" if first == "a" else "a"
    return {name: s for name in (first, second) if (s := meter.settle(name, tokens[name]))}


def test_energy_is_apportioned_by_tokens_and_adds_up_to_what_was_measured() -> None:
    for first in ("a", "b"):
        shares = _settled_pair(first)
        energy = {name: share.energy_mj for name, share in shares.items()}
        assert energy["a"] is not None and energy["b"] is not None
        assert energy["a"] + energy["b"] == 8_000
    # Settled first, a is weighed against b at the replica's mean rate, which is b's.
    assert {n: s.energy_mj for n, s in _settled_pair("a").items()} == {"a": 6_000, "b": 2_000}


def test_without_a_counter_energy_is_null_with_the_reason_and_time_is_still_counted() -> None:
    clock = Clock()
    meter = Meter(clock)  # never sampled: the node has no energy counter
    meter.begin("a")
    clock.at(2)
    share = meter.settle("a", tokens=4)
    assert share == Share(2_000_000, 2_000_000, None, NO_COUNTER)


def test_a_failed_reading_or_a_counter_that_goes_back_leaves_the_request_unmeasured() -> None:
    clock = Clock()
    meter = Meter(clock)
    meter.sample(500)
    meter.begin("a")
    meter.begin("b")
    clock.at(1)
    meter.sample(None, "NVML: the GPU is lost")
    a = meter.settle("a", 1)
    assert a is not None and (a.energy_mj, a.energy_unmeasured) == (None, "NVML: the GPU is lost")
    meter.sample(900)
    meter.begin("c")
    clock.at(2)
    meter.sample(100)  # went back
    c = meter.settle("c", 1)
    assert c is not None and c.energy_mj is None and "went back" in str(c.energy_unmeasured)


def test_a_request_begun_before_the_first_reading_is_unmeasured() -> None:
    clock = Clock()
    meter = Meter(clock)
    meter.begin("a")
    clock.at(1)
    meter.sample(1_000)
    clock.at(2)
    meter.sample(3_000)
    a = meter.settle("a", 3)
    assert a is not None and a.energy_mj is None and a.energy_unmeasured == NO_COUNTER


def test_a_request_never_settled_is_forgotten_and_the_others_share_the_energy() -> None:
    clock = Clock()
    meter = Meter(clock)
    meter.sample(0)
    meter.begin("gone")  # sent elsewhere after a connect failure: never settled here
    meter.begin("kept")
    clock.at(1)
    meter.end("gone")
    meter.sample(4_000)
    clock.at(70)
    meter.sample(4_000)  # past FORGET_AFTER_S: "gone" is dropped
    kept = meter.settle("kept", 2)
    assert kept is not None and kept.energy_mj == 4_000


def test_a_request_that_ends_before_any_interval_was_measured_is_unmeasured() -> None:
    clock = Clock()
    meter = Meter(clock)
    meter.sample(1_000)  # a first reading, but no interval measured yet
    meter.begin("a")
    clock.at(0.2)
    a = meter.settle("a", 3)
    assert a is not None and a.energy_mj is None
    assert a.energy_unmeasured == "no energy interval measured yet"
