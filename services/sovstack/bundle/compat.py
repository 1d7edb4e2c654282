"""Checks across components that no single collector can make.

The NVIDIA driver must be new enough for the CUDA that the vLLM wheels were
built against: a driver too old for it and vLLM does not start on the GPUs.
The table is NVIDIA's minimum driver per CUDA major release (Linux).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sovstack.bundle.manifest import FileEntry

__all__ = ["MIN_DRIVER", "cuda_major", "driver_note"]

MIN_DRIVER = {11: 450, 12: 525, 13: 580}

_CUDA_RUNTIME = re.compile(r"^wheels/nvidia_cuda_runtime(?:_cu(\d+))?-(\d+)\.")
_DRIVER = re.compile(r"^debs/nvidia-driver_(?:\d+:)?(\d+)\.")


def cuda_major(files: Sequence[FileEntry]) -> int | None:
    """The CUDA major version of the wheels' CUDA runtime, if they carry one."""
    for entry in files:
        match = _CUDA_RUNTIME.match(entry.path)
        if match:
            return int(match.group(1) or match.group(2))
    return None


def driver_note(files: Sequence[FileEntry]) -> str | None:
    """A warning when the bundled NVIDIA driver is too old for the bundled CUDA, else None."""
    cuda = cuda_major(files)
    drivers = [int(m.group(1)) for e in files if (m := _DRIVER.match(e.path))]
    if cuda is None or not drivers or cuda not in MIN_DRIVER:
        return None
    need = MIN_DRIVER[cuda]
    if max(drivers) >= need:
        return None
    return (
        f"the NVIDIA driver in debs/ ({max(drivers)}) is older than CUDA {cuda} of the vLLM "
        f"wheels needs ({need} or newer): vLLM will not start on the GPUs. Debian 12's "
        "non-free has no newer driver; give a source that has one with --apt-source "
        "(and its key with --apt-keyring), e.g. NVIDIA's CUDA repository for Debian 12."
    )
