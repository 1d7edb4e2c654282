"""The example call ``make dev`` prints works as pasted, with no secret in any process's argv."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from sovstack.cli._example import example_call

SECRET = "s3cr3t-client-secret"
TOKEN = "tok-0123456789"

# Stands in for curl, the transport: records its argv and what it read on stdin.
FAKE_CURL = """#!/bin/sh
log="$(dirname "$0")/calls"
printf '%s\\n' "ARGV $*" >> "$log"
printf 'STDIN %s\\n' "$(cat)" >> "$log"
case "$*" in
  *--data*) printf '{"access_token": "%s"}' "$FAKE_TOKEN" ;;
  *) printf '{"choices": []}' ;;
esac
"""


def _info(tmp_path: Path) -> dict[str, object]:
    return {
        "gateway_url": "https://127.0.0.1:8443",
        "ca_file": str(tmp_path / "ca.pem"),
        "keycloak": {"token_url": "http://127.0.0.1:8180/realms/plant/token"},
        "clients": [{"client_id": "line-monitor", "client_secret": SECRET}],
        "vllm": [{"url": "http://127.0.0.1:8100", "model": "tiny-llama"}],
    }


def test_the_example_names_the_file_not_the_secret(tmp_path: Path) -> None:
    text = example_call(_info(tmp_path), tmp_path / "dev.json")
    assert SECRET not in text and str(tmp_path / "dev.json") in text


def test_the_example_runs_and_passes_secrets_through_pipes_only(tmp_path: Path) -> None:
    info = _info(tmp_path)
    dev_json = tmp_path / "dev.json"
    dev_json.write_text(json.dumps(info))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_TOKEN": TOKEN}
    done = subprocess.run(
        ["/bin/sh", "-c", example_call(info, dev_json)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    calls = (bin_dir / "calls").read_text().splitlines()
    argvs = [line for line in calls if line.startswith("ARGV ")]
    stdins = [line for line in calls if line.startswith("STDIN ")]
    assert len(argvs) == 2
    assert not any(SECRET in a or TOKEN in a for a in argvs)
    assert f"client_secret={SECRET}" in stdins[0] and "client_id=line-monitor" in stdins[0]
    assert stdins[1] == f"STDIN Authorization: Bearer {TOKEN}"
