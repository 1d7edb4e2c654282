"""Benchmark: streams of the tiny model through the gateway, against vLLM directly.

Run from the repository root: ``python -m bench.vllm_stream_bench`` (make
bench-vllm). Like bench/gateway_bench.py it re-runs itself in a network
namespace with only loopback (bench/netns.py). It starts Keycloak, OPA, vLLM
(CPU, the tiny model) and the shipped gateway (everything on) in front of
it, then, alternating direct and through the gateway each round, runs
``--streams`` concurrent streaming chat completions, each ``--requests``
times in a row, every one ``--max-tokens`` long (``ignore_eos``).

Per target it reports completion tokens per second (completion tokens from
each stream's final usage chunk, over the phase's wall time) and the time to
the first token (the first chunk with content), p50 and p99. The issue's
target (issue 16 item 6): through the gateway at least 0.98 of direct's
tokens per second; reported met or not met, never asserted, with the added
time to first token at p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sovstack.components import launches
from sovstack.core import services
from sovstack.core.paths import Paths, find_root

from . import components, netns, proctree

GATEWAY = "gateway (all on)"
DIRECT = "direct"
TARGET_RATIO = 0.98


@dataclass
class Stream:
    url: str
    headers: dict[str, str]
    verify: str | bool
    ttft_s: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)  # by status and error code
    rounds: list[float] = field(default_factory=list)  # tokens/s of each phase


class _Failed(Exception):
    """An answer other than 200: its status and the OpenAI-shaped error's code."""


async def _one(client: httpx.AsyncClient, s: Stream, body: dict[str, Any]) -> tuple[float, int]:
    """One streamed completion: (seconds to the first content, completion tokens)."""
    start = time.perf_counter()
    first, tokens = 0.0, 0
    async with client.stream("POST", s.url, json=body, headers=s.headers) as response:
        if response.status_code != 200:
            await response.aread()
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = ""
            raise _Failed(f"HTTP {response.status_code} {code}".strip())
        async for line in response.aiter_lines():
            # Parsed only while it matters: the client shares two cores with vLLM.
            if not line.startswith("data: {"):
                continue
            if not first or '"completion_tokens"' in line:
                chunk = json.loads(line[6:])
                if not first and any(c.get("delta", {}).get("content") for c in chunk["choices"]):
                    first = time.perf_counter() - start
                if chunk.get("usage"):
                    tokens = int(chunk["usage"]["completion_tokens"])
    return first, tokens


async def _phase(s: Stream, body: dict[str, Any], streams: int, requests: int) -> None:
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    timeout = httpx.Timeout(300.0)
    async with httpx.AsyncClient(
        verify=s.verify, trust_env=False, limits=limits, timeout=timeout
    ) as client:

        async def worker() -> None:
            for _ in range(requests):
                try:
                    first, tokens = await _one(client, s, body)
                except (_Failed, httpx.HTTPError, ValueError, KeyError) as exc:
                    why = str(exc) if isinstance(exc, _Failed) else type(exc).__name__
                    s.errors[why] = s.errors.get(why, 0) + 1
                    continue
                s.ttft_s.append(first)
                s.tokens += tokens

        start, tokens = time.perf_counter(), s.tokens
        await asyncio.gather(*(worker() for _ in range(streams)))
        took = time.perf_counter() - start
        s.seconds += took
        s.rounds.append((s.tokens - tokens) / took)


