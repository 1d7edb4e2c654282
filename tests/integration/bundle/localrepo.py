"""A throw-away signed apt repository on disk, served on loopback: a stand-in for NVIDIA's.

NVIDIA's CUDA repository for Debian 12 is a flat repository (``deb URL /``)
whose ``InRelease`` is signed with NVIDIA's key; this one has the same shape.
Its packages are built here with ``dpkg-deb`` (control files and a README, no
driver), indexed with ``dpkg-scanpackages``, and the ``Release`` is clear-signed
with a key made for the test by ``gpg`` in a private home.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ORIGIN = "sovstack-test-nvidia"
LABEL = "local stand-in for NVIDIA's CUDA repository"  # apt names the source by it


@dataclass(frozen=True)
class Deb:
    name: str
    version: str
    depends: str = ""

    @property
    def file_name(self) -> str:
        return f"{self.name}_{self.version}_amd64.deb"


@dataclass(frozen=True)
class LocalRepo:
    folder: Path
    keyring: Path  # the public key, binary, as --apt-keyring takes it


def _run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def _build_deb(work: Path, deb: Deb, out: Path) -> None:
    tree = work / deb.name
    (tree / "DEBIAN").mkdir(parents=True)
    doc = tree / "usr/share/doc" / deb.name
    doc.mkdir(parents=True)
    (doc / "README").write_text("A stand-in for an NVIDIA package: a sovstack test built it.\n")
    control = (
        f"Package: {deb.name}\n"
        f"Version: {deb.version}\n"
        "Architecture: amd64\n"
        "Maintainer: sovstack tests <tests@localhost>\n"
        + (f"Depends: {deb.depends}\n" if deb.depends else "")
        + f"Description: stand-in for {deb.name} (no driver inside)\n"
    )
    (tree / "DEBIAN" / "control").write_text(control)
    _run("dpkg-deb", "--root-owner-group", "--build", tree, out / deb.file_name)


def _release(folder: Path) -> Path:
    data = (folder / "Packages").read_bytes()
    release = folder / "Release"
    release.write_text(
        f"Origin: {ORIGIN}\n"
        f"Label: {LABEL}\n"
        "Architectures: amd64\n"
        f"Date: {formatdate(usegmt=True)}\n"
        "SHA256:\n"
        f" {hashlib.sha256(data).hexdigest()} {len(data)} Packages\n"
    )
    return release


def _sign(folder: Path, release: Path) -> Path:
    # gpg-agent's socket lives in the home: keep its path short (not under pytest's tmp).
    home = Path(tempfile.mkdtemp(prefix="gpg-"))
    gpg = ("gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback")
    try:
        _run(*gpg, "--passphrase", "", "--quick-gen-key", "sovstack test repo", "ed25519", "sign")
        _run(*gpg, "--clearsign", "--output", folder / "InRelease", release)
        keyring = folder.parent / "test-repo.gpg"
        keyring.write_bytes(
            subprocess.run([*gpg, "--export"], check=True, capture_output=True).stdout
        )
        return keyring
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        subprocess.run(["rm", "-rf", str(home)], check=True)


def make_repo(work: Path, debs: Sequence[Deb]) -> LocalRepo:
    """Build ``debs`` into a signed flat repository under ``work``."""
    folder = work / "repo"
    folder.mkdir(parents=True)
    for deb in debs:
        _build_deb(work / "trees", deb, folder)
    (folder / "Packages").write_text(_run("dpkg-scanpackages", "--multiversion", ".", cwd=folder))
    return LocalRepo(folder, _sign(folder, _release(folder)))


class _Quiet(SimpleHTTPRequestHandler):
    served: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.served.append(self.path)


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``folder`` on 127.0.0.1; yield its URL and the paths requested so far."""
    served: list[str] = []
    handler = type("Handler", (_Quiet,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
