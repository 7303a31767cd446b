"""img2img's "Variation" sub-tab: new pictures from any image's CLIP embedding (DALL·E 2's idea), made by an
installed image-variation model (pipelines/modes/variation.py). The sub-tab shows when one is installed; it takes
the shared settings (sampler, steps, size, batch, CFG scale, seed) and its results go to the img2img gallery. A Stable
unCLIP model also takes the shared prompts and a "Noise level" (shown while such a model is chosen)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pipelines.context import AppContext
from pipelines.errors import AtelierError
from pipelines.imaging.image_input import read_image_file
from pipelines.infotext.codec import parse_infotext
from pipelines.models.kinds import ModelType
from pipelines.modes.variation import noise_level_range
from pipelines.requests.variation import ImageVariationRequest
from webui.components.gallery import first_infotext, gallery_items
from webui.errors import user_error
from webui.jobs import generation, run_job
from webui.owners import page_owner
from webui.queueing import device_events
from webui.tabs.img2img_form import Img2ImgForm


@dataclass(frozen=True)
class VariationInputs:
    image: gr.Image
    model: gr.Dropdown
    noise_level: gr.Slider
    generate: gr.Button


def model_names(ctx: AppContext) -> list[str]:
    return [r.name for r in ctx.store.records(ModelType.IMAGE_VARIATION) if r.installed and not r.problem]


def noise_top(ctx: AppContext, name: str | None) -> int | None:
    """The highest noise level of the model ``name`` when it is a Stable unCLIP one; None otherwise."""
    try:
        return noise_level_range(ctx.store.find(name, ModelType.IMAGE_VARIATION)) if name else None
    except AtelierError:  # a name typed in that is not installed: the job says so
        return None


def noise_slider_for(ctx: AppContext, name: str | None) -> dict:
    top = noise_top(ctx, name)
    return gr.update(visible=top is not None, maximum=top if top is not None else 999)


def paste(ctx: AppContext, inputs: VariationInputs, infotext: str | None) -> dict:
    """The sub-tab's own values from an image-embedding variation's infotext (sent to img2img from PNG Info, a gallery
    or History): its model when installed and, for a Stable unCLIP model, its "Noise level". The shared settings
    (prompts, seed, sampler, ...) are the img2img form's paste; with the same input picture the image repeats."""
    params = parse_infotext(infotext or "")
    name = params.get("Model")
    if params.get("Variation") != "image embedding" or name not in model_names(ctx):
        return {}
    values: dict = {inputs.model: name}
    top, level = noise_top(ctx, name), params.get("Noise level", "").strip()
    if top is not None and level.isdigit():
        values[inputs.noise_level] = gr.update(value=min(int(level), top), maximum=top, visible=True)
    return values


def build_inputs(ctx: AppContext) -> VariationInputs:
    """The sub-tab's own inputs; build inside its ``gr.Tab``."""
    names = model_names(ctx)
    image = gr.Image(label="Image to vary", type="filepath", sources=["upload", "clipboard"], height=300,
                     elem_id="img2img_variation_image")
    model = gr.Dropdown(names, value=names[0] if names else None, label="Image-variation model",
                        allow_custom_value=True,  # one installed after start; the job checks the name
                        elem_id="img2img_variation_model")
    top = noise_top(ctx, names[0] if names else None)
    noise_level = gr.Slider(0, top if top is not None else 999, value=0, step=1, label="Noise level",
                            info="unCLIP: noise added to the image embedding (0: none; more: looser variations)",
                            visible=top is not None, elem_id="img2img_variation_noise_level")
    generate = gr.Button("Generate variations", variant="primary", elem_id="img2img_variation_generate")
    gr.Markdown("The model draws from the image's CLIP embedding; only Stable unCLIP models also read the prompts. "
                "Sampler, steps, size, batch, CFG scale and seed come from the settings below.")
    model.change(lambda name: noise_slider_for(ctx, name), model, noise_level, queue=False, api_name=False)
    return VariationInputs(image, model, noise_level, generate)


def wire(ctx: AppContext, inputs: VariationInputs, form: Img2ImgForm, gallery: gr.Gallery, info: gr.Textbox) -> None:
    def variations(image: str | None, model: str | None, noise_level: float | None, prompt: str, negative_prompt: str,
                   sampler_name: str, scheduler: str, steps: float, width: float, height: float, n_iter: float,
                   batch_size: float, cfg_scale: float, seed: float | None, progress: gr.Progress = gr.Progress(),
                   request: gr.Request | None = None):
        """Variations of the image from its CLIP image embedding, with the img2img settings (a Stable unCLIP model:
        with the prompts and the noise level too)."""
        if not image:
            raise gr.Error("Drop an image to vary first.", title="No image")
        unclip = noise_top(ctx, model) is not None  # the hidden slider and the prompts mean nothing to other models
        try:
            job = ImageVariationRequest(
                image=read_image_file(image, "image"), variation_model=model or None,
                noise_level=int(noise_level or 0) if unclip else 0, prompt=(prompt or "") if unclip else "",
                negative_prompt=(negative_prompt or "") if unclip else "", sampler_name=sampler_name,
                scheduler=scheduler, steps=int(steps), width=int(width), height=int(height), n_iter=int(n_iter),
                batch_size=int(batch_size), cfg_scale=float(cfg_scale), seed=int(seed if seed is not None else -1))
            job.validate()
        except Exception as exc:
            raise user_error(exc, title="Cannot vary") from exc
        result = run_job(generation(ctx, job, owner=page_owner(request)), progress, error_title="Cannot vary")
        return gallery_items(result), first_infotext(result)

    inputs.generate.click(variations, [inputs.image, inputs.model, inputs.noise_level, form.prompt,
                                       form.negative_prompt, form.sampler_name, form.scheduler, form.steps,
                                       form.width, form.height, form.n_iter, form.batch_size, form.cfg_scale,
                                       form.seed],
                          [gallery, info], api_name="img2img_variation", **device_events(ctx))
