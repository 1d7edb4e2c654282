"""``make deploy``: the stack onto a site's nodes, from a verified offline bundle alone.

Modules, in the order a deploy uses them:

- ``inputs``: what the deploy stands on. With no inventory given, the local
  cluster's: the signing keys (made once, said where), a cpu bundle built or
  reused, the cluster brought up. With an inventory: the bundle and public key
  given, nothing built;
- ``ansible``: ``ansible-playbook playbooks/site.yml`` with the deploy's
  variables, its progress shown by play, its whole output kept in a log;
- ``summary``: what runs where, read from the inventory and the playbooks.

Every error a user can act on is a :class:`DeployError` with one clear message.
"""

from sovstack.deploy.errors import DeployError

__all__ = ["DeployError"]
