"""The SBOM (CycloneDX) and the build's table."""

from __future__ import annotations

import json

from sovstack.bundle.collectors.base import Package
from sovstack.bundle.report import Row, human_size, table
from sovstack.bundle.sbom import render

PACKAGES = [
    Package("library", "anyio", "4.16.0", "pkg:pypi/anyio@4.16.0", "aa" * 32),
    Package(
        "application",
        "opa",
        "v1.22.2",
        "pkg:golang/github.com/open-policy-agent/opa@v1.22.2",
        "bb" * 32,
    ),
    Package("machine-learning-model", "tiny-llama", "sha256:0123", description="local folder"),
    Package("library", "general", "11.4.2", group="community"),
]


def test_the_sbom_is_cyclonedx_with_purls_and_hashes() -> None:
    doc = json.loads(render("1.0.0", "cpu", PACKAGES))
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    assert doc["serialNumber"].startswith("urn:uuid:")
    assert doc["metadata"]["component"]["version"] == "1.0.0"
    assert "timestamp" not in doc["metadata"]
    by_name = {c["name"]: c for c in doc["components"]}
    assert by_name["anyio"]["purl"] == "pkg:pypi/anyio@4.16.0"
    assert by_name["anyio"]["hashes"] == [{"alg": "SHA-256", "content": "aa" * 32}]
    assert by_name["tiny-llama"]["type"] == "machine-learning-model"
    assert by_name["general"]["group"] == "community"
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs)) == 4


def test_the_sbom_is_the_same_for_the_same_content_in_any_order() -> None:
    assert render("1.0.0", "cpu", PACKAGES) == render("1.0.0", "cpu", PACKAGES[::-1])
    assert render("1.0.0", "cpu", PACKAGES) != render("1.0.1", "cpu", PACKAGES)


def test_two_identical_packages_get_distinct_refs() -> None:
    doc = json.loads(render("1", "cpu", [PACKAGES[0], PACKAGES[0]]))
    assert [c["bom-ref"] for c in doc["components"]] == [
        "pkg:pypi/anyio@4.16.0",
        "pkg:pypi/anyio@4.16.0#2",
    ]


def test_the_table_has_a_row_per_component_and_a_total() -> None:
    lines = table(
        [Row("wheels", 46, 16_500_000, 13.3, 0, 44), Row("opa", 1, 59_500_000, 0.1, 1, 0)]
    )
    assert lines[0].split() == ["component", "files", "size", "time", "new", "/", "cached"]
    assert lines[2].split() == ["wheels", "46", "16.5", "MB", "13.3s", "0", "/", "44"]
    assert lines[-1].split() == ["total", "47", "76.0", "MB", "13.4s", "1", "/", "44"]


def test_sizes_are_human() -> None:
    assert [human_size(n) for n in (5, 1_500, 2_000_000, 3_200_000_000)] == [
        "5 B",
        "1.5 KB",
        "2.0 MB",
        "3.2 GB",
    ]
