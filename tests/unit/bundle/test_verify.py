"""The verifier on small signed bundles: every tampering is refused, naming the file and why."""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

import pytest

from sovstack.bundle import signing, state
from sovstack.bundle.errors import NotABundleError
from sovstack.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME, Manifest
from sovstack.bundle.sources import open_source
from sovstack.bundle.tarball import write_tar
from sovstack.bundle.verify import Report, verify
from tests.unit.bundle.conftest import FILES, flip_byte, make_bundle


def _verify(path: Path, key: Path, **kwargs: object) -> Report:
    source = open_source(path)
    with contextlib.closing(source):
        return verify(source, signing.load_public(Path(f"{key}.pub")), **kwargs)  # type: ignore[arg-type]


def _problems(report: Report) -> list[str]:
    return [str(p) for p in report.problems]


def test_an_untouched_bundle_verifies_with_a_summary_per_component(
    bundle_dir: Path, key: Path
) -> None:
    report = _verify(bundle_dir, key)
    assert report.ok, _problems(report)
    assert report.signer == signing.key_id(signing.load_public(Path(f"{key}.pub")))
    assert {n: t.files for n, t in report.components.items()} == {
        "wheels": 2,
        "debs": 2,
        "opa": 1,
        "models": 2,
        "sbom": 1,
    }
    assert report.components["opa"].size == len(FILES["bin/opa"][1])


@pytest.mark.parametrize(
    "rel",
    [
        "wheels/demo-1.0-py3-none-any.whl",
        "debs/demo_1.0-1_amd64.deb",
        "bin/opa",
        "models/tiny/model.safetensors",
    ],
)
def test_one_flipped_byte_is_refused_naming_the_file(bundle_dir: Path, key: Path, rel: str) -> None:
    flip_byte(bundle_dir / rel, offset=len(FILES[rel][1]) // 2)
    report = _verify(bundle_dir, key)
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].path == rel
    assert "differs from the manifest's" in report.problems[0].why
    assert "the file was changed" in report.problems[0].why
    component = FILES[rel][0]
    assert report.components[component].problems == 1


def test_a_removed_file_is_refused(bundle_dir: Path, key: Path) -> None:
    (bundle_dir / "debs/Packages").unlink()
    assert _problems(_verify(bundle_dir, key)) == ["debs/Packages: missing: the manifest lists it"]


def test_an_added_file_is_refused(bundle_dir: Path, key: Path) -> None:
    (bundle_dir / "wheels" / "evil-6.6-py3-none-any.whl").write_bytes(b"PK")
    assert _problems(_verify(bundle_dir, key)) == [
        "wheels/evil-6.6-py3-none-any.whl: not listed in the manifest: a file was added"
    ]


def test_a_file_swapped_for_a_symlink_is_refused(bundle_dir: Path, key: Path) -> None:
    target = bundle_dir / "bin/opa"
    (bundle_dir / "opa-elsewhere").write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(bundle_dir / "opa-elsewhere")
    problems = _problems(_verify(bundle_dir, key))
    assert "bin/opa: is a symbolic link, not the file the manifest lists" in problems


def test_a_grown_file_reports_both_sizes(bundle_dir: Path, key: Path) -> None:
    with (bundle_dir / "models/tiny/config.json").open("ab") as f:
        f.write(b" ")
    size = len(FILES["models/tiny/config.json"][1])
    assert _problems(_verify(bundle_dir, key)) == [
        f"models/tiny/config.json: size {size + 1} bytes, the manifest says {size}"
    ]


def test_a_manifest_signed_by_another_key_is_refused_before_any_file_is_read(
    bundle_dir: Path, key: Path, other_key: Path
) -> None:
    data = (bundle_dir / MANIFEST_NAME).read_bytes()
    (bundle_dir / SIGNATURE_NAME).write_bytes(signing.sign(data, signing.load_private(other_key)))
    flip_byte(bundle_dir / "bin/opa")  # not reported: nothing is trusted before the signature
    report = _verify(bundle_dir, key)
    assert [p.path for p in report.problems] == [SIGNATURE_NAME]
    assert report.problems[0].why.startswith("signed by another key")
    assert report.manifest is None


def test_an_edited_manifest_is_refused(bundle_dir: Path, key: Path) -> None:
    manifest = Manifest.from_bytes((bundle_dir / MANIFEST_NAME).read_bytes())
    forged = Manifest(**{**manifest.__dict__, "version": "9.9.9"})
    (bundle_dir / MANIFEST_NAME).write_bytes(forged.to_bytes())
    report = _verify(bundle_dir, key)
    assert _problems(report) == [
        f"{SIGNATURE_NAME}: the signature does not match manifest.json: "
        "the manifest was changed after signing"
    ]


