"""The audit log's exception tree.

Every error the audit package raises is an :class:`AuditError`::

    AuditError                      base: catch this to handle any audit failure
    ├── AuditWriteError             a record could not be made durable; it was NOT logged
    ├── LogStateError               the log directory cannot be opened or recovered safely
    ├── NotALogError                the folder holds no audit log at all (usage, not tampering)
    ├── RecordError (ValueError)    a record does not follow the schema (nothing was written)
    ├── KeyFileError                a key file is missing, malformed or readable by others
    ├── ContentError                encrypted content cannot be decrypted (wrong key, altered)
    └── VerificationError           tamper evidence: carries the first bad index and the evidence
        ├── ProofError              an inclusion or consistency proof does not verify
        └── CheckpointError         a checkpoint is malformed or its signature does not verify

The gateway fails closed on :class:`AuditWriteError`: the request is refused,
because no request may reach a model without a durable audit record.
"""

from __future__ import annotations

from sovstack.core import errors as core_errors

__all__ = [
    "AuditError",
    "AuditWriteError",
    "CheckpointError",
    "ContentError",
    "KeyFileError",
    "LogStateError",
    "NotALogError",
    "ProofError",
    "RecordError",
    "VerificationError",
]


class AuditError(Exception):
    """Base of every error raised by ``sovstack.audit``."""


class AuditWriteError(AuditError):
    """The record was not made durable and is not in the log.

    Raised by ``append`` when the log is closed, has failed, or the write or
    fsync failed (directory unwritable, disk full). The caller MUST treat the
    audited action as not logged and refuse it.
    """


class LogStateError(AuditError):
    """The log directory cannot be opened or recovered without losing records."""


class NotALogError(AuditError):
    """The folder holds neither a checkpoints file nor a segment: it is not an audit log.

    A usage error (the wrong folder was given), not tamper evidence: a log
    whose checkpoints file was removed still has its segments, and fails
    verification instead.
    """


class RecordError(AuditError, ValueError):
    """A record does not follow the schema; nothing was written."""


class KeyFileError(AuditError, core_errors.KeyFileError):
    """A key file is missing, malformed, or has unsafe permissions (core.keyfiles says how)."""


class ContentError(AuditError):
    """Encrypted content could not be decrypted: wrong key, or the ciphertext was altered."""


class VerificationError(AuditError):
    """The log, a checkpoint or a proof failed verification.

    ``first_bad_index`` is the first record index that is not proven intact
    (``None`` when no single record is to blame, e.g. a bad signature), and
    ``evidence`` maps names to the texts that show the failure: the
    checkpoints involved, the recomputed root, the proof.
    """

    def __init__(
        self,
        message: str,
        *,
        first_bad_index: int | None = None,
        evidence: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.first_bad_index = first_bad_index
        self.evidence: dict[str, str] = dict(evidence or {})


class ProofError(VerificationError):
    """An inclusion or consistency proof does not verify."""


class CheckpointError(VerificationError):
    """A checkpoint is malformed, or is not signed by the expected key."""
