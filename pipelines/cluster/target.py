"""What ``--ray`` names: a local cluster to start, or an existing one to join; and how big its replicas are."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipelines.errors import ValidationError

LOCAL_PREFIX = "local:"


@dataclass(frozen=True)
class ClusterTarget:
    """``--ray`` parsed: ``local:N`` starts a private cluster of N engine replicas on this machine; ``auto`` joins the
    cluster this machine is part of (``ray start``); anything else is a cluster address (``HOST:PORT`` of its head,
    or ``ray://HOST:10001`` for Ray Client)."""

    address: str | None  # None: start a local cluster
    local_replicas: int = 0
    cpus_per_replica: int | None = None  # None: a local cluster's cores shared out; a joined one's: 1 per CPU replica
    gpus_per_replica: float | None = None  # None: one GPU each when the cluster has GPUs

    @property
    def is_local(self) -> bool:
        return self.address is None


def parse_target(value: str, *, cpus_per_replica: int | None = None,
                 gpus_per_replica: float | None = None) -> ClusterTarget:
    """``--ray``'s value (and ``--ray-cpus-per-replica`` / ``--ray-gpus-per-replica``); ValidationError on bad input."""
    text = value.strip()
    if not text:
        raise ValidationError("ray", "expected auto, local:N or a cluster address such as 10.0.0.5:6379")
    if cpus_per_replica is not None and cpus_per_replica < 1:
        raise ValidationError("ray_cpus_per_replica", "must be at least 1")
    if gpus_per_replica is not None and gpus_per_replica < 0:
        raise ValidationError("ray_gpus_per_replica", "must not be negative")
    if text.startswith(LOCAL_PREFIX):
        count = text[len(LOCAL_PREFIX):]
        if not count.isdigit() or int(count) < 1:
            raise ValidationError("ray", f"local:N needs a number of replicas of at least 1, got {text!r}")
        return ClusterTarget(None, int(count), cpus_per_replica, gpus_per_replica)
    return ClusterTarget(text, 0, cpus_per_replica, gpus_per_replica)


def local_cpus_per_replica(target: ClusterTarget, cpus: int | None = None) -> int:
    """A local cluster's cores per replica: as asked, else this machine's cores shared out evenly (at least 1)."""
    if target.cpus_per_replica is not None:
        return target.cpus_per_replica
    return max(1, (cpus or os.cpu_count() or 1) // max(1, target.local_replicas))
