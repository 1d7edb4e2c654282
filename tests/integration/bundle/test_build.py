"""The cpu bundle as an operator meets it: progress, the table, a stable manifest, verify."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from sovstack.cli import cli
from tests.integration.bundle.conftest import Builds

COMPONENTS = ["wheels", "debs", "opa", "keycloak", "models", "collections", "policy"]


def _table(output: str) -> dict[str, list[str]]:
    rows = {}
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] in (*COMPONENTS, "sbom", "total") and "/" in cells:
            rows[cells[0]] = cells
    return rows


def test_the_build_shows_each_step_and_ends_with_a_table(builds: Builds) -> None:
    for i, name in enumerate(COMPONENTS, 1):
        assert f"==> [{i}/7] {name}" in builds.first_output
    table = _table(builds.first_output)
    assert list(table) == [*COMPONENTS, "sbom", "total"]
    for name in COMPONENTS:
        files, size, unit, seconds = table[name][1:5]
        assert int(files) > 0 and float(size) > 0 and unit in ("B", "KB", "MB", "GB")
        assert seconds.endswith("s")
    assert int(table["total"][1]) == sum(int(table[n][1]) for n in [*COMPONENTS, "sbom"])
    assert "note: INCOMPLETE bundle, it leaves out: wheels:vllm" in builds.first_output


def test_a_second_build_downloads_nothing(builds: Builds) -> None:
    table = _table(builds.second_output)
    for name in COMPONENTS:
        new = table[name][table[name].index("/") - 1]
        assert new == "0", f"{name} downloaded or rebuilt {new} files again"


def test_building_twice_gives_the_same_manifest_but_for_built_at(builds: Builds) -> None:
    first = json.loads((builds.first / "manifest.json").read_bytes())
    second = json.loads((builds.second / "manifest.json").read_bytes())
    assert first.pop("built_at") <= second.pop("built_at")
    assert first == second
    assert first["contents"] == [
        "collections",
        "debs",
        "jdk",
        "keycloak",
        "models",
        "opa",
        "policy",
        "wheels:control",
        "wheels:gateway",
    ]


def test_the_bundle_holds_every_component_with_version_and_origin(builds: Builds) -> None:
    files = json.loads((builds.first / "manifest.json").read_bytes())["files"]
    by_component: dict[str, list[dict[str, str]]] = {}
    for entry in files:
        by_component.setdefault(entry["component"], []).append(entry)
    assert set(by_component) == {
        "wheels",
        "debs",
        "opa",
        "keycloak",
        "jdk",
        "models",
        "collections",
        "policy",
        "sbom",
    }
    opa = by_component["opa"][0]
    assert (opa["path"], opa["version"]) == ("bin/opa", "v1.22.2")
    assert opa["origin"].startswith("go install github.com/open-policy-agent/opa@v1.22.2")
    keycloak = by_component["keycloak"][0]
    assert keycloak["path"] == "dist/keycloak-quarkus-dist-26.5.2.tar.gz"
    assert keycloak["origin"] == "Maven Central org.keycloak:keycloak-quarkus-dist:26.5.2:tar.gz"
    wheels = {e["path"] for e in by_component["wheels"]}
    assert {"wheels/requirements-gateway.txt", "wheels/requirements-control.txt"} <= wheels
    assert any(p.startswith("wheels/fastapi-") for p in wheels)
    assert any(p.startswith("wheels/ansible_core-") for p in wheels)
    debs = {Path(e["path"]).name.split("_")[0] for e in by_component["debs"]}
    assert {"postgresql-15", "nftables", "chrony", "python3.11-venv", "libnuma1"} <= debs
    assert all(
        e["origin"].startswith("apt: Debian")
        for e in by_component["debs"]
        if e["path"].endswith(".deb")
    )
    models = {e["path"] for e in by_component["models"]}
    assert "models/tiny-llama/model.safetensors" in models
    assert not any("/." in p for p in models), "hidden files are left out"


def _verify(target: Path, builds: Builds, state: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        cli,
        [
            "bundle",
            "verify",
            str(target),
            "--pubkey",
            str(builds.keys.public),
            "--state",
            str(state),
            *extra,
        ],
    )


def test_the_folder_and_the_tar_verify(builds: Builds, tmp_path: Path) -> None:
    for target in (builds.first, builds.tar):
        result = _verify(target, builds, tmp_path / "state.json")
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == f"VERIFIED   {target}"
        for name in (
            "collections",
            "debs",
            "jdk",
            "keycloak",
            "models",
            "opa",
            "policy",
            "sbom",
            "wheels",
        ):
            assert any(
                line.split()[:1] == [name] and line.split()[-1] == "ok"
                for line in result.output.splitlines()
            ), name
