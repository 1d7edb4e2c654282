"""The bundle's errors.

Every error the bundle package raises is a :class:`BundleError`, which the
CLI prints as one message (it is a ``SovstackError``)::

    BundleError                 base: a build or a check cannot go on (the message says why)
    ├── BundleKeyError          a signing or public key is missing, unsafe or not Ed25519
    ├── NotABundleError         what was given is no bundle at all (no manifest, no signature)
    └── ManifestError           manifest.json is not a well-formed, canonical bundle manifest

A bundle that fails verification (a bundle that has at least its manifest or its
signature, with anything wrong in it) is not an exception: ``verify`` returns a
report that lists every problem, each naming the file and why.
"""

from __future__ import annotations

from sovstack.core.errors import SovstackError

__all__ = ["BundleError", "BundleKeyError", "ManifestError", "NotABundleError"]


class BundleError(SovstackError):
    """A bundle cannot be built or checked; the message says why and, where it can, the fix."""


class BundleKeyError(BundleError):
    """A key file is missing, readable by others, or not an Ed25519 key."""


class NotABundleError(BundleError):
    """Neither manifest.json nor manifest.sig is there: a usage error, not a failed check."""


class ManifestError(BundleError):
    """manifest.json does not follow the bundle format."""
