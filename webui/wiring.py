"""Cross-tab wiring: the result actions under each gallery, PNG Info's and History's send-to buttons.

Tabs build themselves and return what others need; this module connects them, so
``app.py`` stays a list of tabs. Every event switches tabs through the page's
``gr.Tabs`` (ids "txt2img", "img2img", "extras", "png_info", ...).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import gradio as gr

from pipelines.actions import UPSCALE_FACTOR, img2img_from_image
from pipelines.context import AppContext
from webui.components import result_actions
from webui.components.quick_settings import QuickSettings
from webui.components.result_actions import ResultActions, read_image, selected_path
from webui.components.style_panel import styles_from_prompt
from webui.queueing import device_events
from webui.tabs import img2img_variation
from webui.tabs.extras import ExtrasTab
from webui.tabs.img2img import Img2ImgTab
from webui.tabs.img2img_form import request_from_form
from webui.tabs.png_info import PngInfoTab
from webui.tabs.txt2img import Txt2ImgForm

GALLERY_ACTIONS = {  # which buttons sit under which gallery
    "txt2img": ("vary_subtle", "vary_strong", "vary_embedding", "upscale", "send_img2img", "send_inpaint",
                "send_extras", "reuse_seed"),
    "img2img": ("vary_subtle", "vary_strong", "vary_embedding", "upscale", "send_img2img", "send_inpaint",
                "send_extras", "reuse_seed"),
    "extras": ("send_img2img", "send_inpaint"),
}


@dataclass(frozen=True)
class Pages:
    """The page's tab switcher, the tabs the actions connect, and the quick settings a paste sets."""

    tabs: gr.Tabs
    txt2img: Txt2ImgForm
    txt2img_gallery: gr.Gallery
    txt2img_info: gr.Textbox
    img2img: Img2ImgTab
    extras: ExtrasTab
    png_info: PngInfoTab
    quick: QuickSettings


def _extras_targets(pages: Pages) -> list[Any]:
    form = pages.extras.form
    return [pages.tabs, pages.extras.source_tabs, form.source, form.image]


def _to_extras(pages: Pages, path: str) -> dict[Any, Any]:
    """The Upscale tab showing ``path`` in its Single image sub-tab."""
    form = pages.extras.form
    return {pages.tabs: gr.Tabs(selected="extras"), pages.extras.source_tabs: gr.Tabs(selected="single"),
            form.source: "Single image", form.image: path}


def wire_extras_actions(ctx: AppContext, pages: Pages, row: ResultActions) -> None:
    """Send to extras, and Upscale: Send to extras at 2x with the default upscaler, then (if that worked) run it."""
    form, extras = pages.extras.form, pages.extras

    def send_to_extras(items: list | None, index: int) -> dict[Any, Any]:
        """Show the selected image in the Upscale tab."""
        return _to_extras(pages, selected_path(items, index))

    def upscale_selected(items: list | None, index: int) -> dict[Any, Any]:
        """Put the selected image into the Upscale tab at 2x with the default upscaler (then it runs)."""
        return {**_to_extras(pages, selected_path(items, index)), form.resize_mode: 0,
                form.upscaling_resize: UPSCALE_FACTOR, form.upscaler_1: ctx.upscalers.default_name(),
                form.upscaler_2: "None", form.extras_upscaler_2_visibility: 0}

    if "send_extras" in row.buttons:
        row.buttons["send_extras"].click(send_to_extras, [row.gallery, row.selected], _extras_targets(pages),
                                         api_name=f"{row.source}_send_to_extras", queue=False)
    if "upscale" in row.buttons:
        targets = [*_extras_targets(pages), form.resize_mode, form.upscaling_resize, form.upscaler_1,
                   form.upscaler_2, form.extras_upscaler_2_visibility]
        row.buttons["upscale"].click(upscale_selected, [row.gallery, row.selected], targets,
                                     api_name=f"{row.source}_upscale", queue=False).success(
            extras.run, None, [extras.gallery, extras.info], inputs_kwargs=form.named(), api_name=False,
            **device_events(ctx))


