"""A part of a bundle: the files one node needs, as one tar with their SHA-256 from the manifest."""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from pathlib import Path

import pytest

from sovstack.bundle.errors import BundleError
from sovstack.bundle.parts import load_manifest, part_files, sums_name, write_part
from tests.unit.bundle.conftest import make_bundle


def _req(*wheels: bytes) -> bytes:
    return b"".join(
        b"pkg==1 \\\n    --hash=sha256:" + hashlib.sha256(w).hexdigest().encode() + b"\n"
        for w in wheels
    )


FILES = {
    "wheels/a-1-py3-none-any.whl": ("wheels", b"wheel a"),
    "wheels/b-1-py3-none-any.whl": ("wheels", b"wheel b"),
    "wheels/requirements-gateway.txt": ("wheels", _req(b"wheel a")),
    "debs/Packages": ("debs", b"Package: x\n"),
    "debs/x_1_amd64.deb": ("debs", b"a deb"),
    "models/tiny/config.json": ("models", b"{}"),
}


@pytest.fixture
def bundle(tmp_path: Path, key: Path) -> Path:
    folder = tmp_path / "bundle"
    make_bundle(folder, key, files=FILES)
    return folder


def test_a_wheel_set_is_the_wheels_its_requirements_pin_and_the_file(bundle: Path) -> None:
    files = part_files(load_manifest(bundle), bundle, "wheels:gateway")
    assert [f.path for f in files] == [
        "wheels/a-1-py3-none-any.whl",
        "wheels/requirements-gateway.txt",
    ]


def test_a_folder_part_and_its_tar_check_with_sha256sum(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "debs.tar"
    write_part(load_manifest(bundle), bundle, "debs", out)
    with tarfile.open(out) as tar:
        assert tar.getnames() == [sums_name("debs"), "debs/Packages", "debs/x_1_amd64.deb"]
        tar.extractall(tmp_path / "node", filter="data")
    checked = subprocess.run(
        ["sha256sum", "--strict", "-c", sums_name("debs")],
        cwd=tmp_path / "node",
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    again = tmp_path / "again.tar"
    write_part(load_manifest(bundle), bundle, "debs", again)
    assert again.read_bytes() == out.read_bytes()


def test_a_file_changed_since_verification_stops_the_part(bundle: Path, tmp_path: Path) -> None:
    (bundle / "debs" / "x_1_amd64.deb").write_bytes(b"a DEB")
    out = tmp_path / "debs.tar"
    with pytest.raises(BundleError, match=r"debs/x_1_amd64.deb no longer matches the manifest"):
        write_part(load_manifest(bundle), bundle, "debs", out)
    assert not out.exists()


@pytest.mark.parametrize(
    ("part", "why"),
    [
        ("wheels:vllm", "no wheel set 'vllm' \\(it has: gateway\\)"),
        ("nothing", "nothing under nothing/"),
        ("../etc", "is not a part"),
    ],
)
def test_a_part_the_bundle_does_not_have_is_named(bundle: Path, part: str, why: str) -> None:
    with pytest.raises(BundleError, match=why):
        part_files(load_manifest(bundle), bundle, part)
