"""Generation over the API: A1111's request body -> a core request, the result -> A1111's response.

The body -> request steps are shared by txt2img and img2img (:mod:`webui.api.img2img` adds the image).
Order as in A1111's ``text2imgapi``: apply ``infotext`` to the fields the request leaves unset
(and its Clip skip / Emphasis to ``override_settings``), refuse what Atelier cannot do yet, resolve
the sampler (legacy ``sampler_index`` and "DPM++ 2M Karras"-style names included; unknown -> 400
"Sampler not found"), check ``override_settings``, then build the core request, whose
``validate()`` names any bad field. ``styles`` are applied by the engine (unknown names -> 422
naming ``styles``); clip skip, emphasis and the SD VAE come from the options, overridden per request by
``override_settings`` (``CLIP_stop_at_last_layers``, ``emphasis``, ``sd_vae``: an unknown VAE -> 422 naming
``override_settings.sd_vae``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, fields
from typing import Any, TypeVar

from pipelines import samplers
from pipelines.errors import ValidationError
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.paste import paste_parameters
from pipelines.models.store import ModelStore
from pipelines.options import OptionsStore
from pipelines.requests import GenerationRequest, Txt2ImgRequest
from pipelines.requests.hires import HiresFix
from pipelines.requests.refiner import DEFAULT_SWITCH_AT, Refiner
from pipelines.results import GenerationResult
from webui.api.errors import ApiError
from webui.api.images import encode_png
from webui.api.models import ProcessingAPI, TextToImageResponse

log = logging.getLogger(__name__)
Body = TypeVar("Body", bound=ProcessingAPI)
Request = TypeVar("Request", bound=GenerationRequest)
Response = TypeVar("Response", bound=TextToImageResponse)
API_DEFAULT_SAMPLER = "Euler"  # A1111's API: sampler_index defaults to "Euler" when sampler_name is empty
# Infotext keys that are settings in A1111 (``OptionInfo(infotext=...)``): pasted field -> option key.
INFOTEXT_SETTINGS = (("clip_skip", "CLIP_stop_at_last_layers"), ("emphasis", "emphasis"), ("sd_vae", "sd_vae"),
                     ("sd_vae_decode_method", "sd_vae_decode_method"), ("sd_vae_encode_method", "sd_vae_encode_method"))


def apply_infotext(body: Body, store: ModelStore | None = None) -> Body:
    """Fill the fields the client did not send from ``body.infotext``.

    The mapping is the UI's "Read parameters" one (:func:`pipelines.infotext.paste.paste_parameters`):
    legacy sampler names, the schedule of pre-1.9 images, and values Atelier cannot use are
    skipped (and logged) rather than refused. As with A1111's default
    (``disable_weights_auto_swap``), the model the infotext names is not loaded. Clip skip and
    Emphasis are settings in A1111: they go into ``override_settings`` (as
    ``CLIP_stop_at_last_layers`` / ``emphasis``, with A1111's defaults 1 / Original when the
    infotext has a parameters line without them) unless the client set those keys itself.
    """
    if not body.infotext:
        return body
    pasted = paste_parameters(parse_infotext(body.infotext), store)  # the store finds the infotext's VAE
    for note in pasted.notes:
        log.info("infotext: %s", note)
    updates = {name: value for name, value in pasted.fields.items()
               if name in type(body).model_fields and name not in body.model_fields_set}
    refiner = pasted.fields.get("refiner")
    if refiner is not None:  # A1111's flat refiner fields
        flat = {"refiner_checkpoint": refiner.checkpoint, "refiner_switch_at": refiner.switch_at}
        updates.update({name: value for name, value in flat.items() if name not in body.model_fields_set})
    hires = pasted.fields.get("hires")
    if hires is not None and "enable_hr" in type(body).model_fields:  # the flat A1111 fields of its hires fix
        flat = {"enable_hr": True, **asdict(hires)}
        updates.update({name: value for name, value in flat.items() if name not in body.model_fields_set})
    settings = {key: pasted.fields[name] for name, key in INFOTEXT_SETTINGS if name in pasted.fields}
    if settings:
        updates["override_settings"] = {**settings, **(body.override_settings or {})}  # the client's keys win
    return body.model_copy(update=updates)


def refuse_unsupported(body: ProcessingAPI) -> None:
    """Fields that ask for something Atelier cannot do yet get a 422 naming them, never a silent no-op."""
    checks = (
        ("restore_faces", body.restore_faces, "face restoration is not available yet"),
        ("tiling", body.tiling, "tiling is not available yet"),
        ("firstpass_image", getattr(body, "firstpass_image", None), "hires fix of a given image is not available yet"),
    )
    for field, asked, message in checks:
        if asked:
            raise ValidationError(field, message)


def _sampler(body: ProcessingAPI) -> tuple[str, str]:
    field = "sampler_name" if body.sampler_name else "sampler_index"
    name = body.sampler_name or body.sampler_index or API_DEFAULT_SAMPLER
    scheduler = body.scheduler or "Automatic"
    try:
        samplers.resolve(name, scheduler)
    except ValidationError as exc:
        if exc.field != "sampler_name":
            raise
        raise ApiError(400, f"Sampler not found: {name!r}", error="ValidationError",
                       errors=f"{field}: {exc.message}") from exc
    return name, scheduler


def _value(body: ProcessingAPI, field: str) -> Any:
    """The field's value, or its A1111 default when the client sent null."""
    value = getattr(body, field)
    return type(body).model_fields[field].get_default(call_default_factory=True) if value is None else value


