"""Pieces every mode shares: per-job pipeline views, seeds, the step callback, infotext keys."""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from pipelines import samplers
from pipelines.errors import ValidationError
from pipelines.hooks import JobHooks
from pipelines.imaging.grid import image_grid
from pipelines.imaging.noise import initial_noise
from pipelines.imaging.preview import LatentPreviewer, fit_previewer
from pipelines.infotext.codec import format_infotext
from pipelines.models.compile import timed_first_call
from pipelines.models.loaded import LoadedModel
from pipelines.models.store import ModelStore
from pipelines.networks.tags import extract_loras
from pipelines.outputs import SaveFn, save_image
from pipelines.progress import JobState, ProgressFn, ProgressUpdate
from pipelines.prompts.conditioning import Conditioning, build_conditioning
from pipelines.prompts.embeddings import EmbeddingUse, embeddings_for
from pipelines.prompts.encode import PromptEncoder
from pipelines.requests import MAX_SEED, GenerationRequest
from pipelines.results import GeneratedImage, GenerationResult
from pipelines.settings import Settings
from pipelines.upscalers.registry import UpscalerRegistry
from pipelines.version import VERSION

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """What the engine hands a mode: the model held for this job and where to report."""

    loaded: LoadedModel | None  # None for modes that don't run on the selected checkpoint
    job: JobState
    on_progress: ProgressFn
    settings: Settings
    store: ModelStore | None = None  # for modes that load models of their own
    upscalers: UpscalerRegistry | None = None  # hires fix and extras upscale through it
    hooks: JobHooks | None = None  # this job's extension hooks (step_end, image_saved, infotext keys)
    prompt_params: dict[str, Any] = field(default_factory=dict)  # infotext keys the conditioning adds (TI hashes)
    vae_params: dict[str, Any] = field(default_factory=dict)  # VAE hash / VAE, when the job's VAE is not the model's
    refiner: LoadedModel | None = None  # the SDXL refiner held for this job (pipelines/modes/refiner.py)
    # the job's TAESD use (pipelines/modes/taesd_job.py): previews decoded by a VAE, img2img's encoder if another
    previewer: Callable[[torch.Tensor, tuple[int, int]], Any] | None = None
    encode_vae: Any = None
    save: SaveFn | None = None  # where finished images go (None: the outputs folder here; see save_output)


def job_pipeline(base: Any, scheduler: Any, cls: type | None = None, **components: Any) -> Any:
    """A pipeline object for one job: the loaded modules, a scheduler of its own (and ``components``
    in place of the loaded ones, e.g. the job's ``vae``).

    Building it is a plain constructor call (about a millisecond); no weights are
    copied, and per-call state such as ``_interrupt`` never touches the cached pipeline.
    """
    cls = cls or type(base)
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in base.components.items() if k in params}
    kwargs.update({k: base.config[k] for k in params if k in base.config and k not in base.components})
    kwargs["scheduler"] = scheduler
    kwargs.update(components)
    view = cls(**kwargs)
    view.set_progress_bar_config(disable=True)
    return view


def with_vae(loaded: LoadedModel, vae: Any) -> LoadedModel:
    """``loaded`` as one job sees it when it decodes with another VAE: a pipeline view holding ``vae``;
    the cached pipeline (and its previewer) stay as they are."""
    base = loaded.pipeline
    return replace(loaded, model=job_pipeline(base, base.scheduler, vae=vae), extras=dict(loaded.extras))


def resolve_seed(seed: int) -> int:
    return seed if seed >= 0 else random.randint(0, MAX_SEED)


def generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per image, so each image depends only on its own seed and
    the same seed gives the same noise on every device."""
    return [torch.Generator("cpu").manual_seed(s) for s in seeds]


def previewer(loaded: LoadedModel) -> LatentPreviewer:
    if "previewer" not in loaded.extras:
        loaded.extras["previewer"] = fit_previewer(loaded.pipeline.vae)
    return loaded.extras["previewer"]


def step_callback(ctx: JobContext, *, steps: int, size: tuple[int, int], text: str, offset: int = 0,
                  conditioning: Conditioning | None = None) -> Callable:
    """diffusers ``callback_on_step_end``: progress, live previews, interrupt and skip, and the
    prompt embeddings of the next step when prompt editing or alternation changes them.

    ``steps`` is the job's total per batch; a later pass of the same batch (hires fix) starts
    counting at ``offset``, so one step bar covers every pass.
    """
    every = ctx.settings.live_preview_every
    job = ctx.job
    reported = offset

    def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        nonlocal reported
        # second-order samplers (Heun, DPM2, DPM++ SDE) call back twice per sampling step
        done = offset + -(-(step + 1) // pipe.scheduler.order)
        if done > reported:
            reported = done
            job.sampling_step, job.sampling_steps = done, steps
            preview = None
            if every > 0 and done % every == 0 and done < steps:
                preview = (ctx.previewer or previewer(ctx.loaded))(tensors["latents"], size)
                job.current_preview = preview
            ctx.on_progress(ProgressUpdate(ctx.job.job, done, steps, "steps", text, preview))
        if ctx.hooks:  # extensions' step_end: new latents for the next step, or stop the job
            tensors["latents"], stop = ctx.hooks.step(pipe, step, _timestep, tensors["latents"])
            if stop:
                job.interrupt()
        if job.interrupted or job.take_skip():
            pipe._interrupt = True  # diffusers' documented way to stop the denoising loop early
        if conditioning is not None:
            tensors = conditioning.step_tensors(pipe, step, tensors)
        return tensors

    return on_step_end


def job_conditioning(ctx: JobContext, pipe: Any, request: GenerationRequest, *, prompt: str, negative_prompt: str,
                     steps: int, first_pass_steps: int | None = None) -> Conditioning:
    """The text conditioning of one pass: A1111's prompt language, the embeddings it names, clip skip.
    ``<lora:...>`` tags are taken out of the text (the engine applied their LoRAs before the job)."""
    cleaned = extract_loras(prompt, negative_prompt)
    prompt, negative_prompt = cleaned.prompt, cleaned.negative_prompt
    texts = [prompt, negative_prompt]
    embeddings = EmbeddingUse()
    architecture = ctx.loaded.record.architecture
    if ctx.store is not None and architecture is not None:
        widths = [int(enc.model.config.hidden_size) for enc in PromptEncoder.from_pipeline(pipe).encoders]
        embeddings = embeddings_for(ctx.store, architecture, texts, widths=widths)
    for name, why in embeddings.skipped.items():
        log.warning("embedding %s skipped: %s", name, why)
    ctx.prompt_params.update(embeddings.infotext())
    return build_conditioning(pipe, prompt=prompt, negative_prompt=negative_prompt, steps=steps,
                              clip_skip=request.clip_skip, emphasis=request.emphasis,
                              embeddings=embeddings.vectors, first_pass_steps=first_pass_steps)


def variation_params(request: GenerationRequest, seed: int) -> dict[str, Any]:
    """A1111's variation keys for the image of ``seed``, written when used (seeds resolved: see
    :func:`with_resolved_seeds`; image *i* has seed + *i* and variation seed + *i*)."""
    variation = request.variation
    params: dict[str, Any] = {}
    if variation.strength > 0:
        params["Variation seed"] = request.subseed + seed - request.seed
        params["Variation seed strength"] = variation.strength
    if variation.resize_from is not None:
        params["Seed resize from"] = f"{variation.resize_from[0]}x{variation.resize_from[1]}"
    return params


def with_resolved_seeds(request: Any) -> Any:
    """``request`` with a random seed (-1) and a random variation seed drawn now, so every image's pair is known."""
    return replace(request, seed=resolve_seed(request.seed), subseed=resolve_seed(request.subseed))


def variation_noise(request: GenerationRequest) -> BatchInputs | None:
    """``batch_inputs`` giving the pipeline its initial ``latents`` when a variation seed or seed resize is used
    (``request`` with resolved seeds)."""
    if not request.variation.active:
        return None  # the pipeline draws each image's noise from its own generator, as ever

    def latents(pipe: Any, seeds: list[int]) -> dict[str, Any]:
        subseeds = [request.subseed + seed - request.seed for seed in seeds]
        noise = initial_noise(seeds, subseeds, request.variation, channels=pipe.unet.config.in_channels,
                              size=(request.width, request.height), scale=pipe.vae_scale_factor,
                              dtype=pipe.unet.dtype)
        return {"latents": noise}

    return latents


def model_params(ctx: JobContext) -> dict[str, Any]:
    """``Model hash`` (sha256[:10]; a first job waits here, at save time, for the hash begun with the load; left
    out with --no-hashing or when hashing failed, as A1111 does) and ``Model``."""
    record = ctx.loaded.record
    short = record.short_hash
    if short is None and ctx.store is not None:
        sha256 = ctx.store.model_sha256(record)
        short = sha256[:10] if sha256 else None
    return {"Model hash": short, "Model": record.name}


