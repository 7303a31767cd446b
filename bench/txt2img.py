"""txt2img overhead benchmark: raw diffusers vs Atelier's core vs Atelier over HTTP, plus model swap.

Run from the repository root::

    .venv/bin/python -m bench.txt2img                 # tiny random SD1.5 model, ~2 minutes on 2 cores
    .venv/bin/python -m bench.txt2img --json bench/results/txt2img.json
    .venv/bin/python -m bench.txt2img --model-dir /path/to/diffusers-folder --repeats 3

Every contender does the same work (same model files, 256x256, 20 steps, Euler a, CFG 7, same
seed, one CPU thread by default) and the images are checked to be identical before any number is
trusted. Contenders run interleaved (raw, core, e2e, raw, core, e2e, ...; the order rotates every
round) so background load hits them alike.

* raw diffusers: ``StableDiffusionPipeline.from_pretrained`` + ``EulerAncestralDiscreteScheduler``,
  PIL output. Timed without and with writing the PNG (with the same ``parameters`` text chunk
  Atelier writes); Atelier saves every image, so "raw + save" is the fair baseline.
* Atelier core: ``ctx.engine.generate(Txt2ImgRequest(...))`` with live previews off, and with them
  on (every N steps, the default 5).
* Atelier end to end: the real Gradio app (``webui.server.serve``) called with
  ``gradio_client.Client.predict(..., api_name="/txt2img")``; the time runs from the call to the
  result being back, so it includes HTTP, the queue, SSE progress events, the PNG save and the
  client downloading the image file (as any API client would; gradio_client also downloads every
  live-preview image). The same server is also called with plain HTTP, the documented two-step
  ``POST /gradio_api/call/txt2img`` + SSE ``GET`` + file ``GET`` on one kept-alive ``httpx`` client,
  which separates what the server costs from what gradio_client costs.
* Model swap: the first ``store.select`` of a second model (from disk) vs switching back and
  forth between two models that are already loaded.

The Gradio server runs in a child process (same data, same thread count): an idle Gradio server
polls its queue every millisecond (~5% of a core, and the GIL of its process), which would slow
the raw and core runs if it lived in the benchmark process. The child is also frozen (SIGSTOP)
while raw/core run and resumed (SIGCONT) for its own runs, so the baselines run as a plain
diffusers script would; ``--no-freeze-server`` keeps it running. End-to-end CPU time is the
client's plus the server process's.

Targets are judged on the ratio of minimums (each contender's least disturbed run); medians, CPU
seconds and per-round paired ratios are printed next to them, with a note when the machine is noisy.

This file holds the contenders and the run; the models, contexts and server children are set up in
``bench/txt2img_setup.py``, the report and the JSON are written by ``bench/txt2img_report.py``, and
what any mode's benchmark reuses (timing, server process, Gradio results, pixel diff) is in
``bench/harness.py``.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ``python bench/txt2img.py`` puts bench/ on sys.path, not the repository root that ``bench``,
# ``pipelines`` and ``tests.support`` are imported from; ``python -m bench.txt2img`` needs nothing.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.harness import (  # noqa: E402  (needs the sys.path line above)
    Contender,
    Series,
    ServerProcess,
    Timings,
    call_over_http,
    gallery_output,
    identity,
    image_path,
    image_url,
    load_avg,
    median_ms,
    now,
    quiet_environment,
    run_rounds,
    silence_libraries,
    since,
)
from bench.txt2img_report import Results, report  # noqa: E402
from bench.txt2img_setup import (  # noqa: E402
    Endpoints,
    Models,
    connect,
    contexts,
    install_models,
    load_raw_pipeline,
    serve_child,
    start_servers,
)

SAMPLER, SCHEDULE = "Euler a", "Automatic"


# --------------------------------------------------------------------------------------- cli
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.txt2img", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (torch.set_num_threads)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per contender")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per contender before timing")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--cfg-scale", type=float, default=7.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--prompt", default="a watercolor fox in a misty forest")
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--preview-every", type=int, default=5,
                   help="live_preview_every for the 'previews on' contenders (Atelier's default is 5)")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="benchmark this diffusers SD1.x folder instead of the tiny random model")
    p.add_argument("--model-dir-b", type=Path, default=None,
                   help="second diffusers folder for the swap timing (with --model-dir; swap is skipped without it)")
    p.add_argument("--swap-iterations", type=int, default=200, help="cached swaps timed (alternating A/B)")
    p.add_argument("--swap-rounds", type=int, default=10,
                   help="A/B rounds of the swap-to-first-step jobs; also the UI endpoint's swaps timed per client")
    p.add_argument("--no-e2e-off", action="store_true",
                   help="skip the gradio_client run with previews off (saves ~1/7 of the run time)")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-piece overhead breakdown")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="data dir to use (default: a temp dir, removed afterwards)")
    p.add_argument("--keep", action="store_true", help="keep the temp data dir")
    p.add_argument("--no-freeze-server", action="store_true",
                   help="leave the Gradio server process running (idle-polling) during raw/core runs")
    p.add_argument("--json", type=Path, default=None, help="also write all numbers to this JSON file")
    p.add_argument("--_serve", dest="serve_child", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--_model", dest="child_model", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_ckpt-dir", dest="child_ckpt_dirs", type=Path, action="append", default=[],
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.model_dir_b and not args.model_dir:
        p.error("--model-dir-b needs --model-dir")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.swap_rounds < 1:
        p.error("--swap-rounds must be at least 1")
    return args


# ------------------------------------------------------------------------------------ state
@dataclass
class Shared:
    """What the contenders hand each other across runs."""

    infotext: str | None = None  # Atelier's, from the first core run; raw writes it into its PNG too
    raw_n: int = 0
    settle_cpu: list[float] = field(default_factory=list)  # server CPU after each e2e answer (untimed)
    e2e_infotext: dict[str, str | None] = field(default_factory=dict)  # first downloaded PNG's, per e2e key


# ------------------------------------------------------------------------------- contenders
def _raw_contender(args: argparse.Namespace, pipe, shared: Shared, raw_dir: Path) -> Contender:
    """Plain diffusers, then the PNG written with Atelier's infotext chunk ("raw" and "raw_save")."""
    import torch
    from PIL.PngImagePlugin import PngInfo

    def run() -> tuple[Timings, Any]:
        start = now()
        image = pipe(args.prompt, negative_prompt=args.negative_prompt, num_inference_steps=args.steps,
                     width=args.width, height=args.height, guidance_scale=args.cfg_scale, output_type="pil",
                     generator=torch.Generator("cpu").manual_seed(args.seed)).images[0]
        generated = since(start)
        info = PngInfo()
        info.add_text("parameters", shared.infotext or "")
        shared.raw_n += 1
        with (raw_dir / f"{shared.raw_n:05d}-{args.seed}.png").open("xb") as fh:
            image.save(fh, format="PNG", pnginfo=info)
        return {"raw": generated, "raw_save": since(start)}, image

    return Contender("raw", run)


