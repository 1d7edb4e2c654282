"""Per-stage timings of a phase: the gateway's ``sovstack_stage_seconds`` diffed across it.

The gateway keeps one histogram per stage (authenticate, authorize, audit,
upstream_first_byte, total; gateway/metrics.py). Reading ``/metrics`` before
and after a phase and subtracting gives that phase's requests alone: their
count, mean (sum / count) and p99. The p99 is interpolated within the
histogram's buckets as Prometheus' ``histogram_quantile`` does, so it is only
as fine as the buckets (1, 2.5, 5, 10 ms ...); the mean is exact. The
refusals (``sovstack_refusals`` by reason) are diffed the same way, so a
phase's errors say why.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "METRIC",
    "Histogram",
    "StageFigures",
    "diff",
    "figures",
    "histograms",
    "merge",
    "quantile",
    "summary",
]

METRIC = "sovstack_stage_seconds"
REFUSALS = "sovstack_refusals"


@dataclass(frozen=True)
class Histogram:
    buckets: tuple[
        tuple[float, float], ...
    ]  # (upper bound, cumulative count), ascending; +Inf last
    sum: float
    count: float


@dataclass(frozen=True)
class StageFigures:
    count: int
    mean_ms: float
    p99_ms: float


def histograms(text: str, metric: str = METRIC) -> dict[str, Histogram]:
    """Each stage's histogram in a Prometheus text exposition (none if the metric is absent)."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != metric:
            continue
        for sample in family.samples:
            stage = sample.labels["stage"]
            if sample.name == f"{metric}_bucket":
                buckets.setdefault(stage, []).append((float(sample.labels["le"]), sample.value))
            elif sample.name == f"{metric}_sum":
                sums[stage] = sample.value
            elif sample.name == f"{metric}_count":
                counts[stage] = sample.value
    return {
        stage: Histogram(tuple(sorted(b)), sums.get(stage, 0.0), counts.get(stage, 0.0))
        for stage, b in buckets.items()
    }


def refusals(before_text: str, after_text: str) -> dict[str, int]:
    """``sovstack_refusals`` by reason, counted between two /metrics texts (none: empty)."""

    def by_reason(text: str) -> dict[str, float]:
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name == REFUSALS:
                for sample in family.samples:
                    if sample.name == f"{REFUSALS}_total":
                        found[sample.labels["reason"]] = sample.value
        return found

    before, after = by_reason(before_text), by_reason(after_text)
    return {r: int(n - before.get(r, 0.0)) for r, n in after.items() if n > before.get(r, 0.0)}


def diff(before: dict[str, Histogram], after: dict[str, Histogram]) -> dict[str, Histogram]:
    """What was observed between two readings of the same histograms."""
    out = {}
    for stage, a in after.items():
        b = before.get(stage)
        if b is None:
            out[stage] = a
            continue
        was = dict(b.buckets)
        out[stage] = Histogram(
            tuple((le, n - was.get(le, 0.0)) for le, n in a.buckets),
            a.sum - b.sum,
            a.count - b.count,
        )
    return out


def quantile(h: Histogram, q: float) -> float | None:
    """The ``q`` quantile, linear within its bucket (None without observations)."""
    if h.count <= 0:
        return None
    rank = q * h.count
    lower, below = 0.0, 0.0
    finite = [le for le, _ in h.buckets if le != float("inf")]
    for le, cumulative in h.buckets:
        if cumulative >= rank:
            if le == float("inf"):
                return finite[-1] if finite else None  # above every bound: the largest one
            inside = cumulative - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, cumulative
    return finite[-1] if finite else None


def merge(diffs: list[dict[str, Histogram]]) -> dict[str, Histogram]:
    """Several phases' diffs as one (same buckets): their observations pooled."""
    out: dict[str, Histogram] = {}
    for d in diffs:
        for stage, h in d.items():
            o = out.get(stage)
            if o is None:
                out[stage] = h
                continue
            had = dict(o.buckets)
            out[stage] = Histogram(
                tuple((le, n + had.get(le, 0.0)) for le, n in h.buckets),
                o.sum + h.sum,
                o.count + h.count,
            )
    return out


def figures(observed: dict[str, Histogram]) -> dict[str, StageFigures]:
    """Per stage with observations: the count, mean and p99 (ms)."""
    out = {}
    for stage, h in observed.items():
        if h.count > 0:
            out[stage] = StageFigures(
                int(h.count), 1000 * h.sum / h.count, 1000 * (quantile(h, 0.99) or 0.0)
            )
    return out


def summary(before_text: str, after_text: str) -> dict[str, StageFigures]:
    """Per stage, the count, mean and p99 of what was observed between two /metrics texts."""
    return figures(diff(histograms(before_text), histograms(after_text)))