def test_a_truncated_signature_is_refused(bundle_dir: Path, key: Path) -> None:
    sig = bundle_dir / SIGNATURE_NAME
    sig.write_bytes(sig.read_bytes()[:50])
    report = _verify(bundle_dir, key)
    assert [p.path for p in report.problems] == [SIGNATURE_NAME]
    assert "truncated" in report.problems[0].why


@pytest.mark.parametrize("name", [MANIFEST_NAME, SIGNATURE_NAME])
def test_a_missing_manifest_or_signature_is_refused(bundle_dir: Path, key: Path, name: str) -> None:
    (bundle_dir / name).unlink()
    report = _verify(bundle_dir, key)
    assert [p.path for p in report.problems] == [name]
    assert "missing" in report.problems[0].why


def _installed(version: str) -> state.Installed:
    return state.Installed(
        version, "cpu", "00" * 32, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
    )


def test_an_older_bundle_is_refused_unless_forced(bundle_dir: Path, key: Path) -> None:
    report = _verify(bundle_dir, key, installed=_installed("1.10.0"))
    assert _problems(report) == [
        "manifest.json: version 1.0.0 is older than the bundle installed last (1.10.0, built "
        "2026-01-01T00:00:00Z): pass --force to go back on purpose"
    ]
    assert _verify(bundle_dir, key, installed=_installed("1.10.0"), force=True).ok


@pytest.mark.parametrize("last", ["1.0.0", "0.9.0", "1.0.0rc1"])
def test_the_same_or_a_newer_version_is_accepted(bundle_dir: Path, key: Path, last: str) -> None:
    assert _verify(bundle_dir, key, installed=_installed(last)).ok


def test_every_problem_is_listed_not_only_the_first(bundle_dir: Path, key: Path) -> None:
    flip_byte(bundle_dir / "bin/opa")
    (bundle_dir / "debs/Packages").unlink()
    (bundle_dir / "extra").write_text("x")
    paths = sorted(p.path for p in _verify(bundle_dir, key).problems)
    assert paths == ["bin/opa", "debs/Packages", "extra"]


def _tar(bundle_dir: Path, tmp_path: Path) -> Path:
    manifest = Manifest.from_bytes((bundle_dir / MANIFEST_NAME).read_bytes())
    out = tmp_path / "bundle.tar"
    write_tar(bundle_dir, manifest, out, mtime=1_768_464_000)
    return out


def test_the_tar_verifies_and_starts_with_manifest_and_signature(
    bundle_dir: Path, key: Path, tmp_path: Path
) -> None:
    tar_path = _tar(bundle_dir, tmp_path)
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
        assert {m.mode for m in tar.getmembers()} <= {0o644, 0o755}
        assert {m.uid for m in tar.getmembers()} == {0}
    assert names[:2] == [MANIFEST_NAME, SIGNATURE_NAME]
    assert sorted(names[2:]) == names[2:] == sorted(FILES)
    assert _verify(tar_path, key).ok


def test_a_flipped_byte_inside_the_tar_is_refused(
    bundle_dir: Path, key: Path, tmp_path: Path
) -> None:
    tar_path = _tar(bundle_dir, tmp_path)
    data = tar_path.read_bytes()
    at = data.index(FILES["bin/opa"][1])
    flip_byte(tar_path, at + 100)
    assert [p.path for p in _verify(tar_path, key).problems] == ["bin/opa"]


def test_a_tar_that_does_not_start_with_the_manifest_is_refused(
    bundle_dir: Path, key: Path, tmp_path: Path
) -> None:
    out = tmp_path / "other.tar"
    with tarfile.open(out, "w") as tar:
        for name in ("bin/opa", MANIFEST_NAME, SIGNATURE_NAME):
            tar.add(bundle_dir / name, arcname=name)
    # Read as a stream, the tar is not in the bundle format at all: a usage error.
    with pytest.raises(NotABundleError, match="a tar must hold them first"):
        _verify(out, key)


def test_a_tar_with_an_added_member_is_refused(bundle_dir: Path, key: Path, tmp_path: Path) -> None:
    tar_path = _tar(bundle_dir, tmp_path)
    with tarfile.open(tar_path, "a") as tar:
        info = tarfile.TarInfo("debs/zz-extra_1_amd64.deb")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    assert _problems(_verify(tar_path, key)) == [
        "debs/zz-extra_1_amd64.deb: not listed in the manifest: a file was added"
    ]


def test_a_newer_manifest_version_field_is_what_the_record_holds(tmp_path: Path, key: Path) -> None:
    directory = tmp_path / "b2"
    make_bundle(directory, key, version="2.0.0")
    assert _verify(directory, key, installed=_installed("1.0.0")).ok
