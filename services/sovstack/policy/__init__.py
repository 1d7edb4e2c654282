"""The project's policies: checked, bundled, signed, and mapped to compliance controls.

The Rego and its data live in ``policies/`` (see its README). This package
drives the real OPA and Regal binaries over them:

- :mod:`.checks`: ``make policy-test``: formatting, strict compile, Regal,
  the Rego tests at full coverage, and the control catalogue;
- :mod:`.bundle`: the signed OPA bundle (``sovstack policy bundle``);
- :mod:`.keys`: the bundle signing key pair (``sovstack policy keygen``);
- :mod:`.serve`: how OPA is started on a signed bundle, verifying it;
- :mod:`.controls`: the compliance control catalogue (``policies/controls/``).

Every error a user can act on is a :class:`PolicyError` with a message that
says what to do.
"""

from sovstack.policy.tools import PolicyError

__all__ = ["PolicyError"]
