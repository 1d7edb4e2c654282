"""How a program is run and a failing one reported: the step, a readable command line, its tail."""

from __future__ import annotations

import sys
import time

import pytest

from sovstack.bundle.errors import BundleError
from sovstack.bundle.profiles import pip_target_args
from sovstack.core.errors import CommandError
from sovstack.core.proc import brief, run
from sovstack.core.progress import Echo

_FORTY_LINES_THEN_EXIT_3 = "import sys\nfor i in range(40): print('line', i)\nsys.exit(3)"


@pytest.mark.parametrize("echo", [None, lambda line: None], ids=["captured", "streamed"])
def test_a_failing_step_names_itself_and_ends_with_the_tools_output(echo: Echo | None) -> None:
    with pytest.raises(CommandError) as failed:
        run([sys.executable, "-c", _FORTY_LINES_THEN_EXIT_3], "the demo step", echo=echo)
    message = str(failed.value)
    assert message.startswith("the demo step failed (exit 3): ")
    assert message.endswith("line 38\nline 39")
    assert "line 14\n" not in message  # only the tail


def test_the_callers_error_type_is_raised() -> None:
    with pytest.raises(BundleError, match="the demo step: no-such-tool-here is not installed"):
        run(["no-such-tool-here"], "the demo step", error=BundleError)


def test_without_check_a_failure_is_returned_with_stdout_and_stderr_apart() -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(4)"
    done = run([sys.executable, "-c", script], "demo", check=False)
    assert (done.returncode, done.stdout, done.stderr) == (4, "out\n", "err\n")
    # The tail a failure is reported with holds both: what failed (often on stdout) and why.
    assert done.tail == "out\nerr"


def test_stdin_is_given_to_the_program() -> None:
    upper = "import sys; print(sys.stdin.read().upper())"
    done = run([sys.executable, "-c", upper], "demo", stdin="hi")
    assert done.stdout == "HI\n"


def test_progress_shows_only_what_the_filter_returns_and_merges_stderr() -> None:
    shown: list[str] = []
    script = "import sys; print('Saved /x/a.whl', flush=True); print('noise', file=sys.stderr)"
    done = run(
        [sys.executable, "-c", script],
        "demo",
        echo=shown.append,
        show=lambda line: line.upper() if line.startswith("Saved") else None,
    )
    assert shown == ["    SAVED /X/A.WHL"]
    assert done.stdout == "Saved /x/a.whl\nnoise"


@pytest.mark.parametrize("echo", [None, lambda line: None], ids=["captured", "streamed"])
def test_a_program_past_its_timeout_is_killed_and_reported_with_its_tail(echo: Echo | None) -> None:
    script = "import time; print('started', flush=True); time.sleep(60)"
    began = time.monotonic()
    with pytest.raises(CommandError, match=r"(?s)did not finish within 1s.*started"):
        run([sys.executable, "-c", script], "slow", echo=echo, timeout=1)
    assert time.monotonic() - began < 30  # killed, not waited for


def test_pips_platform_tags_are_said_once() -> None:
    line = brief(["pip", "download", *pip_target_args(), "-r", "pins.txt"])
    assert line == (
        "pip download --only-binary=:all: --implementation cp --python-version 3.11 "
        "--platform <35 tags: manylinux_2_36_x86_64 and older> -r pins.txt"
    )
    assert brief(["apt-get", "-q", "update"]) == "apt-get -q update"
