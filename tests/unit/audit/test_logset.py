"""Which logs a site's audit folder holds: one log, or its worker logs in worker order."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovstack.audit import NotALogError
from sovstack.audit.logset import logs_of, member_key, member_origin, member_pubkey
from tests.unit.audit.conftest import LogMaker


def test_one_log_is_its_own_only_member(make_log: LogMaker) -> None:
    directory = make_log(2)
    (directory / "worker-0").mkdir()  # not a log folder's business: it holds a log itself
    with pytest.raises(NotALogError, match="holds a log and worker logs"):
        logs_of(directory)
    (directory / "worker-0").rmdir()
    assert [(m.name, m.directory) for m in logs_of(directory)] == [("", directory)]


def test_worker_logs_come_in_worker_order_and_odd_names_are_not_members(tmp_path: Path) -> None:
    for name in ("worker-10", "worker-2", "worker-0", "worker-01", "worker-x", "workers"):
        (tmp_path / name).mkdir()
    (tmp_path / "worker-1").write_text("a file, not a log folder")
    members = logs_of(tmp_path)
    assert [m.name for m in members] == ["worker-0", "worker-2", "worker-10"]
    assert members[1].label(tmp_path) == f"{tmp_path}/worker-2"
    with pytest.raises(NotALogError, match="worker logs missing: worker-1, worker-3"):
        logs_of(tmp_path, expected=4)


def test_each_worker_has_its_own_origin_and_key_files() -> None:
    key = Path("/etc/sovstack/audit.key")
    assert member_origin("plant-a/gw", "worker-3") == "plant-a/gw/worker-3"
    assert member_key(key, "worker-3") == Path("/etc/sovstack/audit.key.worker-3")
    assert member_pubkey(Path(f"{key}.pub"), "worker-3") == Path(
        "/etc/sovstack/audit.key.worker-3.pub"
    )
    assert (member_origin("o", ""), member_key(key, ""), member_pubkey(key, "")) == ("o", key, key)
