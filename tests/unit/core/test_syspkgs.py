"""Which Debian packages a make target lacks, and what happens then (without apt-get run)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sovstack.core import syspkgs
from sovstack.core.syspkgs import GROUPS, Need, absent

SCRIPT = Path(syspkgs.__file__)


def test_each_missing_package_is_named_once_sorted_across_groups() -> None:
    lacking = {"mvn", "ssh", "ssh-keygen", "dpkg-scanpackages"}
    got = absent(["deps", "cluster", "bundle"], present=lambda n: n.what not in lacking)
    assert got == ["dpkg-dev", "maven", "openssh-client"]


def test_nothing_is_missing_when_everything_is_there() -> None:
    assert absent(GROUPS, present=lambda n: True) == []


def test_a_tool_a_file_and_a_module_are_each_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = tmp_path / "debootstrap"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert Need("debootstrap", "debootstrap").present()
    assert not Need("systemd-nspawn", "systemd-container").present()
    assert Need(str(tool), "x", kind="file").present()
    assert not Need(str(tmp_path / "keyring.gpg"), "x", kind="file").present()
    assert Need("venv", "python3-venv", kind="module").present()
    assert not Need("no_such_module_here", "x", kind="module").present()


def test_make_tests_groups_cover_what_ci_installed() -> None:
    wanted = {
        "golang-go", "maven", "default-jre-headless", "curl", "python3-venv", "debootstrap",
        "gpgv", "debian-archive-keyring", "systemd-container", "iproute2", "openssh-client",
        "dpkg-dev", "gpg", "gpg-agent",
    }  # fmt: skip
    # 'make test' installs the groups venv, deps, cluster and bundle (Makefile: system-packages).
    assert wanted <= set(absent(["venv", "deps", "cluster", "bundle"], present=lambda n: False))


def test_not_root_names_the_packages_and_the_command_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    apt = tmp_path / "apt-get"
    apt.write_text("#!/bin/sh\necho apt-get must not run >&2; exit 9\n")
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # no wrk here, and a fake apt-get
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert syspkgs.main(["bench"]) == 1
    err = capsys.readouterr().err
    assert "missing system packages: wrk; as root run: apt-get install -y wrk" in err
    assert "must not run" not in err


def test_an_unknown_group_is_a_usage_error() -> None:
    assert syspkgs.main(["nope"]) == 2 and syspkgs.main([]) == 2


def test_the_makefile_runs_it_with_the_system_python_and_no_venv(tmp_path: Path) -> None:
    python = shutil.which("python3") or sys.executable
    done = subprocess.run(
        [python, "-I", str(SCRIPT), "nope"], capture_output=True, text=True, check=False,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "usage: syspkgs.py GROUP" in done.stderr


def test_as_root_the_missing_packages_are_installed_and_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake apt-get (the transport): records its calls and "installs" wrk onto PATH.
    apt = tmp_path / "apt-get"
    apt.write_text(
        '#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\n'
        'if [ "$1" = install ]; then printf "#!/bin/sh\\n" > "$(dirname "$0")/wrk"; '
        'chmod +x "$(dirname "$0")/wrk"; fi\n'
    )
    apt.chmod(0o755)
    # Only the tools the fake needs: a wrk installed on this machine must not show.
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("dirname", "chmod"):
        (tools / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    monkeypatch.setenv("PATH", f"{tmp_path}:{tools}")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert syspkgs.main(["bench"]) == 0
    assert (tmp_path / "calls").read_text().splitlines() == ["update -q", "install -y -q wrk"]


def test_as_root_a_package_still_missing_after_install_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    apt = tmp_path / "apt-get"
    apt.write_text("#!/bin/sh\nexit 0\n")  # claims success, installs nothing
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert syspkgs.main(["bench"]) == 1
    assert "still missing after apt-get install: wrk" in capsys.readouterr().err