def _p(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _report(runs: dict[str, Stream], meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rows = {
        name: {
            "tokens_per_s": s.tokens / s.seconds if s.seconds else 0.0,
            "tokens": s.tokens,
            "requests": len(s.ttft_s),
            "ttft_p50_ms": 1000 * _p(s.ttft_s, 50),
            "ttft_p99_ms": 1000 * _p(s.ttft_s, 99),
            "errors": dict(s.errors),
            "tokens_per_s_by_round": [round(x, 1) for x in s.rounds],
        }
        for name, s in runs.items()
    }
    direct, gw = rows[DIRECT], rows[GATEWAY]
    ratio = gw["tokens_per_s"] / direct["tokens_per_s"] if direct["tokens_per_s"] else 0.0
    added = gw["ttft_p99_ms"] - direct["ttft_p99_ms"]
    verdict = "met" if ratio >= TARGET_RATIO else "not met"
    lines = [
        f"# vLLM streams through the gateway — {meta['when']}",
        "",
        f"Machine: {meta['machine']}. vLLM (CPU) serving the tiny model; {meta['streams']} "
        f"concurrent streams, {meta['requests']} requests each per phase, {meta['max_tokens']} "
        f"tokens each (ignore_eos), {meta['rounds']} rounds alternating direct and gateway, "
        "each phase after vLLM, the gateway and OPA were quiet for a second. "
        f"Command: `{meta['command']}`; load average at the start "
        f"{meta['load_average_at_start'][0]}.",
        "",
        "| target | tokens/s | vs direct | TTFT p50 ms | TTFT p99 ms | requests | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        share = r["tokens_per_s"] / direct["tokens_per_s"] if direct["tokens_per_s"] else 0.0
        lines.append(
            f"| {name} | {r['tokens_per_s']:.0f} | {share:.3f} | {r['ttft_p50_ms']:.1f} "
            f"| {r['ttft_p99_ms']:.1f} | {r['requests']} | {sum(r['errors'].values())} |"
        )
    lines += [
        "",
        "Tokens/s of each phase, in round order: "
        + "; ".join(
            f"{name} " + ", ".join(f"{x:.0f}" for x in r["tokens_per_s_by_round"])
            for name, r in rows.items()
        )
        + ".",
    ]
    failed = [
        f"- {name}: " + ", ".join(f"{n} {why}" for why, n in sorted(r["errors"].items()))
        for name, r in rows.items()
        if r["errors"]
    ]
    if failed:
        lines += ["", "Errors:", "", *failed]
    lines += [
        "",
        "Targets (issue 16 item 6; reported, never asserted):",
        "",
        f"- tokens/s through the gateway >= {TARGET_RATIO} of direct: {verdict} ({ratio:.3f})",
        f"- added time to first token at p99: {added:+.1f} ms",
    ]
    return "\n".join(lines) + "\n", {"meta": meta, "rows": rows, "ratio": ratio}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--requests", type=int, default=3, help="per stream and phase")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    return parser


def main() -> None:
    args = _parser().parse_args()
    netns.enter(["-m", "bench.vllm_stream_bench", *sys.argv[1:]])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = find_root(Path(__file__).parent)
    work = Path(tempfile.mkdtemp(prefix="sovstack-vllm-bench-"))
    meta: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": shlex.join(["python", "-m", "bench.vllm_stream_bench", *sys.argv[1:]]),
        "machine": f"{os.cpu_count()} cores, loopback only (a network namespace of its own)",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        **{k: getattr(args, k) for k in ("streams", "requests", "max_tokens", "rounds")},
    }
    body = {
        "model": launches.VLLM_MODEL_NAME, "max_tokens": args.max_tokens, "ignore_eos": True,
        "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Summarise the shift log"}],
    }  # fmt: skip
    try:
        with ExitStack() as stack:
            started = time.monotonic()
            core = components.start_core(stack, Paths(root, work), work, print)
            vllm, vllm_url = components.vllm(stack, Paths(root, work), work)
            for running in (core.keycloak, core.opa, vllm):
                services.wait_ready(running)
            # vLLM's own fields are refused unless named: ignore_eos keeps every stream as long.
            gw = components.gateway(
                stack, work / "gateway", GATEWAY, core, vllm_url,
                overrides={"vllm_extensions": ["ignore_eos"]},
            )  # fmt: skip
            services.wait_ready(gw.running)
            meta["start_up_s"] = round(time.monotonic() - started, 1)
            print(f"everything answered after {meta['start_up_s']} s; measuring ...")
            auth = {"Authorization": f"Bearer {components.token(core)}",
                    "X-Data-Classification": "internal"}  # fmt: skip
            runs = {
                DIRECT: Stream(f"{vllm_url}/v1/chat/completions", {}, True),
                GATEWAY: Stream(f"{gw.url}/v1/chat/completions", auth, str(gw.ca_file)),
            }
            for warm in runs.values():  # not recorded: first requests (and batches) pay for set-up
                asyncio.run(
                    _phase(Stream(warm.url, warm.headers, warm.verify), body, args.streams, 1)
                )
            for r in range(args.rounds):
                order = [DIRECT, GATEWAY] if r % 2 == 0 else [GATEWAY, DIRECT]
                for name in order:
                    # As in gateway_bench: no phase starts on another's leftover work.
                    waited, quiet = proctree.wait_quiet(
                        [(vllm.pid,), (gw.running.pid,), (core.opa.pid,)]
                    )
                    asyncio.run(_phase(runs[name], body, args.streams, args.requests))
                    print(
                        f"  round {r + 1}, {name}: {runs[name].rounds[-1]:.0f} tokens/s "
                        f"(after {waited:.1f} s{'' if quiet else ', never quiet'})"
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text, data = _report(runs, meta)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"vllm-stream-{stamp}.md").write_text(text)
    (args.out / f"vllm-stream-{stamp}.json").write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
