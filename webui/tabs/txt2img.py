"""The txt2img tab: a form that builds a Txt2ImgRequest, a gallery that shows the saved files."""

from __future__ import annotations

import gradio as gr

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.requests import Txt2ImgRequest
from pipelines.results import GenerationResult
from webui.components.checkpoint_bar import CheckpointBar
from webui.errors import user_error
from webui.jobs import Finished, describe, stream


def _gallery(result: GenerationResult) -> list[tuple[str, str]]:
    return [(str(img.path) if img.path else img.image, f"Seed {img.seed}") for img in result.images]


def build(ctx: AppContext, bar: CheckpointBar) -> None:
    engine = ctx.engine
    defaults = Txt2ImgRequest()
    last_seed = gr.State(-1)
    with gr.Row():
        with gr.Column(scale=5):
            prompt = gr.Textbox(label="Prompt", lines=3, placeholder="a watercolor fox in a misty forest",
                                elem_id="txt2img_prompt")
            negative_prompt = gr.Textbox(label="Negative prompt", lines=2, elem_id="txt2img_negative_prompt")
        with gr.Column(scale=1, min_width=160):
            generate = gr.Button("Generate", variant="primary", elem_id="txt2img_generate")
            with gr.Row():
                interrupt = gr.Button("Interrupt", elem_id="txt2img_interrupt", min_width=60)
                skip = gr.Button("Skip", elem_id="txt2img_skip", min_width=60)
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Row():
                sampler_name = gr.Dropdown(samplers.sampler_names(), value=defaults.sampler_name,
                                           label="Sampling method")
                scheduler = gr.Dropdown(samplers.schedule_labels(), value=defaults.scheduler, label="Schedule type")
            steps = gr.Slider(1, 150, value=defaults.steps, step=1, label="Sampling steps")
            with gr.Row():
                width = gr.Slider(64, 2048, value=defaults.width, step=8, label="Width")
                height = gr.Slider(64, 2048, value=defaults.height, step=8, label="Height")
            with gr.Row():
                n_iter = gr.Slider(1, 100, value=1, step=1, label="Batch count")
                batch_size = gr.Slider(1, 8, value=1, step=1, label="Batch size")
            cfg_scale = gr.Slider(0, 30, value=defaults.cfg_scale, step=0.5, label="CFG Scale")
            with gr.Row(equal_height=True):
                seed = gr.Number(value=-1, label="Seed", precision=0, scale=4, elem_id="txt2img_seed")
                random_seed = gr.Button("🎲 Random", scale=1, min_width=60, elem_id="txt2img_random_seed")
                reuse_seed = gr.Button("♻️ Reuse last", scale=1, min_width=60, elem_id="txt2img_reuse_seed")
        with gr.Column(scale=1):
            preview = gr.Image(label="Live preview", visible=False, interactive=False, elem_id="txt2img_preview")
            gallery = gr.Gallery(label="Output", format="png", columns=2, elem_id="txt2img_gallery",
                                 buttons=["download", "fullscreen"])
            info = gr.Textbox(label="Generation info", lines=4, interactive=False, elem_id="txt2img_info")

    def txt2img(checkpoint, prompt, negative_prompt, sampler_name, scheduler, steps, cfg_scale, width, height, seed,
                batch_size, n_iter, progress: gr.Progress = gr.Progress()):
        """Generate images from a prompt; yields live previews, then the saved images."""
        request = Txt2ImgRequest(
            prompt=prompt or "", negative_prompt=negative_prompt or "", sampler_name=sampler_name,
            scheduler=scheduler, steps=int(steps), cfg_scale=float(cfg_scale), width=int(width), height=int(height),
            seed=int(seed if seed is not None else -1), batch_size=int(batch_size), n_iter=int(n_iter),
            model=checkpoint or None,
        )
        try:
            request.validate()
        except Exception as exc:
            raise user_error(exc) from exc
        for item in stream(lambda report: engine.generate(request, on_progress=report)):
            if isinstance(item, Finished):
                if item.error is not None:
                    raise user_error(item.error)
                result = item.result
                first = result.images[0] if result.images else None
                yield (gr.Image(visible=False), _gallery(result), first.infotext if first else "",
                       first.seed if first else -1)
                return
            progress(item.fraction, desc=describe(item))
            if item.preview is not None:
                yield gr.Image(value=item.preview, visible=True), gr.skip(), gr.skip(), gr.skip()

    generate.click(
        txt2img,
        [bar.dropdown, prompt, negative_prompt, sampler_name, scheduler, steps, cfg_scale, width, height, seed,
         batch_size, n_iter],
        [preview, gallery, info, last_seed],
        api_name="txt2img",
        concurrency_id="gpu",
        concurrency_limit=1,
    )
    prompt.submit(lambda: None, None, None, js="() => document.querySelector('#txt2img_generate').click()")
    interrupt.click(lambda: engine.interrupt() and None, None, None, api_name="interrupt", queue=False)
    skip.click(lambda: engine.skip() and None, None, None, api_name="skip", queue=False)
    random_seed.click(lambda: -1, None, seed, queue=False, api_name=False)
    reuse_seed.click(lambda last: last, last_seed, seed, queue=False, api_name=False)
