"""Imagine: Midjourney's prompt -> grid of four flow, built on the ordinary requests.

A prompt makes a batch (4 by default) shown as its A1111 grid; on each image of it, **U** upscales it
(the Upscale tab's path: extras at ``factor``, 2x by default, with the default upscaler), **V** varies it
(Vary subtle/strong: img2img of that image into a new batch), and **reroll** makes the whole batch again
with new random seeds. Every action starts from the image file and the infotext it carries, so the UI,
the REST API and the CLI build the same requests here and the engine runs them like any other job.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipelines.actions import UPSCALE_FACTOR, vary_request
from pipelines.errors import ValidationError
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.paste import paste_parameters, to_txt2img_request
from pipelines.requests import ExtrasRequest, GenerationRequest, Txt2ImgRequest

if TYPE_CHECKING:
    from pipelines.models.store import ModelStore

ACTIONS = ("upscale", "vary_subtle", "vary_strong", "reroll")
DEFAULT_BATCH = 4


def imagine_request(base: Txt2ImgRequest, batch_size: int = DEFAULT_BATCH) -> Txt2ImgRequest:
    """``base`` (the txt2img settings) as one batch of ``batch_size`` images, saved with their grid."""
    return replace(base, batch_size=batch_size, n_iter=1, save_images=True)


def reroll_request(infotext: str, *, batch_size: int = DEFAULT_BATCH, store: ModelStore | None = None,
                   base: Txt2ImgRequest | None = None) -> Txt2ImgRequest:
    """The prompt and settings an image's infotext names, as a new batch with a random seed."""
    if not infotext.strip():
        raise ValidationError("source", "the image carries no generation parameters to reroll")
    pasted = paste_parameters(parse_infotext(infotext), store)
    request = to_txt2img_request(pasted, base or Txt2ImgRequest())
    return imagine_request(replace(request, seed=-1, subseed=-1), batch_size)


def action_request(action: str, image: Any, infotext: str, *, upscaler: str, store: ModelStore | None = None,
                   factor: float = UPSCALE_FACTOR,
                   batch_size: int = DEFAULT_BATCH) -> GenerationRequest | ExtrasRequest:
    """The request for ``action`` (one of :data:`ACTIONS`) on ``image`` with the ``infotext`` it carries."""
    if action not in ACTIONS:
        raise ValidationError("action", f"must be one of {', '.join(ACTIONS)}, got {action!r}")
    if action == "upscale":
        return ExtrasRequest(images=(image,), upscaling_resize=factor, upscaler_1=upscaler)
    if action == "reroll":
        return reroll_request(infotext, batch_size=batch_size, store=store)
    varied = vary_request(image, action.removeprefix("vary_"), infotext=infotext, store=store)
    return replace(varied, batch_size=batch_size, save_images=True)
