"""Stage figures from two /metrics texts of the gateway's own registry."""

from __future__ import annotations

import importlib
from itertools import pairwise

import pytest
from prometheus_client import generate_latest

from sovstack.gateway.metrics import Metrics

stages = importlib.import_module("bench.stages")


def _text(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_only_what_was_observed_between_the_two_texts_counts() -> None:
    metrics = Metrics()
    for _ in range(50):  # before the phase: slow, must not show
        metrics.stage["authorize"].observe(0.2)
    before = _text(metrics)
    observed = [0.0012] * 98 + [0.004, 0.0045]
    for seconds in observed:
        metrics.stage["authorize"].observe(seconds)
        metrics.stage["total"].observe(seconds + 0.02)
    figures = stages.summary(before, _text(metrics))
    assert set(figures) == {"authorize", "total"}
    authorize = figures["authorize"]
    assert authorize.count == 100
    assert authorize.mean_ms == pytest.approx(1000 * sum(observed) / 100)
    # The 99th of 100 is 4 ms: in the (2.5 ms, 5 ms] bucket, nowhere near the 200 ms before.
    assert 2.5 < authorize.p99_ms <= 5.0
    assert figures["total"].mean_ms == pytest.approx(authorize.mean_ms + 20)


def test_a_gateway_without_stage_histograms_gives_no_figures() -> None:
    text = "# TYPE sovstack_requests_total counter\nsovstack_requests_total 3.0\n"
    assert stages.summary(text, text) == {}
    assert stages.summary("", "") == {}


def test_phases_pooled_are_the_sum_of_their_observations() -> None:
    metrics = Metrics()
    texts = [_text(metrics)]
    for seconds in (0.001, 0.003):
        for _ in range(10):
            metrics.stage["audit"].observe(seconds)
        texts.append(_text(metrics))
    phases = [stages.diff(stages.histograms(a), stages.histograms(b)) for a, b in pairwise(texts)]
    pooled = stages.figures(stages.merge(phases))["audit"]
    assert pooled.count == 20
    assert pooled.mean_ms == pytest.approx(2.0)


def test_a_quantile_above_every_bound_is_the_largest_bound() -> None:
    h = stages.Histogram(((0.001, 0.0), (0.01, 0.0), (float("inf"), 4.0)), 400.0, 4.0)
    assert stages.quantile(h, 0.99) == 0.01
    assert stages.quantile(stages.Histogram(((float("inf"), 0.0),), 0.0, 0.0), 0.99) is None


def test_refusals_between_two_texts_by_reason() -> None:
    metrics = Metrics()
    metrics.refusals.labels("rate_limited").inc(3)
    before = _text(metrics)
    metrics.refusals.labels("rate_limited").inc(2)
    metrics.refusals.labels("policy_unavailable").inc(7)
    assert stages.refusals(before, _text(metrics)) == {"rate_limited": 2, "policy_unavailable": 7}
    assert stages.refusals(before, before) == {}
