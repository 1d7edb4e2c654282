"""How a failing tool is reported: the step, a readable command line, the tail of its output."""

from __future__ import annotations

import sys

import pytest

from sovstack.bundle.collectors.pypi import _counter
from sovstack.bundle.errors import BundleError
from sovstack.bundle.proc import brief, run
from sovstack.bundle.profiles import pip_target_args


def test_a_failing_step_names_itself_and_ends_with_the_tools_output() -> None:
    script = "import sys\nfor i in range(40): print('line', i)\nsys.exit(3)"
    with pytest.raises(BundleError) as failed:
        run([sys.executable, "-c", script], "the demo step")
    message = str(failed.value)
    assert message.startswith("the demo step failed (exit 3): ")
    assert message.endswith("line 38\nline 39")
    assert "line 14\n" not in message  # only the tail


def test_a_missing_tool_is_named() -> None:
    with pytest.raises(BundleError, match="the demo step: no-such-tool-here is not installed"):
        run(["no-such-tool-here"], "the demo step")


def test_progress_shows_only_what_the_filter_returns() -> None:
    shown: list[str] = []
    out = run(
        [sys.executable, "-c", "print('Saved /x/a.whl'); print('noise')"],
        "demo",
        shown.append,
        show=lambda line: line.upper() if line.startswith("Saved") else None,
    )
    assert shown == ["    SAVED /X/A.WHL"]
    assert out == "Saved /x/a.whl\nnoise"


def test_pips_platform_tags_are_said_once() -> None:
    line = brief(["pip", "download", *pip_target_args(), "-r", "pins.txt"])
    assert line == (
        "pip download --only-binary=:all: --implementation cp --python-version 3.11 "
        "--platform <35 tags: manylinux_2_36_x86_64 and older> -r pins.txt"
    )
    assert brief(["apt-get", "-q", "update"]) == "apt-get -q update"


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
