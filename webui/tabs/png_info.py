"""The PNG Info tab: what an image file says about how it was made, and sending it to another tab.

The core reads the file (:mod:`pipelines.infotext.png_info`) and maps its parameters
(:mod:`pipelines.infotext.paste`); this tab only shows the result. The image arrives as the
file Gradio received (``type="filepath"``), opened here with Pillow, so no
preprocessing step can drop its text chunks or EXIF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import gradio as gr
from PIL import Image

from pipelines.context import AppContext
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.paste import PastedParameters, paste_parameters
from pipelines.infotext.png_info import ImageMetadata, read_image_metadata
from webui.components.checkpoint_bar import CheckpointBar, checkpoint_choices
from webui.jobs import run_job

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


@dataclass(frozen=True)
class PngInfoTab:
    image: gr.Image
    parameters: gr.Textbox  # the infotext, what "Send to txt2img" pastes
    send_to_txt2img: gr.Button
    send_to_img2img: gr.Button  # the image and its parameters
    send_to_inpaint: gr.Button
    send_to_extras: gr.Button  # the image only


def _escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def items_markdown(items: dict[str, str]) -> str:
    """Every other text chunk, raw, each in a code block."""
    blocks = []
    for name, value in items.items():
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", value)), default=0))
        blocks.append(f"**{_escape(name)}**\n\n{fence}\n{value}\n{fence}")
    return "\n\n".join(blocks)


def model_markdown(first_line: str, pasted: PastedParameters | None) -> str:
    """A first line, then the model the parameters name and what cannot be used."""
    messages = [_escape(message) for message in pasted.messages()] if pasted else []
    return "\n\n".join([first_line, *messages])


def source_line(meta: ImageMetadata) -> str:
    if meta.parameters is None:
        return "No generation parameters in this image."
    return f"Read from: {_escape(meta.source or '?')}."


def build(ctx: AppContext, bar: CheckpointBar) -> PngInfoTab:
    store = ctx.store
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Source", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                             elem_id="png_info_image")
        with gr.Column():
            parameters = gr.Textbox(label="Parameters", lines=6, interactive=False, buttons=["copy"],
                                    elem_id="png_info_parameters")
            model = gr.Markdown(elem_id="png_info_model")
            download = gr.Button("Download from the Hub", visible=False, elem_id="png_info_download")
            send = gr.Button("Send to txt2img", variant="primary", elem_id="png_info_send_txt2img")
            with gr.Row():
                send_img2img = gr.Button("Send to img2img", elem_id="png_info_send_img2img")
                send_inpaint = gr.Button("Send to inpaint", elem_id="png_info_send_inpaint")
                send_extras = gr.Button("Send to extras", elem_id="png_info_send_extras")
            items = gr.Markdown(elem_id="png_info_items")
    hub_repo = gr.State(None)

    def describe_parameters(text: str, first_line: str) -> tuple[str, gr.Button, str | None]:
        pasted = paste_parameters(parse_infotext(text), store) if text else None
        repo = pasted.model_status.hub_repo_id if pasted else None
        button = gr.Button(f"⬇ Download {repo} from the Hub", visible=True) if repo else gr.Button(visible=False)
        return model_markdown(first_line, pasted), button, repo

    def png_info(image: str | None):
        """Read the generation parameters and the other text metadata of an image file."""
        if not image:
            return "", "", "", gr.Button(visible=False), None
        try:
            with Image.open(image) as opened:
                meta = read_image_metadata(opened)
        except (OSError, ValueError) as exc:  # not an image, or a truncated one
            raise gr.Error(f"Cannot read this file as an image ({exc})", title="PNG Info") from exc
        text = meta.parameters or ""
        return (text, items_markdown(meta.items), *describe_parameters(text, source_line(meta)))

    def download_model(repo_id: str | None, text: str, progress: gr.Progress = gr.Progress()):
        """Download the Hub repo the image names, then look its model up again."""
        if not repo_id:
            raise gr.Error("This image names no Hub repo", title="Cannot download")
        run_job(lambda report: store.download(repo_id, report), progress, error_title="Cannot download")
        message, button, repo = describe_parameters(text, f"Downloaded {_escape(repo_id)}.")
        return message, button, repo, gr.Dropdown(choices=checkpoint_choices(store.checkpoints()))

    image.change(png_info, [image], [parameters, items, model, download, hub_repo], api_name="png_info")
    download.click(download_model, [hub_repo, parameters], [model, download, hub_repo, bar.dropdown],
                   api_name="png_info_download")
    return PngInfoTab(image, parameters, send, send_img2img, send_inpaint, send_extras)
