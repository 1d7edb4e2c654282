"""How pip's progress is shown and how its downloads are batched."""

from __future__ import annotations

from sovstack.bundle.collectors.pypi import _counter


def test_pip_downloads_are_numbered_as_they_start() -> None:
    shown = _counter(2)
    lines = [
        "Collecting click==8.5.1",
        "  Downloading click-8.5.1-py3-none-any.whl (126 kB)",
        "  Downloading https://files.pythonhosted.org/p/idna-3.20-py3-none-any.whl (69 kB)",
        "Saved ./pdt/click-8.5.1-py3-none-any.whl",
    ]
    assert [shown(line) for line in lines] == [
        None,
        "[1/2] click-8.5.1-py3-none-any.whl (126 kB)",
        "[2/2] idna-3.20-py3-none-any.whl (69 kB)",
        None,
    ]


def test_batches_never_name_one_package_twice() -> None:
    from sovstack.bundle.collectors.pypi import Resolved, batches

    def r(name: str, version: str) -> Resolved:
        return Resolved(name, version, f"{name}-{version}.whl", "0" * 64, "u")

    items = [r("fastapi", "1"), r("six", "1"), r("fastapi", "2"), r("fastapi", "3")]
    got = batches(items)
    assert [[(i.name, i.version) for i in b] for b in got] == [
        [("fastapi", "1"), ("six", "1")],
        [("fastapi", "2")],
        [("fastapi", "3")],
    ]