def _core_contender(args: argparse.Namespace, ctx, key: str, model: str, shared: Shared) -> Contender:
    """``ctx.engine.generate`` in this process (which saves the PNG)."""
    from pipelines.requests import Txt2ImgRequest

    request = Txt2ImgRequest(prompt=args.prompt, negative_prompt=args.negative_prompt, sampler_name=SAMPLER,
                             scheduler=SCHEDULE, steps=args.steps, cfg_scale=args.cfg_scale,
                             width=args.width, height=args.height, seed=args.seed, model=model)

    def run() -> tuple[Timings, Any]:
        start = now()
        result = ctx.engine.generate(request)
        elapsed = since(start)
        img = result.images[0]
        assert img.path is not None and img.path.exists(), "Atelier did not save the image"
        shared.infotext = shared.infotext or img.infotext
        return {key: elapsed}, img.image

    return Contender(key, run)


def _txt2img_inputs(args: argparse.Namespace, model: str) -> dict[str, Any]:
    """The /txt2img endpoint's named inputs, in the UI's order (the plain-HTTP call sends them positionally),
    with the Hires. fix and Refiner accordions at their defaults, unticked."""
    from pipelines.requests.hires import HiresFix
    from webui.tabs.txt2img import INPUT_NAMES
    from webui.tabs.txt2img_hires import hires_values
    from webui.tabs.txt2img_refiner import refiner_values

    values = dict(checkpoint=model, prompt=args.prompt, negative_prompt=args.negative_prompt, sampler_name=SAMPLER,
                  scheduler=SCHEDULE, steps=args.steps, cfg_scale=args.cfg_scale, width=args.width,
                  height=args.height, seed=args.seed, batch_size=1, n_iter=1, styles=[], seed_extra=False,
                  subseed=-1, subseed_strength=0.0, seed_resize_from_w=0, seed_resize_from_h=0,
                  **hires_values(HiresFix(), False), **refiner_values(None))
    return {name: values[name] for name in INPUT_NAMES}  # a KeyError here: the form gained an input


