"""JSON, CSV and HTML: each names the checkpoint and shows unknown values as unknown."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

from sovstack.usage import Report, aggregate
from sovstack.usage.formats import render
from tests.unit.usage.conftest import ORIGIN, covered, request

ROOT_HEX = "07" * 32


def _report() -> Report:
    records = [
        *request(1, tokens=(10, 5)),
        *request(2, client="=cmd|' /C calc'!A0", tokens=(3, 4)),
        *request(3, client="<b>lab</b>", tokens=None),
    ]
    accepted, end = request(4, model="big", tokens=(1, 1))
    measured = end | {"energy_mj": 2500}
    return aggregate([covered([*records, accepted, measured])], ("client", "model"))


def test_json_names_the_checkpoint_and_gives_each_sum_with_its_unknown_count() -> None:
    doc = json.loads(render(_report(), "json"))
    assert doc["checkpoints"] == [{"origin": ORIGIN, "size": 8, "root": ROOT_HEX}]
    assert doc["by"] == ["client", "model"]
    first = doc["groups"][0]
    assert set(first) >= {"client", "model", "requests", "energy_j", "energy_j_unknown"}
    assert doc["total"]["requests"] == 4 and doc["total"]["prompt_tokens"] == 14
    assert (doc["total"]["energy_j"], doc["total"]["energy_j_unknown"]) == (2.5, 3)
    assert doc["total"]["prompt_tokens_unknown"] == 1


def test_csv_has_a_row_per_group_each_naming_the_checkpoint() -> None:
    rows = list(csv.DictReader(io.StringIO(render(_report(), "csv"))))
    assert len(rows) == 4
    assert {(r["checkpoint_origin"], r["checkpoint_size"], r["checkpoint_root"]) for r in rows} == {
        (ORIGIN, "8", ROOT_HEX)
    }
    by_client = {r["client"]: r for r in rows if r["model"] == "tiny"}
    assert by_client["line-monitor"]["prompt_tokens"] == "10"
    assert by_client["<b>lab</b>"]["prompt_tokens_unknown"] == "1"
    # A client name a spreadsheet would run as a formula is kept as text.
    assert "'=cmd|' /C calc'!A0" in by_client


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "action")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_one_self_contained_page_with_a_chart_and_the_checkpoint() -> None:
    page_text = render(_report(), "html")
    page = _Page()
    page.feed(page_text)
    assert page.tags[0] == "html" and "style" in page.tags and "svg" in page.tags
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert page.links == [] and "http" not in page_text and "url(" not in page_text
    assert page.tags.count("rect") == 2 * 4 + 2  # prompt and completion per group, legend
    text = " ".join(page.text)
    assert ORIGIN in text and ROOT_HEX in text
    assert "<b>lab</b>" in text and "<b>" not in page_text  # escaped, shown as written
    assert "(1 unknown)" in text and "(3 unknown)" in text  # some known: the sum and the rest
    rows = page_text.split("<h2>Per group</h2>")[1].split("<tr")
    lab = next(row for row in rows if "&lt;b&gt;lab" in row)
    assert lab.count(">unknown<") == 4  # nothing known: no figure at all, not a zero


def test_html_of_a_log_without_requests_says_so() -> None:
    page = render(aggregate([covered([])], ("client",)), "html")
    assert "No requests" in page and "<svg" not in page