def base_params(request: GenerationRequest, ctx: JobContext, seed: int) -> dict[str, Any]:
    """Infotext keys every mode writes, in A1111's order, up to and including the model."""
    spec, schedule = samplers.resolve(request.sampler_name, request.scheduler)
    return {
        "Steps": request.steps,
        "Sampler": spec.name,
        "Schedule type": schedule.label,
        "CFG scale": request.cfg_scale,
        "Seed": seed,
        "Size": f"{request.width}x{request.height}",
        **model_params(ctx),
        **ctx.vae_params,
        **variation_params(request, seed),
    }


def tail_params(request: GenerationRequest, ctx: JobContext, batch_pos: int,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Infotext keys every mode writes after its own ones; ``extra`` (A1111's ``extra_generation_params``,
    e.g. the hires keys) goes between them and ``Version``, where A1111 writes it, followed by the
    conditioning's own (``Emphasis`` when not the default, ``TI hashes``)."""
    params: dict[str, Any] = {}
    if request.clip_skip > 1:
        params["Clip skip"] = request.clip_skip
    params["RNG"] = "CPU"
    if request.batch_size > 1:
        params["Batch size"] = request.batch_size
        params["Batch pos"] = batch_pos
    params.update(extra or {})
    if request.emphasis != "Original":
        params["Emphasis"] = request.emphasis
    params.update(ctx.prompt_params)
    params.update(ctx.hooks.infotext if ctx.hooks else {})  # keys the extensions' before_job hooks added
    params["Version"] = VERSION
    return params


InfotextParams = Callable[[Any, JobContext, int, int], dict[str, Any]]
BatchInputs = Callable[[Any, list[int]], dict[str, Any]]


@dataclass(frozen=True)
class SecondPass:
    """A pass run on each batch's first-pass output before its images are saved (hires fix).

    ``run(first_pipe, first_output_images, seeds, text)`` returns the batch's final PIL images;
    ``first_output_images`` is whatever the first pass's ``output_type`` asked for.
    """

    steps: int  # denoising steps it runs per batch, for the progress bar
    run: Callable[[Any, Any, list[int], str], list[Any]]


def run_batches(request: GenerationRequest, ctx: JobContext, *, pipeline_cls: type | None,
                call_kwargs: dict[str, Any], denoising_steps: int,
                infotext_params: InfotextParams, second_pass: SecondPass | None = None,
                batch_inputs: BatchInputs | None = None) -> GenerationResult:
    """The loop every mode shares: ``n_iter`` batches of ``batch_size`` images, each batch on a
    pipeline view of its own, every step reported, every image saved with its infotext.
    ``batch_inputs(pipe, seeds)`` adds call arguments that depend on the batch's seeds (inpaint's latent fill)."""
    spec, schedule = samplers.resolve(request.sampler_name, request.scheduler)
    if spec.pixel_space_only:
        raise ValidationError("sampler_name", f"{spec.name} runs unconditional pixel-space models only; "
                              f"{ctx.loaded.record.name} is a text-to-image model: choose another sampler")
    first_seed = resolve_seed(request.seed)
    base = ctx.loaded.pipeline
    ctx.job.job_count = request.n_iter
    conditioning = job_conditioning(ctx, base, request, prompt=request.prompt, negative_prompt=request.negative_prompt,
                                    steps=request.steps)
    images: list[GeneratedImage] = []
    for iteration, seeds in batch_seeds(ctx.job, request, first_seed):
        pipe = job_pipeline(base, samplers.build_scheduler(base.scheduler.config, spec, schedule), cls=pipeline_cls)
        label = f"Batch {iteration + 1}/{request.n_iter}"
        total = denoising_steps + (second_pass.steps if second_pass else 0)
        callback = step_callback(ctx, steps=total, size=(request.width, request.height), text=label,
                                 conditioning=conditioning)
        with timed_first_call(ctx.loaded.extras, (request.width, request.height, request.batch_size),
                              ctx.loaded.record.name):  # a compiled model compiles on its first job at a size
            output = pipe(
                **conditioning.call_kwargs(request.batch_size),
                num_inference_steps=request.steps,
                guidance_scale=request.cfg_scale,
                generator=generators(seeds),
                callback_on_step_end=callback,
                callback_on_step_end_tensor_inputs=["latents", *conditioning.tensor_inputs],
                **call_kwargs,
                **(batch_inputs(pipe, seeds) if batch_inputs else {}),
            )
        batch = second_pass.run(pipe, output.images, seeds, label) if second_pass else output.images
        for pos, (image, seed) in enumerate(zip(batch, seeds, strict=True)):
            text = format_infotext(request.prompt, request.negative_prompt, infotext_params(request, ctx, seed, pos))
            images.append(saved(image, seed, text, request, ctx))
    info = result_info(request, ctx, images, first_seed, spec, schedule)
    return GenerationResult(images=images, info=info, interrupted=ctx.job.interrupted,
                            grid=batch_grid(request, ctx, images))


def batch_seeds(state: JobState, request: GenerationRequest, first_seed: int) -> Iterator[tuple[int, list[int]]]:
    """Each batch's number and seeds, as A1111 numbers them (image i of batch k: seed + k * batch_size + i),
    with the job's batch counters kept up to date; stops at an Interrupt."""
    state.job_count = request.n_iter
    for iteration in range(request.n_iter):
        if state.interrupted:
            return
        state.job_no = iteration
        yield iteration, [first_seed + iteration * request.batch_size + i for i in range(request.batch_size)]


def saved(image: Any, seed: int, infotext: str, request: GenerationRequest, ctx: JobContext) -> GeneratedImage:
    """One generated image with its infotext, saved (when the request saves images) and announced to the
    extensions' image_saved hooks."""
    path = None
    if request.save_images:
        path = save_output(ctx, image, mode=request.mode, seed=seed, infotext=infotext)
    return GeneratedImage(image=image, seed=seed, infotext=infotext, path=path)


def save_output(ctx: JobContext, image: Any, *, mode: str, seed: int | None, infotext: str,
                kind: str = "images") -> Path | None:
    """Save one finished image (or grid) of the job: where the job's ``save`` sends it (a cluster replica's
    sends it to the front process), else into the outputs folder here, announced to the image_saved hooks."""
    if ctx.save is not None:
        return ctx.save(image, mode=mode, seed=seed, infotext=infotext, kind=kind)
    return save_locally(ctx.settings, ctx.hooks, image, mode=mode, seed=seed, infotext=infotext, kind=kind)


def save_locally(settings: Settings, hooks: JobHooks | None, image: Any, *, mode: str, seed: int | None,
                 infotext: str, kind: str = "images") -> Path:
    """Write the image into ``outputs/`` (A1111's layout) and tell the extensions' image_saved hooks."""
    path = save_image(image, outputs_dir=settings.outputs_dir, mode=mode, seed=seed, infotext=infotext, kind=kind)
    if hooks:
        hooks.image_saved(path, image, infotext, mode)
    return path


def batch_grid(request: GenerationRequest, ctx: JobContext, images: list[GeneratedImage]) -> GeneratedImage | None:
    """A1111's grid of a job that made more than one image, with the first image's infotext and seed; saved in
    ``outputs/<mode>-grids/`` when the job saves its images and ``save_grid`` (option grid_save) is on."""
    if len(images) < 2:
        return None
    grid = image_grid([img.image for img in images], request.grid_rows, request.batch_size)
    first = images[0]
    path = None
    if request.save_images and request.save_grid:
        path = save_output(ctx, grid, mode=request.mode, seed=first.seed, infotext=first.infotext, kind="grids")
    return GeneratedImage(image=grid, seed=first.seed, infotext=first.infotext, path=path)


def result_info(request: GenerationRequest, ctx: JobContext, images: list[GeneratedImage], first_seed: int,
                spec: samplers.SamplerSpec, schedule: samplers.Schedule) -> dict[str, Any]:
    """The result's ``info``: A1111's ``Processed.js()`` keys the core knows."""
    return {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "seed": first_seed,
        "all_seeds": [img.seed for img in images],
        "subseed": request.subseed + first_seed - request.seed if request.seed >= 0 else request.subseed,
        "all_subseeds": [request.subseed + img.seed - first_seed for img in images],
        "width": request.width,
        "height": request.height,
        "sampler_name": spec.name,
        "scheduler": schedule.label,
        "cfg_scale": request.cfg_scale,
        "steps": request.steps,
        "batch_size": request.batch_size,
        "sd_model_name": ctx.loaded.record.name,
        "sd_model_hash": model_params(ctx)["Model hash"],
        "sd_vae_name": ctx.vae_params.get("VAE"),
        "sd_vae_hash": ctx.vae_params.get("VAE hash"),
        "infotexts": [img.infotext for img in images],
        "version": VERSION,
    }
