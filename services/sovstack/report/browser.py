"""Headless Chromium, kept off the network: a screenshot and the DOM of ``report.html``.

Debian's ``chromium-headless-shell`` (built from Debian's chromium source):
the full ``chromium`` tries Google's update and account services at start,
whatever the flags (Debian's wrapper enables remote extensions and ships API
keys), while the headless shell sends nothing. It is started with
background services off, every host name resolving to nothing, a proxy on a
closed loopback port, and a throw-away profile. ``net_log`` records what it
tried to load, so a test can show that the page loaded nothing beyond its
own file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Final

from sovstack.policy.tools import PolicyError, run

__all__ = ["BINARY", "OFFLINE_FLAGS", "chromium", "dump_dom", "screenshot"]

BINARY: Final = "chromium-headless-shell"
OFFLINE_FLAGS: Final = (
    "--no-sandbox",  # make audit runs as root; the page has no script to sandbox
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--hide-scrollbars",
)


def chromium() -> str | None:
    return shutil.which(BINARY)


def _run(args: list[str], what: str) -> str:
    binary = chromium()
    if binary is None:
        raise PolicyError(
            f"{BINARY} is not installed: 'apt-get install {BINARY}' (make audit does)"
        )
    with tempfile.TemporaryDirectory(prefix="sovstack-chromium-") as profile:
        done = run([binary, *OFFLINE_FLAGS, f"--user-data-dir={profile}", *args], what)
    return done.stdout


def screenshot(html: Path, png: Path) -> str | None:
    """Render ``html`` to ``png``; ``None`` when done, else why not."""
    try:
        _run(
            [f"--screenshot={png}", "--window-size=1280,2400", html.resolve().as_uri()],
            "chromium --screenshot",
        )
    except PolicyError as exc:
        return str(exc)
    return None if png.is_file() else "chromium wrote no screenshot"


def dump_dom(html: Path, net_log: Path | None = None) -> str:
    """The DOM of ``html`` after loading; with ``net_log``, Chromium's network log goes there."""
    extra = [f"--log-net-log={net_log}", "--net-log-capture-mode=Default"] if net_log else []
    return _run([*extra, "--dump-dom", html.resolve().as_uri()], "chromium --dump-dom")
