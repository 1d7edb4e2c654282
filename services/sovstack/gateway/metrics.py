"""Prometheus metrics of the gateway, in a registry of its own (no process globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
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
        )  # fmt: skip
        self.audit_writable = Gauge(
            "sovstack_audit_writable",
            "1 if the audit log can take records; 0 while every request is refused.",
            registry=self.registry,
        )
        self.upstream_outstanding = Gauge(
            "sovstack_upstream_outstanding", "Requests in flight to the replica.",
            ["replica"], registry=self.registry,
        )  # fmt: skip
