"""Throughput of ``--ray local:N`` against the embedded mode with the same cores (or one GPU per replica).

```
.venv/bin/python -m bench.cluster_throughput [--jobs 8] [--rounds 3] [--steps 20] [--size 128]
.venv/bin/python -m bench.cluster_throughput --replicas 8 --full-size --size 512   # a machine with 8 GPUs
```

Both contenders run in this process on one data folder (the tiny SD1.5 model the tests build, or with
``--full-size`` the full-size SD1.5 architecture with random weights from bench/speed_models.py): the embedded
engine with ``replicas x cpus-per-replica`` torch threads (one job at a time, as Atelier runs embedded; one GPU
where there is one), and a local Ray cluster of ``--replicas`` replicas with ``--cpus-per-replica`` cores each
(one GPU each where the machine has as many), running that many jobs at a time. Each round submits ``--jobs``
txt2img jobs at once from threads, the way several browser tabs or API clients do, and times them until the last
finishes; the rounds alternate between the two, and the figures are the medians (jobs per second). The cluster's
start-up is reported apart. Not run in CI (it starts a Ray cluster: about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8, help="jobs submitted at once per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender (interleaved)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--cpus-per-replica", type=int, default=1)
    parser.add_argument("--full-size", action="store_true",
                        help="the full-size SD1.5 architecture (4.3 GB, built once)")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "atelier-bench",
                        help="where --full-size keeps its model between runs")
    args = parser.parse_args(argv)

    import torch

    from pipelines.cluster.deploy import start_cluster
    from pipelines.cluster.target import parse_target
    from pipelines.context import AppContext
    from pipelines.requests import Txt2ImgRequest
    from tests.support.apps import install_models, make_settings
    from tests.support.tiny_models import save_sd15_folder

    root = Path(tempfile.mkdtemp(prefix="atelier-cluster-bench-"))
    if args.full_size:
        from bench.speed_models import ensure_models

        models = ensure_models(args.work_dir, tiny=False)
        model, extra = models.name, {"ckpt_dirs": (models.ckpt_parent,)}
        (root / "data").mkdir()
    else:
        model, extra = "tiny-sd15", {}
        save_sd15_folder(root / "models" / model, seed=0)
        install_models(root / "models", root / "data", [model])
    ctx = AppContext.build(make_settings(root / "data", initial_model=model, **extra))
    request = Txt2ImgRequest(prompt="a lighthouse", steps=args.steps, width=args.size, height=args.size,
                             sampler_name="Euler", seed=1, save_images=True, model=model)
    threads = args.replicas * args.cpus_per_replica

    def round_of_jobs() -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda i: ctx.engine.generate(request), range(args.jobs)))
        assert all(len(r.images) == 1 for r in results)
        return args.jobs / (time.perf_counter() - started)

    torch.set_num_threads(threads)
    ctx.engine.generate(request)  # the embedded model loaded before its rounds are timed
    started = time.perf_counter()
    cluster = start_cluster(parse_target(f"local:{args.replicas}", cpus_per_replica=args.cpus_per_replica),
                            ctx.settings)
    startup = time.perf_counter() - started
    embedded_engine = ctx.engine.remote
    rates: dict[str, list[float]] = {
        f"embedded (1 engine, {threads} threads)": [],
        f"ray local:{args.replicas} ({args.replicas} replicas x {args.cpus_per_replica} core)": []}
    try:
        ctx.engine.attach_remote(cluster)
        with ThreadPoolExecutor(args.replicas) as pool:  # each replica loads the model before the rounds are timed
            list(pool.map(lambda i: ctx.engine.generate(request), range(args.replicas * 2)))
        for _ in range(args.rounds):
            for name, remote in zip(rates, (embedded_engine, cluster), strict=True):
                ctx.engine.attach_remote(remote)
                rates[name].append(round_of_jobs())
                print(f"{name}: {rates[name][-1]:.3f} jobs/s", flush=True)
    finally:
        ctx.engine.attach_remote(None)
        cluster.close()
    print(f"\n{args.jobs} jobs at once, {args.size}x{args.size}, {args.steps} steps, Euler, "
          f"{'full-size' if args.full_size else 'tiny'} SD1.5; "
          f"medians of {args.rounds} interleaved rounds")
    base = statistics.median(next(iter(rates.values())))
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:36s} {median:7.3f} jobs/s  ({median / base:.2f}x)  runs {[round(v, 3) for v in values]}")
    print(f"  cluster start-up (ray.init + Serve + {args.replicas} replicas ready): {startup:.1f} s")


if __name__ == "__main__":
    main()