def _open_image(source):
    from PIL import Image

    image = Image.open(source)
    image.load()
    return image


def _client_contender(key: str, endpoints: Endpoints, inputs: dict[str, Any], shared: Shared) -> Contender:
    """gradio_client ``predict(api_name="/txt2img")`` with ``inputs`` (:func:`_txt2img_inputs`), file download
    included; CPU = client + server."""
    client, server = endpoints.clients[key], endpoints.servers[key]

    def run() -> tuple[Timings, Any]:
        server.thaw()
        start = now()
        server_cpu = server.cpu()
        out = client.predict(**inputs, api_name="/txt2img")
        wall, cpu = since(start)
        cpu += server.cpu() - server_cpu
        shared.settle_cpu.append(server.settle())  # untimed: lets the server finish, then freeze
        server.freeze()
        path = image_path(gallery_output(out))  # by type: (preview, gallery, info, ...) or (gallery, info)
        assert path, f"no image file in the /txt2img result: {out!r}"
        image = _open_image(path)
        shared.e2e_infotext.setdefault(key, image.info.get("parameters"))
        return {key: (wall, cpu)}, image

    return Contender(key, run)


def _positional(client: Any, api_name: str, values: dict[str, Any]) -> list[Any]:
    """An endpoint's inputs in its order, for a plain-HTTP call: ours by name, the rest (the sections and
    scripts the loaded extensions add) at the defaults the server declares."""
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"][api_name]
    return [values[p["parameter_name"]] if p["parameter_name"] in values else p["parameter_default"]
            for p in info["parameters"]]


def _http_contender(endpoints: Endpoints, inputs: dict[str, Any], shared: Shared) -> Contender:
    """The documented two-step REST call (what curl users do), one kept-alive connection."""
    server, http = endpoints.servers["e2e_on"], endpoints.http
    data = _positional(endpoints.clients["e2e_on"], "/txt2img", inputs)

    def run() -> tuple[Timings, Any]:
        server.thaw()
        start = now()
        server_cpu = server.cpu()
        outputs = call_over_http(http, "/txt2img", data)
        url = image_url(gallery_output(outputs))
        assert url, f"no image in the /txt2img result: {outputs!r}"
        png = http.get(url).raise_for_status().content
        wall, cpu = since(start)
        cpu += server.cpu() - server_cpu
        shared.settle_cpu.append(server.settle())
        server.freeze()
        image = _open_image(io.BytesIO(png))
        shared.e2e_infotext.setdefault("e2e_http", image.info.get("parameters"))
        return {"e2e_http": (wall, cpu)}, image

    return Contender("e2e_http", run)


def _rest_contender(args: argparse.Namespace, endpoints: Endpoints, model: str, shared: Shared) -> Contender:
    """A1111's ``POST /sdapi/v1/txt2img`` (what existing tools and webuiapi send); the PNG comes back base64."""
    import base64
    import io

    server, http = endpoints.servers["e2e_on"], endpoints.http
    body = {"prompt": args.prompt, "negative_prompt": args.negative_prompt, "sampler_name": SAMPLER,
            "scheduler": SCHEDULE, "steps": args.steps, "cfg_scale": args.cfg_scale, "width": args.width,
            "height": args.height, "seed": args.seed, "save_images": True, "send_images": True,
            "override_settings": {"sd_model_checkpoint": model}}

    def run() -> tuple[Timings, Any]:
        server.thaw()
        start = now()
        server_cpu = server.cpu()
        answer = http.post("/sdapi/v1/txt2img", json=body).raise_for_status().json()
        image = _open_image(io.BytesIO(base64.b64decode(answer["images"][0])))
        wall, cpu = since(start)
        cpu += server.cpu() - server_cpu
        shared.settle_cpu.append(server.settle())
        server.freeze()
        shared.e2e_infotext.setdefault("e2e_rest", image.info.get("parameters"))
        return {"e2e_rest": (wall, cpu)}, image

    return Contender("e2e_rest", run)


# ---------------------------------------------------------------------------- model swap
def _time_to_first_step(ctx, args: argparse.Namespace, names: list[str]) -> list[float]:
    """Milliseconds from ``engine.generate`` to the first sampling step's callback, model by model
    (the job is interrupted there and saves nothing)."""
    from pipelines.requests import Txt2ImgRequest

    times = []
    for name in names:
        marks: list[float] = []
        start = now()

        def first_step(update, marks=marks, start=start) -> None:
            if update.unit == "steps" and update.step >= 1 and not marks:
                marks.append(since(start)[0] * 1e3)
                ctx.engine.interrupt()

        request = Txt2ImgRequest(prompt=args.prompt, width=args.width, height=args.height, steps=args.steps,
                                 seed=args.seed, model=name, save_images=False)
        ctx.engine.generate(request, on_progress=first_step)
        times.append(marks[0])
    return times


