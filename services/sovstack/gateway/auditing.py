"""What the gateway writes to the audit log, and when.

For every request: one record when it is decided (``accepted`` or
``denied``), and, for an accepted one, one when it ends (``completed``,
``aborted`` when the client went away, ``error`` otherwise). ``accepted``
must be durable before anything is sent upstream: if the log cannot take it,
the request fails with 503 and nothing reaches a model (fail closed).

A gateway killed mid-request (SIGKILL, power loss) leaves ``accepted``
records with no end. At the next start, before any request is taken,
:meth:`Auditor.close_abandoned` closes each with an ``aborted`` record whose
``error`` is ``gateway_restart``, so every accepted request has an end.

An end record also carries the request's share of its replica (time on it,
GPU-seconds, energy or why energy is unknown; gateway/energy.py), asked of the
pool's meter through ``settle``. Each durable record is handed to the
``observers`` (the quota ledger, the usage metrics) once it is durable.

Content is never recorded unless the decision's ``store_content`` obligation
asks for it, and then only encrypted under the site key. ``prompt_sha256`` is
the SHA-256 of the request body exactly as received and ``completion_sha256``
that of the response body exactly as sent, so either side can recompute them.

Text that came from outside (a model name, a classification, a role, a reason
that quotes a request) goes into a record bounded: at most ``TEXT_LIMIT``
characters of valid UTF-8 as given, else ``sha256:<hex>`` of it, so that no
request can grow the log by more than a bounded amount or hold a value a
record cannot (a lone surrogate). Reasons are cut rather than hashed, since
they are read by people, and there are at most ``MAX_REASONS`` of them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from sovstack.audit import AuditError, AuditLog, build_record, encrypt_content
from sovstack.audit import Decision as RecordedDecision
from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import Scanner
from sovstack.gateway.auth import Subject
from sovstack.gateway.authz import Decision
from sovstack.gateway.energy import Share
from sovstack.gateway.errors import Unavailable
from sovstack.gateway.refusals import Refusals

__all__ = ["GATEWAY_RESTART", "Auditor", "RequestContext"]

GATEWAY_RESTART = "gateway_restart"  # the error of an aborted record written at start-up
_ENDS = frozenset({"completed", "aborted", "error"})
TEXT_LIMIT = 256
REASON_LIMIT = 512
MAX_REASONS = 16


def bounded(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """``text`` as it goes into a record: itself if short and valid UTF-8, else its digest."""
    # isprintable() is False for control, line-break and surrogate characters alike.
    if text is None or (len(text) <= limit and text.isprintable()):
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _reason(text: str) -> str:
    if len(text) <= REASON_LIMIT and _utf8(text):
        return text
    cut = text[:REASON_LIMIT].encode("utf-8", "replace").decode("utf-8")
    return f"{cut}... ({bounded(text, 0)})"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class RequestContext:
    """What is known about one request as it moves through the gateway."""

    request_id: str
    route: str | None
    started: float = field(default_factory=time.monotonic)
    subject: Subject | None = None
    model: str | None = None
    classification: str | None = None
    decision: Decision | None = None
    replica: str | None = None
    weights_digest: str | None = None
    prompt_sha256: str | None = None
    source: str | None = None  # the peer's address, for refusals of callers not authenticated
    ended: bool = False  # an end record was asked for (each request gets one)

    def latency_us(self) -> int:
        return int((time.monotonic() - self.started) * 1_000_000)


class Auditor:
    def __init__(
        self, log: AuditLog, site_key: tuple[str, bytes] | None, refusals: Refusals | None = None,
        *, observers: Sequence[Callable[[dict[str, Any]], None]] = (),
        settle: Callable[[str | None, str, int | None], Share | None] | None = None,
    ) -> None:  # fmt: skip
        self.log = log
        self._site_key = site_key
        self.refusals = refusals
        # Told each record once it is durable (the quota ledger, the usage metrics).
        self._observers = tuple(observers)
        # The request's share of its replica, for its end record (Pool.settle).
        self._settle = settle

    @property
    def can_keep_content(self) -> bool:
        return self._site_key is not None

    def _record(self, ctx: RequestContext, event: str, reasons: list[str] | None,
                **fields: Any) -> dict[str, Any]:  # fmt: skip
        subject, decision = ctx.subject, ctx.decision
        recorded = None
        if decision is not None:
            recorded = RecordedDecision(
                decision.allow, _reasons(decision.reasons), decision.obligations,
                bounded(decision.revision) or "",
            )  # fmt: skip
        elif reasons is not None:
            recorded = RecordedDecision(False, _reasons(reasons))
        return build_record(
            request_id=ctx.request_id,
            event=event,
            route=ctx.route,
            subject=bounded(subject.sub) if subject else None,
            client=bounded(subject.client_id) if subject else None,
            roles=[bounded(r) or "-" for r in subject.roles] if subject else (),
            site=bounded(subject.site) if subject else None,
            model=bounded(ctx.model),
            data_classification=bounded(ctx.classification),
            decision=recorded,
            prompt_sha256=ctx.prompt_sha256,
            **fields,
        )

    async def _append(self, record: dict[str, Any]) -> int:
        # Shielded: a client that disconnects must not cancel its own audit record.
        try:
            with anyio.CancelScope(shield=True):
                index = await self.log.append(record)
        except AuditError as exc:
            raise Unavailable(
                "the audit log cannot record this request, so it was not processed",
                code="audit_unavailable",
                retry_after=5,
            ) from exc
        for observe in self._observers:
            observe(record)
        return index

    async def decided(self, ctx: RequestContext, reasons: list[str] | None = None) -> int | None:
        """Record ``accepted`` or ``denied``; raises Unavailable if it is not durable.

        With ``refusals``, a ``denied`` record is queued, not awaited (None), and
        one of a caller not authenticated may be counted into a summary (refusals.py).
        """
        allowed = ctx.decision is not None and ctx.decision.allow
        event = "accepted" if allowed and reasons is None else "denied"
        if event == "denied" and self.refusals is not None:
            anonymous = ctx.subject is None
            if anonymous and self.refusals.throttled(ctx.source, ctx.route, reasons or ()):
                return None
            self.refusals.submit(self._record(ctx, event, reasons))
            return None
        return await self._append(self._record(ctx, event, reasons))

    async def ended(
        self, ctx: RequestContext, event: str, *, status: int | None,
        usage: dict[str, Any] | None = None, response_sha256: str | None = None,
        error: str | None = None, prompt: str | None = None, completion: str | None = None,
    ) -> int:  # fmt: skip
        ctx.ended = True
        prompt_tokens = _int(usage, "prompt_tokens")
        completion_tokens = _int(usage, "completion_tokens")
        if prompt_tokens is None or completion_tokens is None:
            prompt_tokens = completion_tokens = None
        content = None
        if ctx.decision is not None and ctx.decision.store_content and self._site_key:
            key_id, key = self._site_key
            content = {
                "prompt": encrypt_content(key, key_id, prompt or ""),
                "completion": encrypt_content(key, key_id, completion or ""),
            }
        record = self._record(
            ctx, event, None,
            replica=ctx.replica, model_digest=ctx.weights_digest, status=status,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            latency_us=ctx.latency_us(), completion_sha256=response_sha256,
            error=_reason(error) if error else None, content=content,
            usage=self._usage(ctx, prompt_tokens, completion_tokens),
        )  # fmt: skip
        return await self._append(record)

    def _usage(self, ctx: RequestContext, prompt: int | None,
               completion: int | None) -> dict[str, Any] | None:  # fmt: skip
        """The end record's usage keys; None (no keys) without a meter to ask."""
        if self._settle is None:
            return None
        tokens = prompt + completion if prompt is not None and completion is not None else None
        if ctx.replica is None:  # it reached no replica: it used none
            return Share(0, 0, 0, None).as_record()
        share = self._settle(ctx.replica, ctx.request_id, tokens)
        if share is None:
            why = "the replica's meter has no record of the request"
            return {"replica_us": None, "gpu_us": None, "energy_mj": None,
                    "energy_unmeasured": why}  # fmt: skip
        return share.as_record()

    async def close_abandoned(self) -> list[str]:
        """Close every ``accepted`` request the log holds no end for; the ids closed, in order.

        Call it once at start, before any request is taken (the log is then
        this process's alone, so what it holds is all there is). Each gets an
        ``aborted`` record with the accepted one's who, what and decision,
        ``error`` ``gateway_restart`` and no status. Raises
        :class:`AuditError` if one cannot be made durable: the gateway must not start.
        """
        opened = await anyio.to_thread.run_sync(_abandoned, self.log)
        for accepted in opened:
            await self.log.append(
                build_record(
                    request_id=accepted["request_id"], event="aborted", route=accepted["route"],
                    subject=accepted["subject"], client=accepted["client"],
                    roles=accepted["roles"], site=accepted["site"],
                    data_classification=accepted["data_classification"],
                    model=accepted["model"], decision=_recorded(accepted["decision"]),
                    prompt_sha256=accepted["prompt_sha256"], error=GATEWAY_RESTART,
                )
            )  # fmt: skip
        return [r["request_id"] for r in opened]


def _abandoned(log: AuditLog) -> list[dict[str, Any]]:
    """The ``accepted`` records of ``log`` with no end record after them, oldest first."""
    opened: dict[str, dict[str, Any]] = {}
    for _, data, _ in Scanner(log.directory):
        record = decode_entry(data)[2]
        if record["event"] == "accepted":
            opened[record["request_id"]] = record
        elif record["event"] in _ENDS:
            opened.pop(record["request_id"], None)
    return list(opened.values())


def _reasons(reasons: tuple[str, ...] | list[str]) -> list[str]:
    return [_reason(r) for r in reasons[:MAX_REASONS]]


def _recorded(decision: dict[str, Any] | None) -> RecordedDecision | None:
    return RecordedDecision(**decision) if decision is not None else None


def _int(usage: dict[str, Any] | None, key: str) -> int | None:
    value = (usage or {}).get(key)
    return value if isinstance(value, int) else None
