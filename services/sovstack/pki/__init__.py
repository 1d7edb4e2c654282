"""The site's own certificate authority: ``sovstack pki init`` and ``pki issue``.

The site CA signs the server certificates of the gateway (and later of
Keycloak, OPA and the replicas). Keys are ECDSA P-256 and written with mode
0600; certificates are PEM. Nothing here talks to any network.
"""

from sovstack.pki.ca import PkiError, init_ca, issue, issue_unless_current

__all__ = ["PkiError", "init_ca", "issue", "issue_unless_current"]