def _time_swap(args: argparse.Namespace, models: Models, ctx, endpoints: Endpoints) -> dict[str, Any]:
    """Cold load of B vs raw ``from_pretrained``, then cached A/B switches in process and over HTTP, and
    a cached swap up to the first sampling step against the same job without a swap."""
    selection = ctx.selection
    import gc

    from diffusers import StableDiffusionPipeline

    name_a, name_b = models.name_a, models.name_b
    swap: dict[str, Any] = {}
    gc.collect()
    start = now()
    ref_pipe = StableDiffusionPipeline.from_pretrained(str(models.folder_b), safety_checker=None,
                                                       requires_safety_checker=False, local_files_only=True)
    swap["raw_from_pretrained_ms"] = since(start)[0] * 1e3
    del ref_pipe
    gc.collect()
    start = now()
    selection.select(name_b)
    swap["cold_ms"] = since(start)[0] * 1e3
    times = []
    for i in range(args.swap_iterations):
        start = now()
        selection.select(name_a if i % 2 == 0 else name_b)
        times.append(since(start)[0] * 1e3)
    swap["cached_median_ms"] = statistics.median(times)
    swap["cached_max_ms"] = max(times)
    swap["cached_iterations"] = len(times)
    rounds = args.swap_rounds
    swapped = _time_to_first_step(ctx, args, [name_a, name_b] * rounds)  # every job on the other model
    same = _time_to_first_step(ctx, args, [name_a] * (2 * rounds))  # every job on the model it has
    swap["swap_first_step_median_ms"] = statistics.median(swapped[1:])
    swap["same_first_step_median_ms"] = statistics.median(same[1:])
    selection.select(name_a)
    client = endpoints.clients.get("e2e_on")
    if client is not None:
        swap.update(_time_swap_over_http(client, endpoints.http, name_a, name_b, rounds))
    return swap


def _time_swap_over_http(client, http, name_a: str, name_b: str, rounds: int) -> dict[str, float]:
    """The same through the UI's checkpoint dropdown endpoint (HTTP round trip included), ``rounds`` calls
    through gradio_client and as many over plain HTTP."""
    client.predict(checkpoint=name_b, api_name="/select_checkpoint")  # cold load in the server
    over_client = []
    for i in range(rounds):
        start = now()
        client.predict(checkpoint=name_a if i % 2 == 0 else name_b, api_name="/select_checkpoint")
        over_client.append(since(start)[0] * 1e3)
    over_rest = []
    for i in range(rounds):
        start = now()
        call_over_http(http, "/select_checkpoint", [name_a if i % 2 == 0 else name_b])
        over_rest.append(since(start)[0] * 1e3)
    return {"cached_http_median_ms": statistics.median(over_client),
            "cached_plain_http_median_ms": statistics.median(over_rest)}


