"""Tokens per second of a replica split over nodes against a single-node one; each node's memory.

Run on the controller of the local cluster with the split replica deployed:

    make deploy ANSIBLE_ARGS="-i inventory/local-span"
    .venv/bin/python bench/span_bench.py [--rounds 5] [--requests 10] [--tokens 32]

It calls both replicas directly (each with its API key from .sovstack/secrets/,
over the cluster network), in alternating rounds so that both see the same
machine, each request asking for exactly --tokens tokens (ignore_eos), one at a
time; and reads each gpu node's memory (the proportional set size of its
processes). A report, not a gate: the figures are this machine's, ratios side
by side in one run. Writes bench/results/span-<time>.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".sovstack"
PSS = "cat /proc/[0-9]*/smaps_rollup 2>/dev/null | awk '/^Pss:/ {s += $2} END {print s}'"


def _replica(replica_id: str) -> tuple[str, str, str]:
    replicas = json.loads((STATE / "deploy.d" / "vllm.json").read_text())
    found = next((r for r in replicas if r["id"] == replica_id), None)
    if found is None:
        sys.exit(f"replica {replica_id} is not deployed (deploy with -i inventory/local-span)")
    key = Path(found["api_key_file"]).read_text().strip()
    return found["url"], found["model"], key


def _tokens_per_s(url: str, model: str, key: str, requests: int, tokens: int) -> float:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Summarise the shift log"}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
    }
    headers = {"Authorization": f"Bearer {key}"}
    made = 0
    started = time.perf_counter()
    with httpx.Client(timeout=300, trust_env=False) as client:
        for _ in range(requests):
            answer = client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            answer.raise_for_status()
            made += answer.json()["usage"]["completion_tokens"]
    return made / (time.perf_counter() - started)


def _memory_gib(node: str) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "sovstack.cli", "cluster", "exec", node, "--", "sh", "-c", PSS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.strip()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", default="gpu-1", help="the single-node replica's id")
    parser.add_argument("--split", default="tiny-pp-1", help="the split replica's id")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10, help="requests per round and replica")
    parser.add_argument("--tokens", type=int, default=32, help="tokens per answer")
    args = parser.parse_args()
    targets = {name: _replica(name) for name in (args.single, args.split)}
    rates: dict[str, list[float]] = {name: [] for name in targets}
    for round_no in range(args.rounds):
        order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
        for name in order:
            rates[name].append(_tokens_per_s(*targets[name], args.requests, args.tokens))
            print(f"round {round_no + 1}: {name} {rates[name][-1]:.1f} tokens/s", flush=True)
    single = statistics.median(rates[args.single])
    split = statistics.median(rates[args.split])
    memory = {node: _memory_gib(node) for node in ("gpu-1", "gpu-2")}
    lines = [
        "# A replica split over two nodes against a single-node one",
        "",
        f"`{' '.join(sys.argv)}`, {args.rounds} rounds of {args.requests} requests of"
        f" {args.tokens} tokens, one at a time, direct to each replica.",
        "",
        "| replica | tokens/s (median) | min | max | vs single |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {statistics.median(r):.1f} | {min(r):.1f} | {max(r):.1f}"
            f" | {statistics.median(r) / single:.2f} |"
            for name, r in rates.items()
        ),
        "",
        "| node | memory (PSS of every process) |",
        "|---|---:|",
        *(f"| {node} | {gib:.2f} GiB |" for node, gib in memory.items()),
        "",
        f"split / single: {split / single:.2f}",
    ]
    out = ROOT / "bench" / "results" / f"span-{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
