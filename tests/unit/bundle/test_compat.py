"""The NVIDIA driver against the CUDA of the vLLM wheels."""

from __future__ import annotations

from sovstack.bundle.compat import cuda_major, driver_note
from sovstack.bundle.manifest import FileEntry


def _files(*paths: str) -> list[FileEntry]:
    return [FileEntry(p, 1, "00" * 32, "x", "1", "test") for p in paths]


CUDA13 = "wheels/nvidia_cuda_runtime-13.0.96-py3-none-manylinux_2_27_x86_64.whl"
CUDA12 = "wheels/nvidia_cuda_runtime_cu12-12.8.90-py3-none-manylinux2014_x86_64.whl"


def test_the_cuda_major_comes_from_the_runtime_wheel() -> None:
    assert cuda_major(_files(CUDA13)) == 13
    assert cuda_major(_files(CUDA12)) == 12
    assert cuda_major(_files("wheels/torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl")) is None


def test_debian_12s_driver_is_too_old_for_cuda_13() -> None:
    note = driver_note(_files(CUDA13, "debs/nvidia-driver_535.309.01-0+deb12u1_amd64.deb"))
    assert note is not None
    assert note.startswith(
        "the NVIDIA driver in debs/ (535) is older than CUDA 13 of the vLLM wheels needs "
        "(580 or newer)"
    )


def test_a_new_enough_driver_or_no_gpu_packages_say_nothing() -> None:
    assert driver_note(_files(CUDA13, "debs/nvidia-driver_580.65.06-1_amd64.deb")) is None
    assert driver_note(_files(CUDA12, "debs/nvidia-driver_535.309.01-0+deb12u1_amd64.deb")) is None
    assert driver_note(_files(CUDA13)) is None
