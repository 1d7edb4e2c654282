"""Make a site CA and issue server certificates from it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sovstack.core import keyfiles
from sovstack.core.errors import SovstackError

__all__ = ["RENEW_WITHIN", "PkiError", "init_ca", "issue", "issue_unless_current"]

CA_CERT, CA_KEY = "ca.pem", "ca.key"
# A certificate that expires sooner than this is issued again rather than kept.
RENEW_WITHIN = dt.timedelta(days=30)
_CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True,
    content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, encipher_only=False, decipher_only=False,
)  # fmt: skip


class PkiError(SovstackError):
    """A CA or certificate operation could not be done; the message says why."""


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, overwrite: bool = False) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    keyfiles.write_private(path, pem, overwrite=overwrite, error=PkiError)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def init_ca(directory: Path, name: str = "sovstack site CA", days: int = 3650) -> Path:
    """Create ``ca.pem`` and ``ca.key`` in ``directory``; refuse to overwrite an existing CA."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() or key_path.exists():
        raise PkiError(f"a CA already exists in {directory}; remove it first to make a new one")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def _san(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def issue(
    directory: Path, name: str, sans: list[str], days: int = 397, overwrite: bool = False
) -> tuple[Path, Path]:
    """Issue a server certificate ``NAME.pem`` / ``NAME.key`` signed by the CA in ``directory``.

    An existing ``NAME.key`` is refused unless ``overwrite``; the CA key is
    refused if its group or others may read it.
    """
    if not sans:
        raise PkiError("give at least one --san (a DNS name or an IP address)")
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise PkiError(f"{name!r} is not a usable certificate name (letters, digits, - _ .)")
    if not (directory / CA_KEY).exists():
        raise PkiError(f"no CA in {directory}: run 'sovstack pki init' first")
    ca_pem = keyfiles.read_private(directory / CA_KEY, "CA key", error=PkiError)
    try:
        ca_key = serialization.load_pem_private_key(ca_pem, None)
        ca_cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    except FileNotFoundError as exc:
        raise PkiError(f"no CA in {directory}: run 'sovstack pki init' first") from exc
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{directory / CA_KEY} is not an EC key made by 'sovstack pki init'")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(min(_now() + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_san(s) for s in sans]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    _write_key(key_path, key, overwrite)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _current(directory: Path, name: str, sans: list[str]) -> bool:
    """True if ``NAME.pem``/``NAME.key`` exist, pair up, name exactly ``sans``, were
    signed by the CA now in ``directory`` and stay valid for longer than ``RENEW_WITHIN``."""
    try:
        cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
        ca_cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key(
            keyfiles.read_private(directory / f"{name}.key", "server key", error=PkiError), None
        )
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert.verify_directly_issued_by(ca_cert)
    except (OSError, ValueError, TypeError, PkiError, x509.ExtensionNotFound, InvalidSignature):
        return False  # missing, unreadable, unsafe, or not signed by the CA now in the folder
    return (
        set(names) == {_san(s) for s in sans}
        and key.public_key() == cert.public_key()
        and cert.not_valid_after_utc - _now() > RENEW_WITHIN
    )


def issue_unless_current(directory: Path, name: str, sans: list[str]) -> bool:
    """Keep ``NAME.pem``/``NAME.key`` if still current (see :func:`_current`), else issue anew.

    Returns True if a certificate was issued. So a restarted service keeps its
    certificate (clients that pinned it keep working) until it is about to
    expire, its names change, or the CA is replaced.
    """
    if _current(directory, name, sans):
        return False
    issue(directory, name, sans, overwrite=True)
    return True