def core_request(body: ProcessingAPI, options: OptionsStore, cls: type[Request], **mode_fields: Any) -> Request:
    """The core request of class ``cls`` for ``body`` (after :func:`apply_infotext`), with the shared
    fields converted and the mode's own ones added; raises naming the bad field."""
    refuse_unsupported(body)
    sampler_name, scheduler = _sampler(body)
    overrides = options.check(body.override_settings or {}, prefix="override_settings.")
    model = overrides.get("sd_model_checkpoint")
    prompt_settings = options.prompt_settings(overrides)  # clip_skip, emphasis
    request = cls(
        prompt=_value(body, "prompt"),
        negative_prompt=_value(body, "negative_prompt"),
        sampler_name=sampler_name,
        scheduler=scheduler,
        steps=_value(body, "steps"),
        cfg_scale=float(_value(body, "cfg_scale")),
        width=_value(body, "width"),
        height=_value(body, "height"),
        seed=_value(body, "seed"),
        batch_size=_value(body, "batch_size"),
        n_iter=_value(body, "n_iter"),
        model=model or None,
        save_images=bool(_value(body, "save_images")),
        clip_skip=prompt_settings["clip_skip"],
        emphasis=prompt_settings["emphasis"],
        sd_vae=options.sd_vae(overrides),
        **options.decoder_settings(overrides),
        **options.grid_settings(overrides),
        styles=tuple(body.styles or ()),
        subseed=_value(body, "subseed"),
        subseed_strength=float(_value(body, "subseed_strength")),
        seed_resize_from_w=_value(body, "seed_resize_from_w"),
        seed_resize_from_h=_value(body, "seed_resize_from_h"),
        **mode_fields,
    )
    request.validate()
    return request


HIRES_FIELDS = tuple(f.name for f in fields(HiresFix))  # named as A1111's flat API fields


def hires_fix(body: ProcessingAPI) -> HiresFix | None:
    """``enable_hr`` and the ``hr_*`` fields (+ ``denoising_strength``) as the core's :class:`HiresFix`.

    A field sent as null takes HiresFix's default: ``hr_upscaler`` "Latent" (A1111's default latent
    mode), ``denoising_strength`` 0.7 (A1111's UI default; its API has none, see the compat notes).
    """
    if not getattr(body, "enable_hr", False):
        return None
    if body.hr_checkpoint_name not in (None, "", "Use same checkpoint"):
        raise ValidationError("hr_checkpoint_name", "a different checkpoint for the second pass is not available "
                              "yet; send null")
    return HiresFix(**{name: getattr(body, name) for name in HIRES_FIELDS if getattr(body, name) is not None})


def refiner_of(body: ProcessingAPI, mode: str = "txt2img") -> Refiner | None:
    """``refiner_checkpoint`` (A1111: null, "" or "None" for none) and ``refiner_switch_at`` (null: 0.8) as the
    core's :class:`Refiner`; whether the checkpoint exists and fits is checked when the job runs (422 naming it)."""
    if body.refiner_checkpoint in (None, "", "None"):
        return None
    if mode != "txt2img":
        raise ValidationError("refiner_checkpoint", f"the refiner is available in txt2img only, not {mode}; send null")
    switch_at = body.refiner_switch_at if body.refiner_switch_at is not None else DEFAULT_SWITCH_AT
    return Refiner(body.refiner_checkpoint, switch_at)


