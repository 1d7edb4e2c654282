"""What a user sees of ansible-playbook's output: plays, roles, failures and their message."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovstack.deploy.ansible import Progress, Recap, Run, require_success
from sovstack.deploy.errors import DeployError

TRANSCRIPT = """\
PLAY [Lay the platform every service stands on] ********************************

TASK [offline_repo : Make the node's bundle folders] ***************************
ok: [gateway]
TASK [timesync : Run chrony] ***************************************************
fatal: [gpu-1]: FAILED! =>
    changed: false
    msg: 'Unable to start service chrony'
fatal: [gpu-2]: UNREACHABLE! => {"msg": "ssh: connect to host 10.77.0.22 port 22"}
ok: [gateway]

PLAY RECAP *********************************************************************
gateway                    : ok=12   changed=3    unreachable=0    failed=0    skipped=1
gpu-1                      : ok=7    changed=0    unreachable=0    failed=1    skipped=0
gpu-2                      : ok=0    changed=0    unreachable=1    failed=0    skipped=0
"""


def _read(tmp_path: Path) -> tuple[Run, list[str]]:
    shown: list[str] = []
    run = Run(returncode=2, log=tmp_path / "deploy.log")
    reader = Progress(run, shown.append)
    for line in TRANSCRIPT.splitlines():
        reader.feed(line)
    reader.close()
    return run, shown


def test_plays_roles_and_failures_are_shown_with_their_message(tmp_path: Path) -> None:
    run, shown = _read(tmp_path)
    assert shown[:3] == [
        "==> play: Lay the platform every service stands on",
        "    role: offline_repo",
        "    role: timesync",
    ]
    assert shown[3] == (
        "    FAILED timesync : Run chrony: fatal: [gpu-1]: FAILED! => "
        "msg: 'Unable to start service chrony'"
    )
    assert shown[4].startswith("    FAILED timesync : Run chrony: fatal: [gpu-2]: UNREACHABLE!")
    assert len(run.failures) == 2


def test_the_recap_counts_every_host(tmp_path: Path) -> None:
    run, _ = _read(tmp_path)
    assert run.recap == [
        Recap("gateway", 12, 3, 0, 0),
        Recap("gpu-1", 7, 0, 0, 1),
        Recap("gpu-2", 0, 0, 1, 0),
    ]
    assert run.changed == 3


def test_a_failed_run_names_its_hosts_first_failure_and_log(tmp_path: Path) -> None:
    run, _ = _read(tmp_path)
    with pytest.raises(DeployError) as caught:
        require_success(run)
    message = str(caught.value)
    assert "the deploy failed on gpu-1, gpu-2" in message
    assert "Unable to start service chrony" in message
    assert str(tmp_path / "deploy.log") in message
    require_success(Run(returncode=0, log=tmp_path / "ok.log"))
