"""The local isolated cluster: systemd nodes on a private network, on one Linux host.

``sovstack cluster up`` boots one systemd-nspawn container per host of an
Ansible inventory (``inventory/local``), each in its own network namespace
joined to a private bridge, with no default route. Modules, in the order
``up`` uses them:

- ``inventory``: read the nodes, the network and the cluster's name from the inventory;
- ``prereqs``: root, Linux and the host tools, all missing ones named in one message;
- ``image``: a Debian root built once with debootstrap and cached under ``.cache/cluster/``;
- ``record``: the state record of everything ``up`` creates, written before each object is made;
- ``network``: the bridge, one namespace and veth pair per node, addresses, no default route;
- ``cgroups``: one control group per node, so that nodes never share one and ``down`` finds
  every process a node left;
- ``keys``: the cluster's SSH key, the nodes' host keys and the control host's known_hosts;
- ``nodes``: the per-node root overlay, the nspawn boot and the wait for ``running``;
- ``lifecycle``: ``up``, ``down`` and ``status`` built from the above;
- ``teardown``: ``down``'s removal of what a record lists, and only that;
- ``commands`` and ``mounts``: running host tools, and unmounting before deleting a tree.

Every error a user can act on is a :class:`ClusterError` with one clear message.
"""

from sovstack.cluster.commands import ClusterError

__all__ = ["ClusterError"]
