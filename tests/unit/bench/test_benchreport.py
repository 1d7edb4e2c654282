"""The report: rows against direct, CPU per request, stages, the targets met or not."""

from __future__ import annotations

import importlib

import pytest

benchreport = importlib.import_module("bench.benchreport")
stages = importlib.import_module("bench.stages")
wrkload = importlib.import_module("bench.wrkload")

META = {
    "when": "2026-12-07 12:00:00", "machine": "2 cores", "upstream": "the 20 ms stub",
    "load": "wrk 4.1.0", "seconds": 5, "rounds": 2, "schedule": "rotating", "cores": 2,
}  # fmt: skip


def _phase(round_: int, connections: int, p50_ms: float, p99_ms: float, rps: float,
           cpu_s: float = 0.0, opa_s: float = 0.0, errors: int = 0,
           observed: dict | None = None) -> object:  # fmt: skip
    requests = int(rps * 5)
    load = wrkload.Load(p50_ms / 1000, p99_ms / 1000, rps, requests, errors, 0)
    return benchreport.Phase(round_, connections, load, cpu_s, opa_s, observed or {}, 0.0, 1.0, "")


def _results(on_p50: float, on_p99: float, on_cpu_s: float) -> list:
    authorize = stages.Histogram(((0.001, 90.0), (0.0025, 100.0), (float("inf"), 100.0)), 0.05, 100)
    direct = benchreport.Result("direct", [
        _phase(0, 1, 20.0, 21.0, 49), _phase(1, 1, 20.2, 21.4, 49),
        _phase(0, 64, 21.0, 22.0, 3000, cpu_s=1.5), _phase(1, 64, 21.0, 22.0, 3000, cpu_s=1.5),
    ])  # fmt: skip
    on = benchreport.Result("gateway (all on)", [
        _phase(0, 1, on_p50, on_p99, 45, observed={"authorize": authorize}),
        _phase(1, 1, on_p50, on_p99, 45, observed={"authorize": authorize}),
        _phase(0, 64, 100.0, 140.0, 600, cpu_s=on_cpu_s, opa_s=1.5, errors=1),
        _phase(1, 64, 100.0, 140.0, 600, cpu_s=on_cpu_s, opa_s=1.5),
    ])  # fmt: skip
    # Named like the workers row up to the comma: it must not be taken for it.
    cache = benchreport.Result("gateway (all on, decision cache 1 s)", on.phases)
    workers = benchreport.Result(
        benchreport.workers_name(2), skipped="workers: not supported by this gateway"
    )
    peer = benchreport.Result(benchreport.LITELLM, [
        _phase(r, c, 42.0, 45.0, 50, cpu_s=5.0) for r in (0, 1) for c in (1, 64)
    ])  # fmt: skip
    return [direct, on, workers, peer, cache]


def test_each_row_is_against_direct_and_cpu_is_pooled_with_opa() -> None:
    rows = benchreport.rows(_results(21.1, 23.5, on_cpu_s=1.5))
    on = rows[1]
    assert on["added_p50_ms"] == pytest.approx(21.1 - 20.1)  # direct's median over rounds
    assert on["added_p99_ms"] == pytest.approx(23.5 - 21.2)
    assert on["ratio_64"] == pytest.approx(0.2)
    # (1.5 s own + 1.5 s OPA) per phase over 3000 requests each: 1000 us, half of it OPA.
    assert on["cpu_us_per_request_64"] == pytest.approx(1000.0)
    assert on["opa_cpu_us_per_request_64"] == pytest.approx(500.0)
    assert on["errors"] == 1
    assert on["stages_1"]["authorize"]["count"] == 200
    assert on["stages_1"]["authorize"]["mean_ms"] == pytest.approx(0.5)
    assert rows[2] == {
        "target": "gateway (all on, 2 workers)",
        "skipped": "workers: not supported by this gateway",
    }


def test_the_targets_are_reported_met_or_not_never_raised() -> None:
    met = benchreport.targets_met(benchreport.rows(_results(21.1, 23.5, on_cpu_s=1.5)), 2)
    assert met[0].startswith("CPU per request (all on) <= 0.1 of LiteLLM's: met (0.05)")
    assert met[1].startswith("added p50 at 1 in flight (all on) <= 1.5 ms: met")
    assert met[2].startswith("added p99 at 1 in flight (all on) <= 3 ms: met")
    assert met[3].startswith("N workers at 64 in flight >= 0.9 of direct: not measured")
    slow = benchreport.targets_met(benchreport.rows(_results(26.0, 31.0, on_cpu_s=7.5)), 2)
    assert slow[0] == "CPU per request (all on) <= 0.1 of LiteLLM's: not met (0.15)"
    assert slow[1] == "added p50 at 1 in flight (all on) <= 1.5 ms: not met (+5.90 ms)"
    assert slow[2] == "added p99 at 1 in flight (all on) <= 3 ms: not met (+9.80 ms)"


def test_the_markdown_table_stages_and_skipped_rows() -> None:
    text = benchreport.markdown(benchreport.rows(_results(21.1, 23.5, on_cpu_s=1.5)), META)
    lines = text.splitlines()
    assert (
        "| gateway (all on) | 21.10 | +1.00 | 23.50 | +2.30 | 600 | 0.20 | 1000 | 500 | 1 |"
        in lines
    )
    assert "- gateway (all on, 2 workers): workers: not supported by this gateway" in lines
    assert any(line.startswith("| gateway (all on) | ") and "0.50 / " in line for line in lines)
    assert "- added p99 at 1 in flight (all on) <= 3 ms: met (+2.30 ms)" in lines
