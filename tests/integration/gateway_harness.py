"""Start a real gateway process in front of the real components, for tests.

The gateway runs as ``sovstack gateway --config FILE`` exactly as ``make dev``
starts it, over HTTPS with a certificate from a test site CA.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from sovstack.components import launches
from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.devstack.gatewaysetup import GatewayFiles, prepare_gateway


@dataclass(frozen=True)
class Gateway:
    url: str
    files: GatewayFiles
    pid: int
    log: Path

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify = ssl.create_default_context(cafile=str(self.files.ca_file))
        return httpx.Client(
            base_url=self.url, verify=verify, trust_env=False, timeout=120, headers=headers
        )

    def records(self) -> list[dict[str, Any]]:
        """The audit log's records, read with `sovstack audit export` as an auditor would."""
        out = subprocess.run(
            [sys.executable, "-m", "sovstack.cli", "audit", "export", str(self.files.audit_dir)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return [json.loads(line)["record"] for line in out.stdout.splitlines() if line.strip()]

    def verify_log(self) -> subprocess.CompletedProcess[str]:
        """`sovstack audit verify --check-records` on the log, as an auditor runs it."""
        return subprocess.run(
            [sys.executable, "-m", "sovstack.cli", "audit", "verify", str(self.files.audit_dir),
             "--pubkey", str(self.files.audit_public_key), "--check-records"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    def records_of(self, request_id: str, count: int = 1) -> list[dict[str, Any]]:
        """The request's records, waiting (a little) until there are ``count`` of them.

        The end record is written right after the response is sent, so it may
        land a moment after the caller has its answer.
        """
        return self.wait_for(lambda r: r["request_id"] == request_id, count)

    def wait_for(
        self, wanted: Callable[[dict[str, Any]], bool], count: int
    ) -> list[dict[str, Any]]:
        """The records ``wanted`` accepts, once there are ``count`` (or after 30 s)."""
        deadline = time.monotonic() + 30
        while True:
            found = [r for r in self.records() if wanted(r)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


@contextmanager
def run_gateway(
    paths: Paths,
    state: Path,
    issuer: str,
    opa_url: str,
    upstreams: list[dict[str, Any]],
    **settings: Any,
) -> Iterator[Gateway]:
    """A gateway of one process unless ``workers`` says otherwise (its pid is the one serving)."""
    port = services.free_port()
    files = prepare_gateway(state, port, issuer, opa_url, upstreams)
    config = yaml.safe_load(files.config.read_text()) | {"workers": 1} | settings
    files.config.write_text(yaml.safe_dump(config))
    running = services.start(
        launches.gateway(paths, port, files.config, files.ca_file), state / "gateway.log"
    )
    try:
        services.wait_ready(running)
        yield Gateway(f"https://127.0.0.1:{port}", files, running.pid, running.log)
    finally:
        services.stop(running.pid)


def upstream_calls(vllm_url: str) -> int:
    """Inference requests the replica has received, from its own metrics."""
    text = httpx.get(f"{vllm_url}/metrics", trust_env=False).text
    total = 0.0
    for match in re.finditer(
        r'^http_requests_total\{handler="(/v1/[^"]+)"[^}]*\} (\S+)$', text, re.M
    ):
        if match.group(1) != "/v1/models":
            total += float(match.group(2))
    return int(total)
