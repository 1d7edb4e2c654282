"""The tamper-evident audit log (RFC 6962 Merkle tree, signed checkpoints).

What the gateway uses::

    key = load_signing_key(path)
    log = AuditLog.open(directory, key, origin="plant-a.example/gateway-1")
    index = await log.append(build_record(...))   # durable when it returns
    log.writable()                                # for /readyz
    await log.aclose()                            # final checkpoint

``append`` raises :class:`AuditWriteError` (an :class:`AuditError`) when the
record cannot be made durable: the caller must then refuse the request.
Content is stored only when a policy obligation asks, sealed with
:func:`encrypt_content` under the site key from :func:`load_site_key`.
The exception tree is documented in :mod:`sovstack.audit.errors`.
"""

from sovstack.audit.checkpoint import Checkpoint
from sovstack.audit.content import (
    decrypt_content,
    encrypt_content,
    generate_site_key,
    load_site_key,
)
from sovstack.audit.errors import (
    AuditError,
    AuditWriteError,
    CheckpointError,
    ContentError,
    KeyFileError,
    LogStateError,
    NotALogError,
    ProofError,
    RecordError,
    VerificationError,
)
from sovstack.audit.keys import generate_signing_key, load_public_key, load_signing_key
from sovstack.audit.log import AuditLog
from sovstack.audit.records import (
    EVENTS,
    SCHEMA_VERSION,
    Decision,
    build_record,
    canonical_json,
    sha256_text,
)

__all__ = [
    "EVENTS",
    "SCHEMA_VERSION",
    "AuditError",
    "AuditLog",
    "AuditWriteError",
    "Checkpoint",
    "CheckpointError",
    "ContentError",
    "Decision",
    "KeyFileError",
    "LogStateError",
    "NotALogError",
    "ProofError",
    "RecordError",
    "VerificationError",
    "build_record",
    "canonical_json",
    "decrypt_content",
    "encrypt_content",
    "generate_signing_key",
    "generate_site_key",
    "load_public_key",
    "load_signing_key",
    "load_site_key",
    "sha256_text",
]
