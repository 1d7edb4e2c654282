"""The site CA issues server certificates that a TLS client verifies against it."""

from __future__ import annotations

import ssl
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509

from sovstack.cli import cli
from sovstack.devstack.gatewaysetup import prepare_gateway
from sovstack.pki import PkiError, init_ca, issue, issue_unless_current


def test_keys_are_owner_only_and_the_cert_names_its_sans(tmp_path: Path) -> None:
    init_ca(tmp_path)
    cert, key = issue(tmp_path, "gateway", ["127.0.0.1", "gateway.plant.test"])
    for private in (tmp_path / "ca.key", key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["gateway.plant.test"]


def test_a_tls_client_trusting_the_site_ca_connects(tmp_path: Path) -> None:
    init_ca(tmp_path)
    cert, key = issue(tmp_path, "web", ["127.0.0.1"])

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.handle_request, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_port}/"
    try:
        trusting = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        assert httpx.get(url, verify=trusting, trust_env=False).text == "hello"
    finally:
        server.server_close()


def test_a_client_without_the_site_ca_refuses_the_certificate(tmp_path: Path) -> None:
    init_ca(tmp_path)
    other = tmp_path / "other"
    init_ca(other)
    issue(tmp_path, "web", ["127.0.0.1"])
    context = ssl.create_default_context(cafile=str(other / "ca.pem"))
    with pytest.raises(ssl.SSLCertVerificationError):
        context.wrap_socket(_server_sock(tmp_path), server_hostname="127.0.0.1").do_handshake()


def _server_sock(directory: Path) -> object:
    import socket

    srv = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    srv.load_cert_chain(directory / "web.pem", directory / "web.key")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            srv.wrap_socket(conn, server_side=True)
        except ssl.SSLError:
            pass
        finally:
            conn.close()
            listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return socket.create_connection(listener.getsockname())


def test_init_refuses_to_overwrite_and_issue_needs_a_ca(tmp_path: Path) -> None:
    init_ca(tmp_path)
    with pytest.raises(PkiError, match="already exists"):
        init_ca(tmp_path)
    with pytest.raises(PkiError, match="sovstack pki init"):
        issue(tmp_path / "none", "gw", ["127.0.0.1"])
    with pytest.raises(PkiError, match="--san"):
        issue(tmp_path, "gw", [])


def test_the_cli_makes_a_ca_and_issues(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["pki", "init", "--dir", str(tmp_path)]).exit_code == 0
    result = runner.invoke(
        cli, ["pki", "issue", "gateway", "--san", "127.0.0.1", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "gateway.pem").is_file()
    again = runner.invoke(cli, ["pki", "init", "--dir", str(tmp_path)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_an_existing_server_key_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    init_ca(tmp_path)
    _, key = issue(tmp_path, "gw", ["127.0.0.1"])
    before = key.read_bytes()
    with pytest.raises(PkiError, match="already exists: refusing to overwrite"):
        issue(tmp_path, "gw", ["127.0.0.1"])
    assert key.read_bytes() == before
    issue(tmp_path, "gw", ["127.0.0.1"], overwrite=True)
    assert key.read_bytes() != before and stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_server_key_is_never_written_through_a_planted_symlink(tmp_path: Path) -> None:
    init_ca(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "gw.key").symlink_to(victim)
    with pytest.raises(PkiError, match="symbolic link"):
        issue(tmp_path, "gw", ["127.0.0.1"], overwrite=True)
    assert victim.read_text() == "keep me"


def test_a_ca_key_others_may_read_is_refused(tmp_path: Path) -> None:
    init_ca(tmp_path)
    (tmp_path / "ca.key").chmod(0o644)
    with pytest.raises(PkiError, match="chmod 600"):
        issue(tmp_path, "gw", ["127.0.0.1"])


def _pair(directory: Path, name: str = "gateway") -> tuple[bytes, bytes]:
    return (directory / f"{name}.pem").read_bytes(), (directory / f"{name}.key").read_bytes()


def test_a_current_certificate_is_kept_and_issued_again_only_when_it_must(
    tmp_path: Path,
) -> None:
    init_ca(tmp_path)
    names = ["127.0.0.1", "localhost"]
    assert issue_unless_current(tmp_path, "gateway", names)  # none yet
    first = _pair(tmp_path)
    assert not issue_unless_current(tmp_path, "gateway", list(reversed(names)))  # same names
    assert _pair(tmp_path) == first
    assert issue_unless_current(tmp_path, "gateway", [*names, "gw.plant.test"])  # names changed
    renamed = _pair(tmp_path)
    assert renamed != first
    issue(tmp_path, "gateway", names, days=10, overwrite=True)  # expires within 30 days
    expiring = _pair(tmp_path)
    assert issue_unless_current(tmp_path, "gateway", names)
    assert _pair(tmp_path) != expiring
    kept = _pair(tmp_path)
    for ca_file in ("ca.pem", "ca.key"):
        (tmp_path / ca_file).unlink()
    init_ca(tmp_path)  # another CA: the old certificate no longer chains to it
    assert issue_unless_current(tmp_path, "gateway", names)
    assert _pair(tmp_path) != kept


def test_a_restarted_dev_gateway_keeps_its_certificate(tmp_path: Path) -> None:
    upstreams = [{"id": "r", "model": "m", "url": "http://127.0.0.1:1", "site": "a"}]
    args = ("http://127.0.0.1:2/realms/plant", "http://127.0.0.1:3", upstreams)
    files = prepare_gateway(tmp_path, 8443, *args)
    first = _pair(tmp_path / "pki")
    again = prepare_gateway(tmp_path, 8444, *args)  # make dev-down, make dev
    assert _pair(tmp_path / "pki") == first
    assert again.ca_file.read_bytes() == files.ca_file.read_bytes()
