"""The root image's recipe names its cache folder; debootstrap's output is condensed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sovstack.cluster import image


def test_the_cache_folder_changes_with_the_recipe_and_only_with_it(tmp_path: Path) -> None:
    same = dataclasses.replace(image.RECIPE)
    more = dataclasses.replace(image.RECIPE, packages=(*image.RECIPE.packages, "curl"))
    assert image.image_dir(tmp_path, same) == image.image_dir(tmp_path)
    assert image.image_dir(tmp_path, more) != image.image_dir(tmp_path)
    assert image.image_dir(tmp_path).parent == tmp_path / "cluster"
    assert image.image_dir(tmp_path).name.startswith("debian-bookworm-")


def test_the_recipe_keeps_nodes_air_gapped_and_logins_key_only() -> None:
    files = {path: content for path, _, content in image.RECIPE.files}
    sshd = files["etc/ssh/sshd_config.d/sovstack.conf"]
    assert "PasswordAuthentication no" in sshd
    assert "PermitRootLogin no" in sshd
    assert "http" not in files["etc/apt/sources.list"]
    assert "nameserver" not in files["etc/resolv.conf"]
    assert "apt-daily.timer" in image.RECIPE.masked
    assert "etc/ssh/ssh_host_*" in image.RECIPE.removed  # host keys are made per node


def _feed(lines: list[str], times: list[float]) -> list[str]:
    clock = iter(times)
    progress = image.Progress(every=5.0, clock=lambda: next(clock))
    return [shown for line in lines if (shown := progress.feed(line)) is not None]


def test_progress_shows_each_phase_then_one_line_every_few_seconds() -> None:
    lines = [
        "I: Retrieving adduser 3.134",
        "I: Validating adduser 3.134",
        "I: Retrieving apt 2.6.1",
        "I: Validating apt 2.6.1",
        "I: Retrieving bash 5.2",
        "I: Extracting adduser...",
        "I: Extracting apt...",
    ]
    shown = _feed(lines, [0.0, 1.0, 2.0, 3.0, 6.0, 6.5, 7.0])
    assert shown == [
        "Retrieving adduser 3.134",
        "Retrieving bash 5.2 (5 so far)",
        "Extracting adduser...",
    ]


def test_progress_always_passes_warnings_and_errors() -> None:
    shown = _feed(
        ["I: Retrieving a", "W: Failure trying to run: chroot", "E: Couldn't download b"],
        [0.0, 0.1, 0.2],
    )
    assert shown == ["Retrieving a", "W: Failure trying to run: chroot", "E: Couldn't download b"]
