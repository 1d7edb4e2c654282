"""Two wheel sets that pin different versions of one package download into one empty pool.

The gateway set and vLLM's pin different fastapi releases; a warm cache hid
that pip refuses a single requirements file naming both. This runs pip for
real against PyPI with a fresh, empty pool, so no cache can hide it.
"""

from __future__ import annotations

from pathlib import Path

from sovstack.bundle.collectors.pypi import download, resolve


def test_two_pins_of_one_package_download_side_by_side(tmp_path: Path) -> None:
    older = resolve("set a", ["six==1.16.0"])
    newer = resolve("set b", ["six==1.17.0"])
    pool = tmp_path / "pool"
    lines: list[str] = []

    download([*older, *newer], pool, lines.append)

    names = sorted(p.name for p in pool.iterdir() if not p.name.startswith("."))
    assert names == ["six-1.16.0-py2.py3-none-any.whl", "six-1.17.0-py2.py3-none-any.whl"]
    assert [line.split("]")[0].strip() for line in lines] == ["[1/2", "[2/2"]