def _breakdown(ctx, model: str, args: argparse.Namespace, infotext: str, image: Any) -> dict[str, float]:
    """Time Atelier's per-job pieces on their own: pipeline view, previews, infotext, PNG save."""
    import torch

    from pipelines import samplers
    from pipelines.imaging.preview import fit_previewer
    from pipelines.infotext.codec import format_infotext
    from pipelines.modes.common import job_pipeline
    from pipelines.outputs import save_image

    out: dict[str, float] = {}
    with ctx.store.use(model) as loaded:
        base = loaded.pipeline
        spec, schedule = samplers.resolve(SAMPLER, SCHEDULE)
        out["scheduler+pipeline view"] = median_ms(
            lambda: job_pipeline(base, samplers.build_scheduler(base.scheduler.config, spec, schedule)), 30)
        out["fit previewer (once per model)"] = median_ms(lambda: fit_previewer(base.vae), 3)
        prev = fit_previewer(base.vae)
        latents = torch.randn(1, 4, args.height // 8, args.width // 8)
        out["one preview"] = median_ms(lambda: prev(latents, (args.width, args.height)), 30)
        out["infotext"] = median_ms(lambda: format_infotext(args.prompt, args.negative_prompt,
                                                           {"Steps": args.steps, "Sampler": SAMPLER}), 200)
        out["PNG save (save_image)"] = median_ms(
            lambda: save_image(image, outputs_dir=ctx.settings.data_dir / "breakdown", mode="txt2img",
                               seed=args.seed, infotext=infotext), 10)
    return out


# ------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_child is not None:
        return serve_child(args)
    own_tmp = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="atelier-bench-")) if own_tmp else args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    quiet_environment(args.threads, data_dir)
    try:
        return _benchmark(args, data_dir)
    finally:
        if own_tmp and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def _benchmark(args: argparse.Namespace, data_dir: Path) -> int:
    """Set up, run the contenders in rounds, time swaps, then report; the exit status says if images matched."""
    started_all = time.perf_counter()
    load_start = load_avg()
    import torch

    torch.set_num_threads(args.threads)
    silence_libraries()
    seen_threads: list[int] = []
    probe = threading.Thread(target=lambda: seen_threads.append(torch.get_num_threads()))
    probe.start()
    probe.join()

    print(f"Atelier txt2img benchmark · data dir {data_dir}")
    print(f"python {platform.python_version()} · torch {torch.__version__} · {os.cpu_count()} CPUs · "
          f"threads {torch.get_num_threads()} (new threads see {seen_threads[0]}) · load avg {load_start}")
    t0 = time.perf_counter()
    models = install_models(args, data_dir)
    print(f"models: {models.name_a}{' + ' + models.name_b if models.name_b else ''} ready in "
          f"{time.perf_counter() - t0:.1f}s")

    # The server children start now and import while this process loads its own contenders.
    servers = start_servers(args, data_dir, models)
    try:
        results = _measure(args, data_dir, models, servers)
    finally:
        for server in servers.values():
            server.close()
    results.environment = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                           "threads": torch.get_num_threads(), "threads_in_new_thread": seen_threads[0],
                           "load_start": load_start, "load_end": load_avg()}
    results.total_s = time.perf_counter() - started_all
    return report(results)


def _measure(args: argparse.Namespace, data_dir: Path, models: Models, servers: dict[str, ServerProcess]) -> Results:
    """Everything timed: the interleaved rounds, the image check, the swaps and the breakdown."""
    ctx_off, ctx_on = contexts(args, data_dir, models.extra_dirs)
    start = now()
    ctx_off.selection.select(models.name_a)
    first_load_s = since(start)[0]
    print(f"Atelier context built; first load of {models.name_a} {first_load_s:.2f}s (includes one-time imports)")
    pipe = load_raw_pipeline(models.folder_a)
    raw_dir = data_dir / "raw-outputs"
    raw_dir.mkdir(exist_ok=True)
    shared = Shared()
    inputs = _txt2img_inputs(args, models.name_a)  # imports the UI modules while the servers still start
    endpoints = connect(data_dir, servers)

    e2e_keys = [*endpoints.urls, "e2e_http", "e2e_rest"]
    contenders = [  # core first so raw's PNG carries Atelier's infotext from the start
        _core_contender(args, ctx_off, "core_off", models.name_a, shared),
        _core_contender(args, ctx_on, "core_on", models.name_a, shared),
        *[_client_contender(k, endpoints, inputs, shared) for k in endpoints.urls],
        _http_contender(endpoints, inputs, shared),
        _rest_contender(args, endpoints, models.name_a, shared),
        _raw_contender(args, pipe, shared, raw_dir),
    ]
    series = {k: Series(k) for k in ["raw", "raw_save", "core_off", "core_on", *e2e_keys]}
    print(f"\nwarm-up ({args.warmup} per contender), then {args.repeats} timed rounds, interleaved ...")
    rounds = run_rounds(contenders, series, warmup=args.warmup, repeats=args.repeats)
    endpoints.servers["e2e_on"].thaw()

    reference = contenders[-1].images[0]  # every image of every contender against raw's first
    diffs, worst, verdict = identity(reference, contenders)
    swap = _time_swap(args, models, ctx_off, endpoints) if models.name_b else {}
    breakdown = {} if args.no_breakdown else _breakdown(ctx_on, models.name_a, args, shared.infotext or "",
                                                        reference)
    endpoints.close()
    return Results(
        args=args, model=models.name_a, series=series, rounds=rounds, identity=diffs, worst=worst,
        identity_verdict=verdict, infotext_ok=all(shared.e2e_infotext.get(k) == shared.infotext for k in e2e_keys),
        swap=swap, breakdown=breakdown, settle_cpu=shared.settle_cpu,
        idle_server_ms_per_s=endpoints.idle_server_ms_per_s, first_load_s=first_load_s)


if __name__ == "__main__":
    sys.exit(main())
