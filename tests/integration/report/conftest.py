"""Real inputs for the report: a log written by the audit library, a witness, a signed bundle.

The log is the real ``AuditLog`` (validation, canonical JSON, fsync, signed
checkpoints); the witness is the real ``audit witness`` over a copy taken
part-way; the bundle is a folder with a real ``manifest.json`` signed by
``bundle.signing`` (a bundle's shape, without a full bundle build). OPA is the
pinned real binary.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sovstack.audit import AuditLog, Decision, build_record, generate_signing_key, load_signing_key
from sovstack.audit.witness import witness
from sovstack.bundle import signing
from sovstack.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME, FileEntry, Manifest
from sovstack.core.paths import Paths
from sovstack.policy.bundle import stage
from sovstack.policy.tree import PolicyTree
from sovstack.report import Clock, Inputs, LogInput
from sovstack.report.policy_source import POLICY_BUNDLE
from tests.conftest import ROOT

ORIGIN = "plant-a.example/gateway-1"
# The report's clock in these tests; the log starts seven months before it.
NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
LOG_START = NOW - timedelta(days=213)


@dataclass(frozen=True)
class Site:
    """Everything a report over one site takes, and the key that signs the report."""

    root: Path
    log: Path
    log_pubkey: Path
    witness_state: Path
    bundle: Path
    bundle_pubkey: Path
    report_key: Path
    opa: Path

    def inputs(self, policies: Path = ROOT / "policies", **changes: Any) -> Inputs:
        fields: dict[str, Any] = {
            "policies": policies,
            "project_root": ROOT,
            "opa": self.opa,
            "logs": (LogInput(self.log, self.log_pubkey),),
            "witness_state": self.witness_state,
            "bundle": self.bundle,
            "bundle_pubkey": self.bundle_pubkey,
        }
        fields.update(changes)
        return Inputs(**fields)

    @property
    def real_bundle(self) -> Path:
        """A bundle carrying the checkout's policies/ (``bundle`` carries the small ones)."""
        return self.root / "real-bundle"

    @property
    def report_pubkey(self) -> Path:
        return self.report_key.with_name(self.report_key.name + ".pub")


def request_records(i: int, start: datetime) -> list[dict[str, Any]]:
    """Request ``i`` as the gateway logs it: accepted then completed, or (one in five) denied."""
    when = start + timedelta(hours=i)
    who = {"subject": "alice", "client": "line-monitor", "roles": ["operator"], "site": "plant-a"}
    common: dict[str, Any] = {"request_id": f"req-{i:05d}", "route": "/v1/chat/completions", **who}
    if i % 5 == 4:
        denied = Decision(False, ["auditor may not chat"], {}, "r42")
        return [build_record(event="denied", time=when, decision=denied, status=403, **common)]
    common |= {
        "model": "tiny-llama",
        "decision": Decision(
            True, ["operator may use tiny-llama"], {"store_content": False}, "r42"
        ),
    }
    return [
        build_record(event="accepted", time=when, **common),
        build_record(
            event="completed",
            time=when + timedelta(seconds=1),
            status=200,
            prompt_tokens=12,
            completion_tokens=30,
            latency_us=900,
            prompt_sha256="0" * 64,
            completion_sha256="1" * 64,
            **common,
        ),
    ]


def write_log(directory: Path, key_file: Path, requests: range, start: datetime) -> None:
    with AuditLog.open(directory, load_signing_key(key_file), ORIGIN, 3600) as log:
        for i in requests:
            for record in request_records(i, start):
                log.append_sync(record)
        log.publish()


def _policy_bundle(policies: Path) -> bytes:
    """An OPA bundle (tar.gz) of ``policies`` staged as 'sovstack policy bundle' stages it."""
    with tempfile.TemporaryDirectory() as tmp:
        stage(PolicyTree(policies), Path(tmp))
        (Path(tmp) / ".manifest").write_text('{"roots": []}\n')
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    tar.add(path, arcname="/" + path.relative_to(tmp).as_posix())
        return buffer.getvalue()


def write_bundle(folder: Path, key_file: Path, policies: Path) -> None:
    """A bundle-shaped folder: the policies' OPA bundle, a wheel list, a signed manifest."""
    files = {POLICY_BUNDLE: _policy_bundle(policies), "wheels/requirements-gateway.txt": b"x\n"}
    entries = []
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        entries.append(
            FileEntry(
                name, len(data), hashlib.sha256(data).hexdigest(), name.split("/")[0], "1", "test"
            )
        )
    manifest = Manifest(
        "0.1.0",
        "cpu",
        "2026-09-01T00:00:00Z",
        {"python": "3.11"},
        ("policy", "wheels"),
        True,
        tuple(entries),
    ).to_bytes()
    (folder / MANIFEST_NAME).write_bytes(manifest)
    (folder / SIGNATURE_NAME).write_bytes(signing.sign(manifest, signing.load_private(key_file)))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, project_paths: Paths) -> Site:
    """A log of 40 requests a witness saw at 20, signed bundles, and the keys.

    ``bundle`` carries the small policies of :func:`make_policies`, ``real-bundle``
    those of the checkout's ``policies/``.
    """
    root = tmp_path_factory.mktemp("site")
    keys = root / "keys"
    keys.mkdir()
    for name in ("audit.key", "bundle.key", "report.key"):
        generate_signing_key(keys / name)
    log = root / "log"
    write_log(log, keys / "audit.key", range(20), LOG_START)
    shutil.copytree(log, root / "copy")
    witness(root / "copy", signing.load_public(keys / "audit.key.pub"), root / "witness")
    write_log(log, keys / "audit.key", range(20, 40), LOG_START)
    for name, policies in (("bundle", make_policies(root, "")), ("real-bundle", ROOT / "policies")):
        (root / name).mkdir()
        write_bundle(root / name, keys / "bundle.key", policies)
    return Site(
        root,
        log,
        keys / "audit.key.pub",
        root / "witness",
        root / "bundle",
        keys / "bundle.key.pub",
        keys / "report.key",
        project_paths.opa_bin,
    )


FIXED = Clock(NOW)

MakePolicies = Callable[[str], Path]


def make_policies(base: Path, family: str) -> Path:
    """A policy folder under ``base`` with one tiny Rego package and the catalogue ``family``."""
    policies = base / "policies"
    (policies / "demo" / "gate").mkdir(parents=True)
    (policies / "demo" / "gate" / "gate.rego").write_text(
        "package demo.gate\n\nimport rego.v1\n\ndefault allow := false\n\n"
        'allow if input.role == "engineer"\n'
    )
    (policies / "demo" / "gate" / "gate_test.rego").write_text(
        "package demo.gate_test\n\nimport rego.v1\n\nimport data.demo.gate\n\n"
        'test_allow_engineer if gate.allow with input as {"role": "engineer"}\n\n'
        'test_deny_operator if not gate.allow with input as {"role": "operator"}\n'
    )
    (policies / "data").mkdir()
    (policies / "data" / "data.json").write_text('{"demo": {}}\n')
    controls = policies / "controls"
    (controls / "fw").mkdir(parents=True)
    (controls / "fw.yml").write_text("id: fw\ntitle: A framework\ncontrols_dir: fw\n")
    (controls / "fw" / "family.yml").write_text(family)
    return policies


@pytest.fixture
def small_policies(tmp_path: Path) -> MakePolicies:
    """Make a small policy folder (see :func:`make_policies`) from a catalogue's YAML text."""
    return lambda family: make_policies(tmp_path, family)
