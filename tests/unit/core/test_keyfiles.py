"""Secret files: 0600 from creation, never written through a symlink or over a file unasked."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sovstack.core.errors import KeyFileError
from sovstack.core.keyfiles import read_private, write_private, write_public


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets everyone read new files: the mode must not depend on the umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_secret_is_0600_from_its_creation_whatever_the_umask(
    tmp_path: Path, open_umask: None
) -> None:
    write_private(tmp_path / "k", b"secret")
    write_public(tmp_path / "k.pub", b"public")
    assert (_mode(tmp_path / "k"), _mode(tmp_path / "k.pub")) == (0o600, 0o644)
    assert read_private(tmp_path / "k", "key") == b"secret"


def test_an_existing_file_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    key = tmp_path / "k"
    write_private(key, b"first")
    with pytest.raises(KeyFileError, match="already exists: refusing to overwrite a key or secret"):
        write_private(key, b"second")
    assert key.read_bytes() == b"first"


def test_an_overwrite_is_a_new_0600_file_not_the_old_files_mode(tmp_path: Path) -> None:
    key = tmp_path / "dev.json"
    key.write_bytes(b"old")
    key.chmod(0o644)
    old_inode = key.stat().st_ino
    write_private(key, b"new", overwrite=True)
    assert (key.read_bytes(), _mode(key)) == (b"new", 0o600)
    assert key.stat().st_ino != old_inode  # nobody holding the old file sees the new secret
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.json"]  # no temp file left


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_symlink_is_never_written_through(tmp_path: Path, overwrite: bool) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"not yours")
    link = tmp_path / "k"
    link.symlink_to(target)
    with pytest.raises(KeyFileError, match="is a symbolic link: refusing to write"):
        write_private(link, b"secret", overwrite=overwrite)
    assert target.read_bytes() == b"not yours" and link.is_symlink()


def test_a_dangling_symlink_is_not_followed_to_create_its_target(tmp_path: Path) -> None:
    link = tmp_path / "k"
    link.symlink_to(tmp_path / "planted")
    with pytest.raises(KeyFileError, match="is a symbolic link"):
        write_private(link, b"secret")
    assert not (tmp_path / "planted").exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_private_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "k"
    write_private(key, b"secret")
    key.chmod(mode)
    with pytest.raises(KeyFileError, match=rf"accessible by group or others \(mode 0{mode:o}\)"):
        read_private(key, "signing key")


def test_a_symlink_to_a_private_file_is_not_loaded(tmp_path: Path) -> None:
    write_private(tmp_path / "k", b"secret")
    (tmp_path / "link").symlink_to(tmp_path / "k")
    with pytest.raises(KeyFileError, match="is a symbolic link: refusing to load it"):
        read_private(tmp_path / "link", "signing key")


def test_a_missing_file_and_the_callers_error_type(tmp_path: Path) -> None:
    class MyError(KeyFileError):
        pass

    with pytest.raises(MyError, match=r"site key .*nope does not exist"):
        read_private(tmp_path / "nope", "site key", error=MyError)
