"""Throughput of ``--ray local:2`` against the embedded mode, on the tiny model, with the same cores.

```
.venv/bin/python -m bench.cluster_throughput [--jobs 8] [--rounds 3] [--steps 20] [--size 128]
```

Both contenders run in this process on one data folder (tiny SD1.5 models the tests build, random weights):
the embedded engine with 2 torch threads (one job at a time, as Atelier runs embedded), and a local Ray cluster
of 2 replicas with 1 core each (two jobs at a time). Each round submits ``--jobs`` txt2img jobs at once from
threads, the way several browser tabs or API clients do, and times them until the last finishes; the rounds
alternate between the two, and the figures are the medians (jobs per second). The cluster's start-up is
reported apart. Not run in CI (it starts a Ray cluster: about a minute on 2 cores).
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
    args = parser.parse_args(argv)

    import torch

    from pipelines.cluster.deploy import start_cluster
    from pipelines.cluster.target import parse_target
    from pipelines.context import AppContext
    from pipelines.requests import Txt2ImgRequest
    from tests.support.apps import install_models, make_settings
    from tests.support.tiny_models import save_sd15_folder

    root = Path(tempfile.mkdtemp(prefix="atelier-cluster-bench-"))
    save_sd15_folder(root / "models" / "tiny-sd15", seed=0)
    install_models(root / "models", root / "data", ["tiny-sd15"])
    ctx = AppContext.build(make_settings(root / "data", initial_model="tiny-sd15"))
    request = Txt2ImgRequest(prompt="a lighthouse", steps=args.steps, width=args.size, height=args.size,
                             sampler_name="Euler", seed=1, save_images=True)

    def round_of_jobs() -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda i: ctx.engine.generate(request), range(args.jobs)))
        assert all(len(r.images) == 1 for r in results)
        return args.jobs / (time.perf_counter() - started)

    torch.set_num_threads(2)
    ctx.engine.generate(request)  # the embedded model loaded before its rounds are timed
    started = time.perf_counter()
    cluster = start_cluster(parse_target("local:2", cpus_per_replica=1), ctx.settings)
    startup = time.perf_counter() - started
    embedded_engine = ctx.engine.remote
    rates: dict[str, list[float]] = {"embedded (1 engine, 2 threads)": [], "ray local:2 (2 replicas x 1 core)": []}
    try:
        ctx.engine.attach_remote(cluster)
        with ThreadPoolExecutor(2) as pool:  # each replica loads the model before the rounds are timed
            list(pool.map(lambda i: ctx.engine.generate(request), range(2)))
        for _ in range(args.rounds):
            for name, remote in zip(rates, (embedded_engine, cluster), strict=True):
                ctx.engine.attach_remote(remote)
                rates[name].append(round_of_jobs())
                print(f"{name}: {rates[name][-1]:.3f} jobs/s", flush=True)
    finally:
        ctx.engine.attach_remote(None)
        cluster.close()
    print(f"\n{args.jobs} jobs at once, {args.size}x{args.size}, {args.steps} steps, Euler, tiny SD1.5; "
          f"medians of {args.rounds} interleaved rounds")
    base = statistics.median(next(iter(rates.values())))
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:36s} {median:7.3f} jobs/s  ({median / base:.2f}x)  runs {[round(v, 3) for v in values]}")
    print(f"  cluster start-up (ray.init + Serve + 2 replicas ready): {startup:.1f} s")


if __name__ == "__main__":
    main()
