"""The gpu profile's NVIDIA driver from a configured source (``--apt-source``, ``--apt-keyring``).

Debian 12's own driver (535) is too old for the CUDA 13 of PyPI's vLLM, so a
site gives a source with a newer one (NVIDIA's CUDA repository). That one is
not reachable here: a signed stand-in on loopback (:mod:`localrepo`) carries
580.x packages of the names the gpu profile asks for. Only the Debian
packages collector runs, for real (apt in the cached minimal Debian root, the
rest of the closure from Debian's registry); no wheel is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sovstack.bundle import compat, debroot
from sovstack.bundle.collectors import debs
from sovstack.bundle.collectors.base import Collected, Context
from sovstack.bundle.errors import BundleError
from sovstack.bundle.files import sha256_file
from sovstack.bundle.manifest import FileEntry
from sovstack.bundle.profiles import NODE, PROFILES, role_debs
from sovstack.core.paths import Paths
from tests.integration.bundle import localrepo
from tests.integration.bundle.localrepo import Deb

VERSION = "580.65.06-1"
STAND_INS = (
    Deb("nvidia-kernel-dkms", VERSION),
    Deb("nvidia-smi", VERSION),
    Deb("nvidia-driver", VERSION, f"nvidia-kernel-dkms (= {VERSION}), nvidia-smi (= {VERSION})"),
)


def _cuda_runtime_wheel(root: Path) -> FileEntry:
    """The CUDA runtime wheel the gpu profile pins, as the wheels collector would list it."""
    pins = (root / "requirements/vllm-gpu.txt").read_text()
    match = re.search(r"^nvidia-cuda-runtime==(\S+)", pins, re.MULTILINE)
    assert match, "requirements/vllm-gpu.txt no longer pins nvidia-cuda-runtime"
    name = f"wheels/nvidia_cuda_runtime-{match.group(1)}-py3-none-manylinux2014_x86_64.whl"
    return FileEntry(name, 1, "00" * 32, "wheels", match.group(1), "pypi")


def _clean_root(cache: Path, url: str) -> None:
    """Leave nothing of the stand-in in the shared Debian root: its packages, lists, key."""
    root = debroot.root_dir(cache, NODE.debian_suite)
    with debroot.locked(cache):
        for deb in STAND_INS:
            (root / debroot.ARCHIVES.lstrip("/") / deb.file_name).unlink(missing_ok=True)
        # apt names a source's lists after its host and port: 127.0.0.1:PORT_InRelease.
        host = url.removeprefix("http://").rstrip("/")
        for listed in (root / "var/lib/apt/lists").glob(f"{host}_*"):
            listed.unlink()
        (root / "etc/apt/trusted.gpg.d/sovstack-test-repo.gpg").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory: pytest.TempPathFactory, project_paths: Paths
) -> Iterator[tuple[localrepo.LocalRepo, str, list[str]]]:
    made = localrepo.make_repo(tmp_path_factory.mktemp("nvidia-stand-in"), STAND_INS)
    with localrepo.serve(made.folder) as (url, served):
        try:
            yield made, f"deb {url} /", served
        finally:
            _clean_root(project_paths.cache / "bundle", url)


def _collect(paths: Paths, staging: Path, sources: debs.AptSources) -> tuple[Collected, str]:
    said: list[str] = []
    profile = PROFILES["gpu"]
    ctx = Context(paths, profile, staging, paths.cache / "bundle", said.append)
    got = debs.collect(
        ctx, role_debs(paths.root / "roles", profile), profile.apt_components, sources
    )
    return got, "\n".join(said)


def test_the_driver_comes_from_the_configured_source_and_fits_cuda(
    project_paths: Paths,
    repo: tuple[localrepo.LocalRepo, str, list[str]],
    tmp_path: Path,
) -> None:
    made, line, served = repo
    sources = debs.AptSources(extra=(line,), keyrings=(made.keyring,))
    got, said = _collect(project_paths, tmp_path / "staging", sources)
    bundle = tmp_path / "staging" / "debs"
    fetched = {path.rsplit("/", 1)[-1] for path in served}

    for deb in STAND_INS:
        placed = bundle / deb.file_name
        assert placed.is_file(), f"{deb.file_name} is not in debs/:\n{said}"
        assert sha256_file(placed) == sha256_file(made.folder / deb.file_name)
        assert deb.file_name in fetched, f"apt did not fetch it from the stand-in: {served}"
    assert not list(bundle.glob("nvidia-driver_535*")), "Debian's older driver came along"
    # The rest of the closure still comes from Debian.
    assert list(bundle.glob("linux-image-amd64_*.deb"))
    assert list(bundle.glob("firmware-misc-nonfree_*.deb"))

    stanzas = (bundle / "Packages").read_text().split("\n\n")
    driver = [s for s in stanzas if re.search(r"^Package: nvidia-driver$", s, re.MULTILINE)]
    assert len(driver) == 1
    assert f"\nVersion: {VERSION}\n" in driver[0]
    assert f"Filename: ./nvidia-driver_{VERSION}_amd64.deb" in driver[0]
    entry = next(f for f in got.files if f.path == f"debs/nvidia-driver_{VERSION}_amd64.deb")
    assert entry.origin == f"apt: {localrepo.LABEL}:127.0.0.1"

    files = [*got.files, _cuda_runtime_wheel(project_paths.root)]
    assert compat.cuda_major(files) == 13
    assert compat.driver_note(files) is None


def test_a_source_without_its_key_fails_the_build(
    project_paths: Paths,
    repo: tuple[localrepo.LocalRepo, str, list[str]],
    tmp_path: Path,
) -> None:
    _, line, _ = repo
    with pytest.raises(BundleError) as caught:
        _collect(project_paths, tmp_path / "staging", debs.AptSources(extra=(line,)))
    message = str(caught.value)
    assert "--apt-keyring" in message
    assert "NO_PUBKEY" in message or "not signed" in message
