"""The Imagine tab: Midjourney's flow on the txt2img settings (pipelines/imagine.py).

A prompt box and **Imagine** make a batch (4 by default) shown as its 2x2 grid; under each grid, U1..U4
upscale one image, V1..V4 vary it (subtle or strong, the toggle above) and 🔄 rerolls the batch with new
seeds. Every result is a new entry at the top of a running feed, as in a chat: nothing is replaced.

The feed is a hidden ``gr.JSON`` (per page, and readable by API clients), drawn by ``@gr.render`` with the
buttons each entry needs. The same handlers serve the page and the endpoints ``/imagine`` and
``/imagine_action`` (gradio_client).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import gradio as gr

from pipelines.actions import UPSCALE_FACTOR
from pipelines.context import AppContext
from pipelines.imagine import DEFAULT_BATCH, action_request, imagine_request
from pipelines.requests import ExtrasRequest
from pipelines.results import GenerationResult
from webui.components.result_actions import read_image
from webui.errors import user_error
from webui.jobs import generation, run_job
from webui.owners import page_owner
from webui.queueing import device_events
from webui.tabs.txt2img import Txt2ImgForm, request_from_form

Feed = list[dict[str, Any]]  # newest first; each entry: id, kind, title, grid, images, seeds


def _title(action: str, index: int, entry: int, factor: float) -> str:
    """An action entry's title: "U2 · image 2 of entry 1 · 2x", "V3 (strong) · ...", "🔄 Reroll · from entry 1"."""
    if action == "reroll":
        return f"🔄 Reroll · from entry {entry}"
    if action == "upscale":
        return f"U{index} · image {index} of entry {entry} · {factor:g}x"
    return f"V{index} ({action.removeprefix('vary_')}) · image {index} of entry {entry}"


def feed_entry(feed: Feed, kind: str, result: GenerationResult, title: str) -> dict[str, Any]:
    """The entry for a finished job: its grid (when it made several images), its images and seeds."""
    if not result.paths:
        raise gr.Error("The job was stopped before it made an image.", title="No image")
    grid = result.grid.path if result.grid is not None and result.grid.path is not None else None
    return {"id": max((e["id"] for e in feed), default=0) + 1, "kind": kind, "title": title,
            "grid": str(grid) if grid else None, "images": [str(p) for p in result.paths],
            "seeds": [img.seed for img in result.images]}


def run(ctx: AppContext, job: Any, progress: Any, request: gr.Request | None, title: str) -> GenerationResult:
    """One job as the page's: txt2img/img2img with the quick settings (webui/jobs.py), an upscale as it is."""
    owner = page_owner(request)
    if isinstance(job, ExtrasRequest):
        def call(report: Any) -> GenerationResult:
            return ctx.engine.generate(job, on_progress=report, owner=owner)
    else:
        call = generation(ctx, job, owner=owner)
    return run_job(call, progress, error_title=title)


def imagine_handler(ctx: AppContext) -> Callable[..., Feed]:
    def imagine(imagine_prompt: str | None, count: float, feed: Feed | None, progress: gr.Progress = gr.Progress(),
                request: gr.Request | None = None, **form_values: Any) -> Feed:
        """Make a batch from the prompt at the txt2img tab's settings; its grid becomes the newest entry."""
        feed = list(feed or [])
        if not (imagine_prompt or "").strip():
            raise gr.Error("Write a prompt first.", title="Cannot imagine")
        try:
            job = imagine_request(replace(request_from_form(**form_values), prompt=imagine_prompt.strip()),
                                  int(count))
            job.validate()
        except Exception as exc:
            raise user_error(exc, title="Cannot imagine") from exc
        result = run(ctx, job, progress, request, "Cannot imagine")
        return [feed_entry(feed, "imagine", result, f"Imagine · {job.prompt}"), *feed]

    return imagine


def action_handler(ctx: AppContext) -> Callable[..., Feed]:
    def imagine_action(feed: Feed | None, entry_id: float, action: str, index: float, factor: float,
                       count: float, progress: gr.Progress = gr.Progress(),
                       request: gr.Request | None = None) -> Feed:
        """U (upscale), V (vary_subtle / vary_strong) or reroll on image ``index`` (1-based) of entry ``entry_id``;
        the result becomes the newest entry."""
        feed = list(feed or [])
        entry = next((e for e in feed if e["id"] == int(entry_id)), None)
        if entry is None:
            raise gr.Error(f"There is no entry {entry_id} in the feed.", title="No image")
        position = int(index) - 1
        if not 0 <= position < len(entry["images"]):
            raise gr.Error(f"Entry {entry['id']} has images 1 to {len(entry['images'])}, not {index}.",
                           title="No image")
        image, infotext = read_image(entry["images"][position])
        try:
            job = action_request(action, image, infotext, upscaler=ctx.upscalers.default_name(), store=ctx.store,
                                 factor=float(factor), batch_size=int(count))
            job.validate()
        except Exception as exc:
            raise user_error(exc, title="Cannot run the action") from exc
        result = run(ctx, job, progress, request, "Cannot run the action")
        title = _title(action, int(index), entry["id"], float(factor))
        return [feed_entry(feed, action, result, title), *feed]

    return imagine_action


