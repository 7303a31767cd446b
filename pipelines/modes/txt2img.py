"""txt2img: prompt in, images out, each saved with its infotext."""

from __future__ import annotations

import torch

from pipelines import samplers
from pipelines.infotext import format_infotext
from pipelines.modes.common import (
    VERSION,
    JobContext,
    generators,
    job_pipeline,
    model_params,
    resolve_seed,
    step_callback,
)
from pipelines.outputs import save_image
from pipelines.requests import Txt2ImgRequest
from pipelines.results import GeneratedImage, GenerationResult


def infotext_params(request: Txt2ImgRequest, ctx: JobContext, seed: int, batch_pos: int) -> dict:
    spec, schedule = samplers.resolve(request.sampler_name, request.scheduler)
    params = {
        "Steps": request.steps,
        "Sampler": spec.name,
        "Schedule type": schedule.label,
        "CFG scale": request.cfg_scale,
        "Seed": seed,
        "Size": f"{request.width}x{request.height}",
        **model_params(ctx.loaded),
        "RNG": "CPU",
    }
    if request.batch_size > 1:
        params["Batch size"] = request.batch_size
        params["Batch pos"] = batch_pos
    params["Version"] = VERSION
    return params


@torch.inference_mode()
def run(request: Txt2ImgRequest, ctx: JobContext) -> GenerationResult:
    # 1. Check inputs and resolve the sampler and seeds
    request.validate()
    spec, schedule = samplers.resolve(request.sampler_name, request.scheduler)
    first_seed = resolve_seed(request.seed)
    base = ctx.loaded.pipeline
    ctx.job.job_count = request.n_iter
    images: list[GeneratedImage] = []
    for iteration in range(request.n_iter):
        if ctx.job.interrupted:
            break
        ctx.job.job_no = iteration
        seeds = [first_seed + iteration * request.batch_size + i for i in range(request.batch_size)]
        # 2. A pipeline view with a scheduler of its own for this batch
        pipe = job_pipeline(base, samplers.build_scheduler(base.scheduler.config, spec, schedule))
        # 3. Denoise, reporting every step
        callback = step_callback(ctx, steps=request.steps, size=(request.width, request.height),
                                 text=f"Batch {iteration + 1}/{request.n_iter}")
        output = pipe(
            prompt=[request.prompt] * request.batch_size,
            negative_prompt=[request.negative_prompt] * request.batch_size,
            num_inference_steps=request.steps,
            guidance_scale=request.cfg_scale,
            width=request.width,
            height=request.height,
            generator=generators(seeds),
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents"],
        )
        # 4. Infotext and saving
        for pos, (image, seed) in enumerate(zip(output.images, seeds, strict=True)):
            text = format_infotext(request.prompt, request.negative_prompt,
                                   infotext_params(request, ctx, seed, pos))
            path = None
            if request.save_images:
                path = save_image(image, outputs_dir=ctx.settings.outputs_dir, mode="txt2img", seed=seed, infotext=text)
            images.append(GeneratedImage(image=image, seed=seed, infotext=text, path=path))
    info = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "seed": first_seed,
        "all_seeds": [img.seed for img in images],
        "width": request.width,
        "height": request.height,
        "sampler_name": spec.name,
        "scheduler": schedule.label,
        "cfg_scale": request.cfg_scale,
        "steps": request.steps,
        "batch_size": request.batch_size,
        "sd_model_name": ctx.loaded.record.name,
        "sd_model_hash": ctx.loaded.record.short_hash,
        "infotexts": [img.infotext for img in images],
        "version": VERSION,
    }
    return GenerationResult(images=images, info=info, interrupted=ctx.job.interrupted)
