"""The signed offline bundle: built on the connected side, verified on the air-gapped side.

::

    built = build(paths, BuildOptions(out, signing_key, profile="cpu", ...), echo)
    report = verify(open_source(path), load_public(pubkey), installed=read(state_file))
    report.ok, report.problems, report.components

A bundle is one folder (or one tar of it): ``wheels/``, ``debs/``, ``bin/``,
``dist/``, ``models/``, ``collections/``, ``policy/``, ``sbom.cdx.json``, and
``manifest.json`` (every file's path, size, SHA-256, component, version and
origin) signed in ``manifest.sig`` with Ed25519. Errors are described in
:mod:`sovstack.bundle.errors`.
"""

from sovstack.bundle.build import BuildOptions, Built, build
from sovstack.bundle.errors import BundleError, BundleKeyError, ManifestError
from sovstack.bundle.manifest import FileEntry, Manifest
from sovstack.bundle.signing import generate_key, load_public
from sovstack.bundle.sources import open_source
from sovstack.bundle.state import Installed, read, record
from sovstack.bundle.verify import Problem, Report, verify

__all__ = [
    "BuildOptions",
    "Built",
    "BundleError",
    "BundleKeyError",
    "FileEntry",
    "Installed",
    "Manifest",
    "ManifestError",
    "Problem",
    "Report",
    "build",
    "generate_key",
    "load_public",
    "open_source",
    "read",
    "record",
    "verify",
]