def to_img2img(ctx: AppContext, pages: Pages, path: str, sub_tab: str, form_values: dict[str, Any]) -> dict:
    """The img2img tab showing the image at ``path`` with the settings its infotext names.

    Fields the infotext does not name keep the form's current values (A1111's paste); a value
    beyond a slider's range is kept out with a note, a missing model with a warning. Clip skip and
    Emphasis go to the quick settings (and are saved), the styles the prompts carry are selected.
    The outputs are :func:`img2img_targets`.
    """
    image, infotext = read_image(path)
    current = request_from_form(init_image=None, **form_values)
    request, pasted = img2img_from_image(image, infotext, ctx.store, base=current)
    if "prompt" in pasted.fields:
        request = styles_from_prompt(ctx.styles, request)
    if pasted.model_status.missing:
        gr.Warning(pasted.model_status.message, title="Model not installed")
    notes = list(pasted.notes)
    form = pages.img2img.form
    for name in ("width", "height"):
        slider = getattr(form, name)
        if getattr(request, name) > slider.maximum:
            notes.append(f"The image is {getattr(request, name)} px; {slider.label} is set to its maximum "
                         f"{slider.maximum:g}, so img2img resizes it.")
            request = replace(request, **{name: int(slider.maximum)})
    if notes:
        gr.Info("\n".join(notes), title="Parameters read")
    # The form shows the file itself, so the image reaches img2img without being re-encoded.
    shown = {pages.tabs: gr.Tabs(selected="img2img"), **pages.img2img.fill(replace(request, init_image=path), sub_tab)}
    if pages.img2img.variation is not None:  # an image-embedding variation: its model and unCLIP noise level too
        shown.update(img2img_variation.paste(ctx, pages.img2img.variation, infotext))
    return {**shown, **pages.quick.paste(request)} if pasted.has_parameters else shown


def img2img_targets(pages: Pages) -> list[Any]:
    """The outputs of an event that calls :func:`to_img2img`."""
    return [pages.tabs, *pages.img2img.fill_targets(), *pages.quick.components()]


def wire_img2img_actions(ctx: AppContext, pages: Pages, row: ResultActions) -> None:
    """Send to img2img / Send to inpaint: the selected image with its prompt and settings."""
    targets = img2img_targets(pages)
    for sub_tab in ("img2img", "inpaint"):
        button = row.buttons.get(f"send_{sub_tab}")
        if button is None:
            continue

        def send(items: list | None, index: int, _sub_tab: str = sub_tab, **form_values: Any) -> dict:
            return to_img2img(ctx, pages, selected_path(items, index), _sub_tab, form_values)

        send.__doc__ = f"Show the selected image and its settings in img2img's {sub_tab} sub-tab."
        button.click(send, [row.gallery, row.selected], targets, inputs_kwargs=pages.img2img.form.named(),
                     api_name=f"{row.source}_send_to_{sub_tab}", queue=False)


class FileSender(Protocol):
    """A tab showing one image file with its parameters and the Send to buttons (PNG Info, History)."""

    image: Any  # the component holding the file's path
    send_to_img2img: gr.Button
    send_to_inpaint: gr.Button
    send_to_extras: gr.Button


def wire_file_senders(ctx: AppContext, pages: Pages, sender: FileSender, source: str, what: str, missing: str) -> None:
    """``sender``'s Send to img2img / inpaint / extras: the file itself (not re-encoded) and its parameters.
    Events ``{source}_send_to_<tab>``; ``what`` names the image in their descriptions, ``missing`` is the
    message when there is none."""

    def to_extras(image: str | None) -> dict[Any, Any]:
        if not image:
            raise gr.Error(missing, title="No image")
        return _to_extras(pages, image)

    to_extras.__doc__ = f"Show {what} in the Upscale tab."
    sender.send_to_extras.click(to_extras, [sender.image], _extras_targets(pages), api_name=f"{source}_send_to_extras",
                                queue=False)
    for sub_tab, button in (("img2img", sender.send_to_img2img), ("inpaint", sender.send_to_inpaint)):

        def send(image: str | None, _sub_tab: str = sub_tab, **form_values: Any) -> dict:
            if not image:
                raise gr.Error(missing, title="No image")
            return to_img2img(ctx, pages, image, _sub_tab, form_values)

        send.__doc__ = f"Show {what}, with its parameters, in img2img's {sub_tab} sub-tab."
        button.click(send, [sender.image], img2img_targets(pages), inputs_kwargs=pages.img2img.form.named(),
                     api_name=f"{source}_send_to_{sub_tab}", queue=False)


def wire_png_info(ctx: AppContext, pages: Pages) -> None:
    """PNG Info's Send to img2img / inpaint / extras: the dropped file itself (not re-encoded) and its parameters."""
    wire_file_senders(ctx, pages, pages.png_info, "png_info", "the image dropped into PNG Info",
                      "Drop an image into PNG Info first.")


def wire(ctx: AppContext, pages: Pages) -> dict[str, ResultActions]:
    """Add the action rows under the result galleries and connect them; call at the page's top level."""
    sources = {"txt2img": (pages.txt2img_gallery, pages.txt2img_info, pages.txt2img.seed),
               "img2img": (pages.img2img.gallery, pages.img2img.info, pages.img2img.form.seed),
               "extras": (pages.extras.gallery, pages.extras.info, None)}
    rows = {}
    for source, (gallery, info, seed) in sources.items():
        row = rows[source] = result_actions.add_row(gallery, source, GALLERY_ACTIONS[source])
        result_actions.wire_vary_and_seed(ctx, row, info, seed)
        wire_extras_actions(ctx, pages, row)
        wire_img2img_actions(ctx, pages, row)
    wire_png_info(ctx, pages)
    return rows
