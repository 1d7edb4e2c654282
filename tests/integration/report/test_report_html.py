"""``report.html`` looked at as a person would: in headless Chromium, off the network."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sovstack.report import build_report
from sovstack.report.browser import BINARY, chromium, dump_dom
from sovstack.report.browser import screenshot as chromium_screenshot
from tests.integration.report.conftest import FIXED, Site, make_policies
from tests.integration.report.test_report import CATALOGUE


@pytest.fixture(scope="module")
def pack(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert chromium() is not None, f"'apt-get install {BINARY}' (make audit installs it)"
    base = tmp_path_factory.mktemp("html")
    outcome = build_report(
        site.inputs(make_policies(base, CATALOGUE)),
        base / "pack",
        site.report_key,
        FIXED,
        chromium_screenshot,
    )
    assert outcome.screenshot is None
    return base / "pack"


class _Elements(HTMLParser):
    """Every element with its attributes, and the text of those with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(dict(attrs).get("id"))

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for name in self._open:
            if name:
                self.text[name] = self.text.get(name, "") + data


def test_the_summary_and_the_control_count_read_from_the_dom(pack: Path, tmp_path: Path) -> None:
    net_log = tmp_path / "net.json"
    dom = dump_dom(pack / "report.html", net_log)
    page = _Elements()
    page.feed(dom)
    summary = next(a for t, a in page.tags if a.get("id") == "summary")
    assert summary["data-controls"] == "6"
    assert summary["data-compliance"] == "100.0"
    assert page.text["controls-count"].strip() == "6"
    assert "100.0 %" in page.text["compliance"]
    assert "satisfied ÷ assessed" in page.text["formula"] and "5 ÷ 5" in page.text["formula"]
    rows = [a for t, a in page.tags if t == "tr" and "control" in (a.get("class") or "")]
    assert len(rows) == 6
    assert [r["data-state"] for r in rows].count("not-assessed") == 1
    (pack.parent / "dom.html").write_text(dom)  # beside the pack: the pack itself stays as signed


def test_the_screenshot_is_in_the_signed_pack(pack: Path) -> None:
    png = (pack / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    envelope = json.loads((pack / "report.dsse.json").read_text())
    assert envelope["signatures"]


def test_the_page_loads_nothing_beyond_its_own_file(pack: Path, tmp_path: Path) -> None:
    html = (pack / "report.html").read_text()
    page = _Elements()
    page.feed(html)
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe", "object")]
    for _tag, attrs in page.tags:
        for name in ("src", "href", "action", "srcset", "background"):
            value = attrs.get(name)
            if value is not None:
                assert name == "href" and value.startswith("evidence/"), (name, value)
                assert (pack / value).is_file()
    assert not re.search(r"url\(|@import|https?://", html.split("</style>")[0].split("<style>")[1])
    assert "default-src 'none'" in html
    net_log = tmp_path / "net.json"
    dump_dom(pack / "report.html", net_log)
    events = json.loads(net_log.read_text())["events"]
    loaded = {
        str(e["params"][k])
        for e in events
        for k in ("url", "host", "original_url")
        if k in e.get("params", {})
    }
    assert {u for u in loaded if not u.startswith("file://")} == set()
