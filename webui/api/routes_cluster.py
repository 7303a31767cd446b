"""``GET /atelier/v1/cluster``: what runs where. Embedded: one device in this process. With ``--ray``: the engine
replicas, the checkpoints each holds, and the recent jobs' placements (which replica, whether its checkpoint was
already loaded there), from :meth:`pipelines.cluster.dispatch.ClusterDevices.status`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pipelines.context import AppContext


def add_cluster_routes(router: APIRouter, ctx: AppContext) -> None:
    """The cluster status route on Atelier's own router (``/atelier/v1``, the API's login and error shape)."""

    @router.get("/cluster", response_model=dict[str, Any])
    def cluster() -> dict[str, Any]:
        """``mode``: "embedded" or "ray"; with Ray: ``replicas`` (how many), ``known_replicas`` (each one's id,
        node, pid, checkpoints held, jobs done, running job, alive), ``placements`` (newest first) and ``serve``
        (Serve's replica states)."""
        remote = ctx.engine.remote
        if remote is None:
            return {"mode": "embedded", "replicas": 1, "device": str(ctx.store.device)}
        return remote.status()
