"""Start or join the Ray cluster and deploy the engine replicas on it (``launch.py --ray``).

``local:N`` starts a private Ray cluster on this machine with N replicas sharing its cores (and one GPU each when
it has as many). ``auto`` or an address joins a running cluster: one replica per GPU, or per
``cpus_per_replica`` cores on a cluster without GPUs. The replicas are a Serve application with no HTTP proxy
of its own: only this front process reaches them, through a deployment handle.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

import ray
from ray import serve

from pipelines.cluster.control import JobControl
from pipelines.cluster.dispatch import ClusterDevices
from pipelines.cluster.replica import EngineReplica
from pipelines.cluster.target import ClusterTarget, local_cpus_per_replica
from pipelines.errors import ValidationError
from pipelines.settings import Settings

log = logging.getLogger(__name__)

NAMESPACE = "atelier"
APP_NAME = "atelier"
DEPLOYMENT_NAME = "engine"
DEFAULT_CPUS_PER_REPLICA = 4  # a joined cluster without GPUs: one replica per this many cores
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # pipelines/: what the replicas import


def start_cluster(target: ClusterTarget, settings: Settings) -> ClusterDevices:
    """Start (``local:N``) or join the cluster, deploy the replicas and wait until they are ready."""
    if target.is_local:
        cpus = local_cpus_per_replica(target)
        # the replicas import pipelines/ from this checkout; each uses only its own share of the cores
        threads = {name: str(cpus) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        ray.init(num_cpus=cpus * target.local_replicas, namespace=NAMESPACE, include_dashboard=False,
                 configure_logging=False, runtime_env={"env_vars": {"PYTHONPATH": str(PACKAGE_DIR.parent), **threads}})
        gpus = int(ray.cluster_resources().get("GPU", 0))
        per_gpu = target.gpus_per_replica if target.gpus_per_replica is not None else (
            1.0 if gpus >= target.local_replicas else 0.0)
        replicas, resources = target.local_replicas, {"num_cpus": cpus, "num_gpus": per_gpu}
        address = f"local:{target.local_replicas}"
    else:
        # the replicas get pipelines/ from here (Ray ships it); the nodes need Atelier's requirements installed
        ray.init(address=target.address, namespace=NAMESPACE, configure_logging=False,
                 runtime_env={"py_modules": [str(PACKAGE_DIR)]})
        replicas, resources = joined_replicas(target, ray.cluster_resources())
        cpus = int(resources["num_cpus"])
        address = target.address or "auto"
    log.info("Ray cluster %s: %d engine replica(s), each with %s CPU(s) and %s GPU(s)", address, replicas,
             resources["num_cpus"], resources["num_gpus"])
    try:
        return _deploy(settings, replicas, resources, cpus, address, local=target.is_local)
    except BaseException:
        ray.shutdown()
        raise


def joined_replicas(target: ClusterTarget, resources: dict[str, float]) -> tuple[int, dict[str, float]]:
    """How many replicas a joined cluster gets, and each one's resources: one per GPU (or per
    ``gpus_per_replica``), else one per ``cpus_per_replica`` cores."""
    gpus = resources.get("GPU", 0.0)
    if gpus >= 1 and target.gpus_per_replica != 0:
        per_gpu = target.gpus_per_replica or 1.0
        return max(1, int(gpus // per_gpu)), {"num_cpus": target.cpus_per_replica or 1, "num_gpus": per_gpu}
    cpus = target.cpus_per_replica or DEFAULT_CPUS_PER_REPLICA
    count = int(resources.get("CPU", 0.0) // cpus)
    if count < 1:
        raise ValidationError("ray", f"the cluster has {resources.get('CPU', 0.0):.0f} CPU(s) and no GPU: not enough "
                              f"for one replica of {cpus} CPUs (--ray-cpus-per-replica)")
    return count, {"num_cpus": cpus, "num_gpus": 0.0}


def _deploy(settings: Settings, replicas: int, resources: dict[str, float], threads: int, address: str, *,
            local: bool) -> ClusterDevices:
    serve.start(proxy_location="Disabled")  # no HTTP proxy: the front process is the only way in
    control_name = f"atelier-job-control-{uuid.uuid4().hex[:8]}"
    control = ray.remote(JobControl).options(name=control_name, namespace=NAMESPACE, num_cpus=0).remote()
    deployment = serve.deployment(
        EngineReplica, name=DEPLOYMENT_NAME, num_replicas=replicas, max_ongoing_requests=1,
        ray_actor_options={"num_cpus": resources["num_cpus"], "num_gpus": resources["num_gpus"]},
        health_check_period_s=2, health_check_timeout_s=30, graceful_shutdown_timeout_s=2)
    handle = serve.run(deployment.bind(settings, control_name, NAMESPACE, threads), name=APP_NAME,
                       route_prefix=None)

    def close() -> None:
        try:
            if local:
                serve.shutdown()
            else:
                serve.delete(APP_NAME)
        finally:
            ray.shutdown()

    return ClusterDevices(handle, control, replicas, address=address, close=close, app_status=app_status)


def app_status() -> dict[str, Any]:
    """Serve's view of the replicas: how many are in each state (RUNNING, STARTING, ...)."""
    try:
        app = serve.status().applications.get(APP_NAME)
    except Exception as exc:  # the controller is restarting: say so rather than fail the status route
        return {"error": str(exc)}
    if app is None:
        return {"status": "NOT_DEPLOYED"}
    deployment = app.deployments.get(DEPLOYMENT_NAME)
    states = {str(getattr(k, "value", k)): v for k, v in (deployment.replica_states if deployment else {}).items()}
    return {"status": str(getattr(app.status, "value", app.status)), "replica_states": states, "pid": os.getpid()}
