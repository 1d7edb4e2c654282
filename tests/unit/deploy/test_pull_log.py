"""Pulling a gateway's audit folder: every worker's log, checkpoints first, with real rsync.

The gateway is a local folder holding a real log set (two worker logs written
by ``AuditLog``). rsync runs as ``pull_log`` runs it; for ``pull_log`` itself
the remote shell is a stand-in ``ssh`` on PATH that runs rsync's server in
that folder, as the gateway's ``rrsync -ro`` does (the transport is replaced,
nothing else).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from sovstack.audit import AuditLog, generate_signing_key, load_public_key, load_signing_key
from sovstack.audit.logset import logs_of, member_key, member_origin, member_pubkey, worker_name
from sovstack.audit.verify import verify_log
from sovstack.deploy.errors import DeployError
from sovstack.deploy.outputs import pull_log, rsync_argvs
from tests.unit.audit.conftest import ORIGIN, make_record

WORKERS = 2

# ssh [-i KEY] [-o OPTION]... [-l USER] [USER@]HOST COMMAND...: COMMAND in $FAKE_GATEWAY.
FAKE_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do
    case $1 in -i|-o|-l|-p) shift 2 ;; -*) shift ;; *) break ;; esac
done
shift
cd "$FAKE_GATEWAY" || exit 255
exec sh -c "$*"
"""


def _key(keys: Path) -> Path:
    return keys / "audit-signing.key"


def _append(gateway: Path, keys: Path, first: int, count: int) -> None:
    """``count`` records on every worker's log of ``gateway``, then a checkpoint on each."""
    for i in range(WORKERS):
        name = worker_name(i)
        signer = load_signing_key(member_key(_key(keys), name))
        with AuditLog.open(gateway / name, signer, member_origin(ORIGIN, name), 3600) as log:
            for n in range(first, first + count):
                log.append_sync(make_record(n))
            log.publish()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    generate_signing_key(_key(folder))
    for i in range(WORKERS):
        generate_signing_key(member_key(_key(folder), worker_name(i)))
    return folder


@pytest.fixture
def gateway(tmp_path: Path, keys: Path) -> Path:
    folder = tmp_path / "gateway-audit"
    _append(folder, keys, 0, 10)
    return folder


def _rsync(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def _tree(folder: Path) -> dict[str, bytes]:
    files = (p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def _sizes(copy: Path, keys: Path) -> dict[str, tuple[int, int]]:
    """Each member of the copy, verified with its own key: (entries, latest checkpoint size)."""
    found = {}
    for member in logs_of(copy):
        public = load_public_key(member_pubkey(keys / "audit-signing.key.pub", member.name))
        report = verify_log(member.directory, public)
        assert report.latest is not None
        found[member.name] = (report.entries, report.latest.size)
    return found


def test_the_first_pass_takes_every_members_checkpoints_and_nothing_else(
    gateway: Path, tmp_path: Path
) -> None:
    first, _ = rsync_argvs(f"{gateway}/", tmp_path / "copy")
    _rsync(first)
    assert sorted(_tree(tmp_path / "copy")) == ["worker-0/checkpoints", "worker-1/checkpoints"]


def test_entries_written_between_the_passes_are_copied_but_not_their_checkpoint(
    gateway: Path, keys: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    first, second = rsync_argvs(f"{gateway}/", copy)
    _rsync(first)
    _append(gateway, keys, 10, 5)  # the gateway goes on writing, and publishes
    _rsync(second)
    # Each member verifies: its checkpoint (size 10) is covered by the entries copied after it.
    assert _sizes(copy, keys) == {"worker-0": (15, 10), "worker-1": (15, 10)}
    for argv in rsync_argvs(f"{gateway}/", copy):
        _rsync(argv)
    assert _tree(copy) == _tree(gateway)
    assert _sizes(copy, keys) == {"worker-0": (15, 15), "worker-1": (15, 15)}


def test_a_pull_removes_what_the_gateway_no_longer_has_and_no_other_members_files(
    gateway: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    (copy / "worker-1").mkdir(parents=True)
    (copy / "worker-1" / "stale.tmp").write_text("left by an earlier pull\n")
    (copy / "worker-7").mkdir()
    (copy / "worker-7" / "checkpoints").write_text("not on the gateway\n")
    for argv in rsync_argvs(f"{gateway}/", copy):
        _rsync(argv)
    assert _tree(copy) == _tree(gateway)
    assert sorted(p.name for p in copy.iterdir()) == ["worker-0", "worker-1"]


def test_pull_log_copies_every_workers_log_over_the_remote_shell(
    gateway: Path, keys: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_GATEWAY", str(gateway))
    entry = {"host": "gw-1", "audit_pull_user": "sovstack-audit-pull",
             "audit_pull_key": str(tmp_path / "pull-key")}  # fmt: skip
    copy = pull_log(entry, "10.0.0.11", tmp_path / "copy", tmp_path / "known_hosts")
    assert _sizes(copy, keys) == {"worker-0": (10, 10), "worker-1": (10, 10)}

    monkeypatch.setenv("FAKE_GATEWAY", str(tmp_path / "no-such-folder"))
    failed = re.escape("copying gw-1's audit log from 10.0.0.11 failed")
    with pytest.raises(DeployError, match=failed):
        pull_log(entry, "10.0.0.11", tmp_path / "copy", None)
