"""Scale-out: the studio's device work on Ray Serve engine replicas (``launch.py --ray``).

Nothing here is imported on the embedded default path; ``target`` and ``messages`` need only the standard
library, the rest import Ray. The front process (UI, REST API, queue, outputs, History) hands each job to
:class:`~pipelines.cluster.dispatch.ClusterDevices`, which streams it to an :mod:`~pipelines.cluster.replica`
chosen by Ray Serve (preferring one that holds the job's checkpoint), mirrors its progress, carries the
caller's Interrupt and Skip to it (:mod:`~pipelines.cluster.control`) and saves its images here.
"""
