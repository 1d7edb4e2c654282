"""The state record: what ``cluster up`` created on this host, written as it goes.

Each host object (bridge, namespace, veth, mount, folder, control group,
process) is added to the record *before* it is created (a process right after
it starts), and the record is rewritten atomically each time. So whatever a
crash or a half-finished ``up`` left, ``down`` finds it in the record; and it
removes nothing that is not in it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sovstack.cluster.commands import ClusterError

__all__ = ["Record"]

Resource = dict[str, Any]


class Record:
    """The cluster's description (``info``) and its created resources, in creation order."""

    def __init__(self, path: Path, info: dict[str, Any], resources: list[Resource]) -> None:
        self.path = path
        self.info = info
        self.resources = resources

    @classmethod
    def load(cls, path: Path) -> Record | None:
        """The record at ``path``, or None when there is none (no cluster was made)."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ClusterError(
                f"{path} is unreadable ({exc}); the cluster's objects are named after "
                "sovstack_cluster_name: remove them by hand, then remove the file"
            ) from exc
        return cls(path, dict(data.get("info") or {}), list(data.get("resources") or []))

    @staticmethod
    def ensure_absent(path: Path) -> None:
        """Refuse when a record exists: a cluster is up, or a crash left one."""
        if path.exists():
            raise ClusterError(
                f"a cluster is already up, or a previous 'up' stopped half-way ({path} exists): "
                "run 'sovstack cluster down' first"
            )

    @classmethod
    def start(cls, path: Path, info: dict[str, Any]) -> Record:
        """A new, empty record; refuses when one exists."""
        cls.ensure_absent(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = cls(path, info, [])
        record.save()
        return record

    def add(self, kind: str, **fields: Any) -> None:
        """Note a resource about to be created (or just started), and save at once."""
        self.resources.append({"kind": kind, **fields})
        self.save()

    def update_info(self, **fields: Any) -> None:
        self.info.update(fields)
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"info": self.info, "resources": self.resources}, indent=2) + "\n"
        )
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
