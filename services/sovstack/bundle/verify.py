"""``sovstack bundle verify``: offline, with nothing but the bundle and a public key.

In this order: the signature over ``manifest.json`` (nothing in the manifest
is trusted before it verified), the manifest's form, every file's size and
SHA-256, no listed file missing and no unlisted file present, then the
bundle's version against the last one installed. Every problem found is
reported, each naming the file and why; the report also counts files, bytes
and problems per component.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sovstack.bundle import signing, state
from sovstack.bundle.errors import BundleError, ManifestError, NotABundleError
from sovstack.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME, Manifest
from sovstack.bundle.sources import Source

__all__ = ["ComponentTally", "Problem", "Report", "verify"]


@dataclass(frozen=True)
class Problem:
    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


@dataclass
class ComponentTally:
    files: int = 0
    size: int = 0
    problems: int = 0


@dataclass
class Report:
    """What verification found. ``ok`` only if there is no problem at all."""

    source: str
    signer: str | None = None
    manifest: Manifest | None = None
    manifest_sha256: str | None = None
    installed: state.Installed | None = None
    problems: list[Problem] = field(default_factory=list)
    components: dict[str, ComponentTally] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems and self.manifest is not None


def _trusted_manifest(source: Source, public: Ed25519PublicKey, report: Report) -> Manifest | None:
    manifest_bytes, sig_bytes = source.head()
    if manifest_bytes is None and sig_bytes is None:
        raise NotABundleError(
            f"{source.label} is not a bundle: it has no {MANIFEST_NAME} and no {SIGNATURE_NAME}"
            " (a tar must hold them first, as 'sovstack bundle build --tar' writes it)"
        )
    if manifest_bytes is None:
        report.problems.append(
            Problem(MANIFEST_NAME, "missing (or not first in the tar): this is not a bundle")
        )
        return None
    if sig_bytes is None:
        report.problems.append(Problem(SIGNATURE_NAME, "missing: the bundle is not signed"))
        return None
    why = signing.check_signature(manifest_bytes, sig_bytes, public)
    if why is not None:
        report.problems.append(Problem(SIGNATURE_NAME, why))
        return None
    report.signer = signing.key_id(public)
    report.manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    try:
        return Manifest.from_bytes(manifest_bytes)
    except ManifestError as exc:
        report.problems.append(Problem(MANIFEST_NAME, f"signed, but not a valid manifest: {exc}"))
        return None


def _check_files(source: Source, manifest: Manifest, report: Report) -> None:
    listed = manifest.by_path()
    for listed_entry in manifest.files:
        tally = report.components.setdefault(listed_entry.component, ComponentTally())
        tally.files += 1
        tally.size += listed_entry.size
    seen: set[str] = set()

    def bad(path: str, why: str) -> None:
        report.problems.append(Problem(path, why))
        owner = listed.get(path)
        report.components.setdefault(
            owner.component if owner else "(unlisted)", ComponentTally()
        ).problems += 1

    try:
        for found in source.files():
            entry = listed.get(found.path)
            if entry is None:
                bad(found.path, "not listed in the manifest: a file was added")
            elif found.path in seen:
                bad(found.path, "appears twice")
            elif found.kind == "symlink":
                bad(found.path, "is a symbolic link, not the file the manifest lists")
            elif found.kind != "file":
                bad(found.path, "is not a regular file")
            elif found.size != entry.size:
                bad(found.path, f"size {found.size} bytes, the manifest says {entry.size}")
            else:
                actual = found.digest()
                if actual != entry.sha256:
                    bad(
                        found.path,
                        f"SHA-256 {actual} differs from the manifest's {entry.sha256}: "
                        "the file was changed",
                    )
            seen.add(found.path)
    except BundleError as exc:
        report.problems.append(Problem(source.label, str(exc)))
    for path in sorted(set(listed) - seen):
        bad(path, "missing: the manifest lists it")


def verify(
    source: Source,
    public: Ed25519PublicKey,
    installed: state.Installed | None = None,
    force: bool = False,
) -> Report:
    """Check the bundle in ``source`` against ``public``; the report lists every problem.

    Raises :class:`NotABundleError` when ``source`` has neither a manifest nor a signature.
    """
    report = Report(source=source.label, installed=installed)
    manifest = _trusted_manifest(source, public, report)
    if manifest is None:
        return report
    report.manifest = manifest
    _check_files(source, manifest, report)
    why = state.check_version(manifest.version, installed, force)
    if why is not None:
        report.problems.append(Problem(MANIFEST_NAME, why))
    return report
