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
from sovstack.pki import PkiError, init_ca, issue


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
