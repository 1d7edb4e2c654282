"""What the gateway bench measured, as rows, a Markdown report and the issue's targets.

Pure: it takes each target's phases (bench/gateway_bench.py measures them)
and computes, per target, the medians over rounds (latency at 1 in flight,
throughput at 64), CPU per request pooled over the phases at 64 in flight
(the target's process tree, plus OPA's where the target asks OPA), errors,
and the stage figures pooled over the phases at 1 in flight. The targets of
issue 16 item 5 are reported met or not met; nothing here asserts them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from sovstack.gateway.metrics import STAGES

from .stages import Histogram, figures, merge
from .wrkload import Load

__all__ = [
    "DIRECT",
    "LITELLM",
    "Phase",
    "Result",
    "markdown",
    "rows",
    "targets_met",
    "workers_name",
]

DIRECT = "direct"
ALL_ON = "gateway (all on)"
LITELLM = "LiteLLM proxy 1.108.0"


def workers_name(n: int) -> str:
    """The row of the shipped gateway, all on, with ``workers: n``."""
    return f"gateway (all on, {n} workers)"


def _is_workers(name: str) -> bool:
    return name.startswith("gateway (all on, ") and name.endswith(" workers)")


@dataclass(frozen=True)
class Phase:
    round: int
    connections: int
    load: Load
    cpu_s: float  # the target's process tree
    opa_cpu_s: float  # OPA's, when the target asks it (else 0)
    stages: dict[str, Histogram]  # sovstack_stage_seconds diffed across the phase
    waited_s: float  # until everything was quiet, before the phase
    settle_s: float  # until everything was quiet again, after it
    after: str  # the target measured just before
    sync_s: float = 0.0  # os.sync() after it: the disk writeback it left behind
    refusals: dict[str, int] = field(default_factory=dict)  # the gateway's, by reason


@dataclass
class Result:
    name: str
    phases: list[Phase] = field(default_factory=list)
    skipped: str = ""  # why it was not measured, said in the report


def _median(result: Result, connections: int, key: str) -> float:
    return statistics.median(
        getattr(p.load, key) for p in result.phases if p.connections == connections
    )


def _cpu_us(result: Result, connections: int) -> tuple[float | None, float | None]:
    phases = [p for p in result.phases if p.connections == connections]
    requests = sum(p.load.requests for p in phases)
    if not requests:
        return None, None
    total = sum(p.cpu_s + p.opa_cpu_s for p in phases)
    return 1e6 * total / requests, 1e6 * sum(p.opa_cpu_s for p in phases) / requests


def _pooled_refusals(result: Result) -> dict[str, int]:
    pooled: dict[str, int] = {}
    for p in result.phases:
        for reason, n in p.refusals.items():
            pooled[reason] = pooled.get(reason, 0) + n
    return pooled


def rows(results: list[Result]) -> list[dict[str, Any]]:
    """One row per measured target, each against ``direct`` (the first result)."""
    direct = results[0]
    out = []
    for r in results:
        if r.skipped:
            out.append({"target": r.name, "skipped": r.skipped})
            continue
        cpu_64, opa_64 = _cpu_us(r, 64)
        cpu_1, opa_1 = _cpu_us(r, 1)
        p50, p99, rps = _median(r, 1, "p50_s"), _median(r, 1, "p99_s"), _median(r, 64, "rps")
        at_1 = merge([p.stages for p in r.phases if p.connections == 1])
        out.append({
            "target": r.name,
            "p50_ms": 1000 * p50,
            "p99_ms": 1000 * p99,
            "added_p50_ms": 1000 * (p50 - _median(direct, 1, "p50_s")),
            "added_p99_ms": 1000 * (p99 - _median(direct, 1, "p99_s")),
            "rps_64": rps,
            "ratio_64": rps / _median(direct, 64, "rps"),
            "cpu_us_per_request_64": cpu_64,
            "opa_cpu_us_per_request_64": opa_64,
            "cpu_us_per_request_1": cpu_1,
            "opa_cpu_us_per_request_1": opa_1,
            "errors": sum(p.load.errors for p in r.phases),
            "refusals": _pooled_refusals(r),
            "stages_1": {stage: vars(f) for stage, f in figures(at_1).items()},
        })  # fmt: skip
    return out


def _row(rows_: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in rows_ if r["target"] == name and "skipped" not in r), None)


def targets_met(rows_: list[dict[str, Any]], cores: int) -> list[str]:
    """Issue 16 item 5, each as 'met', 'not met' or 'not measured', with the figures."""
    on, peer = _row(rows_, ALL_ON), _row(rows_, LITELLM)
    workers = next((r for r in rows_ if _is_workers(r["target"]) and "skipped" not in r), None)

    def verdict(ok: bool) -> str:
        return "met" if ok else "not met"

    lines = []
    if on is None:
        return ["all on: not measured"]
    if peer is None:
        lines.append("CPU per request (all on) <= 0.1 of LiteLLM's: not measured (no LiteLLM row)")
    elif not on["cpu_us_per_request_64"] or not peer["cpu_us_per_request_64"]:
        lines.append("CPU per request (all on) <= 0.1 of LiteLLM's: not measured (no requests)")
    else:
        share = on["cpu_us_per_request_64"] / peer["cpu_us_per_request_64"]
        lines.append(
            f"CPU per request (all on) <= 0.1 of LiteLLM's: {verdict(share <= 0.1)} ({share:.2f})"
        )
    lines.append(
        f"added p50 at 1 in flight (all on) <= 1.5 ms: {verdict(on['added_p50_ms'] <= 1.5)} "
        f"({on['added_p50_ms']:+.2f} ms)"
    )
    lines.append(
        f"added p99 at 1 in flight (all on) <= 3 ms: {verdict(on['added_p99_ms'] <= 3.0)} "
        f"({on['added_p99_ms']:+.2f} ms)"
    )
    if workers is None:
        lines.append("N workers at 64 in flight >= 0.9 of direct: not measured (no workers row)")
    else:
        spare = "" if cores > 2 else f"; this machine has {cores} cores, no spare ones"
        lines.append(
            f"N workers at 64 in flight >= 0.9 of direct: {verdict(workers['ratio_64'] >= 0.9)} "
            f"({workers['ratio_64']:.2f}{spare})"
        )
    return lines


def _us(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def _stage_cell(stages: dict[str, dict[str, float]], stage: str) -> str:
    f = stages.get(stage)
    return "" if f is None else f"{f['mean_ms']:.2f} / {f['p99_ms']:.1f}"


def markdown(rows_: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The report: the main table, the skipped targets, the stages, the targets."""
    lines = [
        f"# Gateway benchmark — {meta['when']}",
        "",
        f"Machine: {meta['machine']}. Upstream: {meta['upstream']}. {meta['load']}, "
        f"{meta['seconds']} s per phase, {meta['rounds']} rounds ({meta['schedule']}); latency and "
        "throughput are medians over rounds, CPU per request is pooled over the phases at 64 "
        "in flight (the target's process tree from /proc, OPA's included where it asks OPA; "
        "for direct, the stub's own).",
        "",
        *(
            [
                f"Command: `{meta['command']}` at {meta.get('commit', '?')}; load average at the "
                f"start {meta['load_average_at_start'][0]}.",
                "",
            ]
            if "command" in meta
            else []
        ),
        "| target | p50 ms (1) | added p50 | p99 ms (1) | added p99 | rps (64) | vs direct (64) "
        "| CPU µs/req (64) | of it OPA | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows_:
        if "skipped" in r:
            continue
        lines.append(
            f"| {r['target']} | {r['p50_ms']:.2f} | {r['added_p50_ms']:+.2f} | {r['p99_ms']:.2f} "
            f"| {r['added_p99_ms']:+.2f} | {r['rps_64']:.0f} | {r['ratio_64']:.2f} "
            f"| {_us(r['cpu_us_per_request_64'])} | {_us(r['opa_cpu_us_per_request_64'])} "
            f"| {r['errors']} |"
        )
    skipped = [f"- {r['target']}: {r['skipped']}" for r in rows_ if "skipped" in r]
    if skipped:
        lines += ["", "Not measured:", "", *skipped]
    refused = [
        f"- {r['target']}: "
        + ", ".join(f"{n} {reason}" for reason, n in sorted(r["refusals"].items()))
        for r in rows_
        if r.get("refusals")
    ]
    if refused:
        lines += [
            "",
            "Refused by the gateway during the phases (sovstack_refusals, by reason):",
            "",
        ]
        lines += refused
    if meta.get("notes"):
        lines += ["", *[f"- {note}" for note in meta["notes"]]]
    staged = [r for r in rows_ if r.get("stages_1")]
    if staged:
        lines += [
            "",
            "Stages at 1 in flight (sovstack_stage_seconds diffed across each phase, pooled over "
            "rounds): mean ms / p99 ms, the p99 within the histogram's buckets.",
            "",
            "| target | " + " | ".join(STAGES) + " |",
            "|---|" + "---:|" * len(STAGES),
        ]
        for r in staged:
            cells = " | ".join(_stage_cell(r["stages_1"], s) for s in STAGES)
            lines.append(f"| {r['target']} | {cells} |")
    lines += ["", "Targets (issue 16 item 5; reported, never asserted):", ""]
    lines += [f"- {line}" for line in targets_met(rows_, meta["cores"])]
    return "\n".join(lines) + "\n"