def build(ctx: AppContext, form: Txt2ImgForm) -> None:
    """The tab's layout and events; the txt2img tab's ``form`` gives the settings."""
    gr.Markdown("A prompt makes a grid of images at the **txt2img** tab's settings. Under each grid: **U** upscales "
                "an image, **V** varies it, **🔄** rerolls the prompt with new seeds. New results appear on top.")
    with gr.Row(equal_height=True):
        prompt = gr.Textbox(label="Prompt", lines=2, scale=6, elem_id="imagine_prompt",
                            placeholder="a lighthouse on a cliff at dawn, watercolor")
        go = gr.Button("Imagine", variant="primary", scale=1, elem_id="imagine_generate")
    with gr.Row():
        count = gr.Slider(1, 8, value=DEFAULT_BATCH, step=1, label="Images per grid", elem_id="imagine_count")
        factor = gr.Slider(1, 4, value=UPSCALE_FACTOR, step=0.5, label="U: upscale factor", elem_id="imagine_factor")
        strength = gr.Radio(["subtle", "strong"], value="subtle", label="V: vary", elem_id="imagine_strength",
                            interactive=True)  # an input of the feed's rendered events only
    feed = gr.JSON(value=[], visible=False, elem_id="imagine_feed")
    # what a feed button sends to the action endpoint (also the endpoint's inputs for API clients)
    with gr.Row(visible=False):
        entry_id, index = gr.Number(0, precision=0), gr.Number(1, precision=0)
        action = gr.Textbox("upscale")
        act = gr.Button("act")  # API clients' /imagine_action; the feed's buttons call the handler directly
    imagine = imagine_handler(ctx)
    go.click(imagine, None, feed, inputs_kwargs={"imagine_prompt": prompt, "count": count, "feed": feed,
                                                  **form.named()}, api_name="imagine", **device_events(ctx))
    prompt.submit(lambda: None, None, None, js="() => document.querySelector('#imagine_generate').click()")
    act.click(action_handler(ctx), [feed, entry_id, action, index, factor, count], feed, api_name="imagine_action",
              **device_events(ctx))

    handler = action_handler(ctx)

    # Drawn when the feed changes, not on page load: a new page's feed is empty, and a queued render at load
    # kept some pages' load events from settling on a busy machine (the browser tests' wait).
    @gr.render(inputs=feed, triggers=[feed.change])
    def show(entries: Feed | None) -> None:
        for entry in entries or []:
            _draw_entry(ctx, entry, handler, feed, [factor, count, strength])


def _draw_entry(ctx: AppContext, entry: dict[str, Any], handler: Callable[..., Feed], feed: gr.JSON,
                settings: list[Any]) -> None:
    """One feed entry: its title, its grid (or single image) and its buttons."""
    images = entry["images"]
    with gr.Group(elem_classes="imagine-entry"):
        gr.Markdown(f"**{entry['id']}.** {entry['title']}", elem_classes="imagine-title")
        gr.Image(entry["grid"] or images[0], show_label=False, interactive=False, format="png",
                 buttons=["download", "fullscreen"], elem_classes="imagine-image")
        if entry["kind"] == "upscale":
            return
        with gr.Row():
            for kind, label in (("upscale", "U"), ("vary", "V")):
                for n in range(1, len(images) + 1):
                    button = gr.Button(f"{label}{n}", size="sm", min_width=40,
                                       elem_id=f"imagine_{entry['id']}_{label}{n}")
                    button.click(_pressed(handler, entry["id"], kind, n), [feed, *settings], feed, api_name=False,
                                 **device_events(ctx))
            reroll = gr.Button("🔄", size="sm", min_width=40, elem_id=f"imagine_{entry['id']}_reroll")
            reroll.click(_pressed(handler, entry["id"], "reroll", 1), [feed, *settings], feed, api_name=False,
                         **device_events(ctx))


def _pressed(handler: Callable[..., Feed], entry_id: int, kind: str, n: int) -> Callable[..., Feed]:
    """A feed button's event: the action on image ``n`` of entry ``entry_id`` (V: the toggle's strength)."""

    def pressed(feed: Feed | None, factor: float, count: float, strength: str, progress: gr.Progress = gr.Progress(),
                request: gr.Request | None = None) -> Feed:
        action = f"vary_{strength}" if kind == "vary" else kind
        return handler(feed, entry_id, action, n, factor, count, progress=progress, request=request)

    return pressed