def to_core_request(body: ProcessingAPI, options: OptionsStore) -> Txt2ImgRequest:
    """The txt2img core request for ``body``; hires fix when ``enable_hr``, the SDXL refiner when
    ``refiner_checkpoint``."""
    return core_request(body, options, Txt2ImgRequest, hires=hires_fix(body), refiner=refiner_of(body))


def processed_info(body: ProcessingAPI, request: GenerationRequest, result: GenerationResult,
                   job_timestamp: str) -> dict[str, Any]:
    """A1111's ``Processed.js()`` keys that Atelier knows, from the core's result.

    As in A1111, ``prompt``/``negative_prompt`` are the request's and ``all_prompts``/``all_negative_prompts``
    the ones the images were made from (with ``styles`` applied)."""
    core = result.info
    count = len(result.images)
    subseed = core.get("subseed", _value(body, "subseed"))
    return {
        "prompt": request.prompt,
        "all_prompts": [core.get("prompt", request.prompt)] * count,
        "negative_prompt": request.negative_prompt,
        "all_negative_prompts": [core.get("negative_prompt", request.negative_prompt)] * count,
        "seed": core.get("seed", request.seed),
        "all_seeds": core.get("all_seeds", [img.seed for img in result.images]),
        "subseed": subseed,
        "all_subseeds": core.get("all_subseeds", [subseed] * count),
        "subseed_strength": request.subseed_strength,
        "width": core.get("width", request.width),  # an unconditional model draws at its own size
        "height": core.get("height", request.height),
        "sampler_name": core.get("sampler_name", request.sampler_name),
        "scheduler": core.get("scheduler", request.scheduler),
        "cfg_scale": request.cfg_scale,
        "steps": request.steps,
        "batch_size": request.batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": core.get("sd_model_name"),
        "sd_model_hash": core.get("sd_model_hash"),
        "sd_vae_name": core.get("sd_vae_name"),
        "sd_vae_hash": core.get("sd_vae_hash"),
        "seed_resize_from_w": request.seed_resize_from_w if request.variation.resize_from else -1,
        "seed_resize_from_h": request.seed_resize_from_h if request.variation.resize_from else -1,
        "denoising_strength": _denoising_strength(body, request),
        "extra_generation_params": _extra_generation_params(request),
        "index_of_first_image": core.get("index_of_first_image", 0),  # 1 when a script put its grid first
        "infotexts": [img.infotext for img in result.images],
        "styles": list(request.styles),
        "job_timestamp": job_timestamp,
        "clip_skip": request.clip_skip,
        "is_using_inpainting_conditioning": False,
        "version": core.get("version", ""),
        **({"notices": list(result.notices)} if result.notices else {}),  # e.g. a lower-memory retry (Atelier's)
    }


def _denoising_strength(body: ProcessingAPI, request: GenerationRequest) -> float | None:
    hires = getattr(request, "hires", None)
    return hires.denoising_strength if hires is not None else getattr(request, "denoising_strength",
                                                                      body.denoising_strength)


def _extra_generation_params(request: GenerationRequest) -> dict[str, Any]:
    """A1111's ``extra_generation_params``: the hires keys of the infotext, when hires fix ran; the refiner's
    switch point when it took over (its ``Refiner`` title is in the infotexts)."""
    params: dict[str, Any] = {}
    if getattr(request, "hires", None) is not None:
        params.update({k: v for k, v in request.hires.infotext_params(request).items() if v is not None})
    refiner = getattr(request, "refiner", None)
    if refiner is not None and refiner.active:
        params["Refiner switch at"] = refiner.switch_at
    return params


def generation_response(
        body: ProcessingAPI, request: GenerationRequest, result: GenerationResult, job_timestamp: str, *,
        response_cls: type[Response] = TextToImageResponse, parameters: dict[str, Any] | None = None) -> Response:
    """A1111's response: base64 PNGs (when ``send_images``), the body as ``parameters``, ``info`` as JSON."""
    images = [encode_png(img.image, img.infotext) for img in result.images] if _value(body, "send_images") else []
    info = processed_info(body, request, result, job_timestamp)
    parameters = body.model_dump() if parameters is None else parameters
    return response_cls(images=images, parameters=parameters, info=json.dumps(info))


def txt2img_response(body: ProcessingAPI, request: Txt2ImgRequest, result: GenerationResult,
                     job_timestamp: str) -> TextToImageResponse:
    return generation_response(body, request, result, job_timestamp)
