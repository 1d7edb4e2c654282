"""Prometheus metrics of the gateway, in a registry of its own (no process globals).

The Grafana dashboard (monitoring/grafana/sovstack.json) queries these names;
tests/unit/monitoring checks every query against this registry, so a metric
renamed here fails there. Usage and energy are counted by client, model and
site; a request whose energy the node cannot measure adds nothing to
``sovstack_energy_joules`` and one to ``sovstack_energy_unmeasured_requests``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from sovstack.gateway.errors import GatewayError
from sovstack.gateway.timing import Stage

__all__ = ["STAGES", "Metrics"]

# The stages of ``sovstack_stage_seconds``: authenticate (the token check), authorize (the
# policy decision), audit (the accepted record made durable), upstream_first_byte (request
# sent to the replica's first byte) and total (arrival to the response's last byte).
STAGES: Final = ("authenticate", "authorize", "audit", "upstream_first_byte", "total")
_BY_WHO: Final = ["client", "model", "site"]
_ENDS: Final = frozenset({"completed", "aborted", "error"})
# Errors of a request already accepted (it has an end record, not a denied one): not refusals.
_AFTER_ACCEPTANCE: Final = frozenset({"upstream", "upstream_timeout", "no_replica"})
# Fine below 50 ms, where a stage's share of the gateway's few added milliseconds is told
# apart (a p99 read from these is bounded by its bucket), coarse above for long streams.
_SECONDS: Final = (
    0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175,
    0.02, 0.0225, 0.025, 0.03, 0.035, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    60, 120,
)  # fmt: skip


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "sovstack_requests", "Requests answered, by route and status.",
            ["route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "sovstack_request_seconds", "Time to the end of the response, by route.",
            ["route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )  # fmt: skip
        self.decisions = Counter(
            "sovstack_decisions", "Policy decisions, by result.", ["result"],
            registry=self.registry,
        )  # fmt: skip
        self.tokens = Counter(
            "sovstack_tokens", "Tokens processed, by model and kind (prompt, completion).",
            ["model", "kind"], registry=self.registry,
        )  # fmt: skip
        self.upstream_healthy = Gauge(
            "sovstack_upstream_healthy", "1 if the replica passed its last health check.",
            ["replica", "model", "site"], registry=self.registry,
            multiprocess_mode="livemax",  # with workers: healthy to one of the live workers
        )  # fmt: skip
        self.audit_writable = Gauge(
            "sovstack_audit_writable",
            "1 if the audit log can take records; 0 while every request is refused.",
            registry=self.registry,
            multiprocess_mode="livemin",  # with workers: 0 while any worker's log cannot
        )
        self.upstream_outstanding = Gauge(
            "sovstack_upstream_outstanding", "Requests in flight to the replica.",
            ["replica"], registry=self.registry, multiprocess_mode="livesum",
        )  # fmt: skip
        # --- usage, energy and refusals (issue 18): the dashboard's panels
        self.stage_seconds = Histogram(
            "sovstack_stage_seconds", "Seconds spent in each stage of a request (see STAGES).",
            ["stage"], registry=self.registry, buckets=_SECONDS,
        )  # fmt: skip
        # Each stage's child, bound once: a label lookup per request per stage is not free.
        # A Stage also notes its time for the Server-Timing header (gateway/timing.py).
        self.stage = {name: Stage(name, self.stage_seconds.labels(name)) for name in STAGES}
        self.client_tokens = Counter(
            "sovstack_client_tokens",
            "Tokens by client, model, site and kind (prompt, completion).",
            [*_BY_WHO, "kind"], registry=self.registry,
        )  # fmt: skip
        self.replica_seconds = Counter(
            "sovstack_replica_seconds",
            "Seconds requests were in flight on their replica, by client, model, site.",
            _BY_WHO, registry=self.registry,
        )  # fmt: skip
        self.gpu_seconds = Counter(
            "sovstack_gpu_seconds",
            "GPU-seconds: each request's share of its replica's busy time, by client, model, site.",
            _BY_WHO, registry=self.registry,
        )  # fmt: skip
        self.energy = Counter(
            "sovstack_energy_joules",
            "Joules apportioned to requests by tokens, where the node measures energy.",
            _BY_WHO, registry=self.registry,
        )  # fmt: skip
        self.energy_unmeasured = Counter(
            "sovstack_energy_unmeasured_requests",
            "Requests whose energy is unknown (the node has no energy counter), by who asked.",
            _BY_WHO, registry=self.registry,
        )  # fmt: skip
        self.refusals = Counter(
            "sovstack_refusals", "Requests refused, by reason (policy, rate limit, audit...).",
            ["reason"], registry=self.registry,
        )  # fmt: skip

    def exposition(self) -> bytes:
        """The text ``/metrics`` answers: this process's metrics, or with workers every worker's.

        With workers, ``multiprocess_dir`` is the supervisor's folder where
        prometheus_client keeps each process's metrics (gateway/workers.py);
        they are summed here: counters and histograms over every worker that
        ever ran, gauges over the live ones (their ``multiprocess_mode``).
        """
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]  # untyped upstream
        return generate_latest(registry)

    def refused(self, error: GatewayError) -> None:
        """Count a refusal, by the error's code (``policy_denied``, ``rate_limited``...)."""
        if error.code not in _AFTER_ACCEPTANCE:
            self.refusals.labels(error.code or type(error).__name__).inc()

    def observe(self, record: Mapping[str, Any]) -> None:
        """Count a durable end record's usage (an Auditor observer); other records add none."""
        if record["event"] not in _ENDS:
            return
        who = (record["client"] or "", record["model"] or "", record["site"] or "")
        tokens = record["tokens"]
        if tokens is not None:
            for kind in ("prompt", "completion"):
                self.client_tokens.labels(*who, kind).inc(tokens[kind])
        if "energy_mj" not in record:
            return  # written without a meter (a request closed at restart)
        if record["replica_us"] is not None:
            self.replica_seconds.labels(*who).inc(record["replica_us"] / 1_000_000)
        if record["gpu_us"] is not None:
            self.gpu_seconds.labels(*who).inc(record["gpu_us"] / 1_000_000)
        if record["energy_mj"] is None:
            self.energy_unmeasured.labels(*who).inc()
        else:
            self.energy.labels(*who).inc(record["energy_mj"] / 1000)
