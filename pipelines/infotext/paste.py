"""A1111's "paste": the values of a parsed infotext put onto txt2img request fields.

The mapping follows A1111's ``PasteField`` labels::

    Prompt -> prompt                 Negative prompt -> negative_prompt
    Steps -> steps                   CFG scale -> cfg_scale
    Seed -> seed                     Size-1 / Size-2 -> width / height
    Batch size -> batch_size         Model hash / Model -> model (an installed checkpoint)
    Sampler (+ the pre-1.9 "DPM++ 2M Karras" split) and Schedule type -> sampler_name / scheduler
    Denoising strength and the Hires keys -> hires (see :mod:`pipelines.infotext.paste_hires`)
    Refiner / Refiner switch at -> refiner (see :mod:`pipelines.infotext.paste_refiner`)
    Clip skip -> clip_skip           Emphasis -> emphasis (A1111 settings, applied to the job)
    VAE Decoder / VAE Encoder -> sd_vae_decode_method / sd_vae_encode_method (Atelier's: TAESD; Full when missing)
    VAE / VAE hash -> sd_vae (an installed VAE; A1111's SD VAE setting; see :mod:`pipelines.infotext.vae_match`)
    Variation seed / Variation seed strength / Seed resize from-1, -2 -> subseed / subseed_strength /
    seed_resize_from_w, _h (strength 0 and no resize when the image names none: A1111 unticks "Extra")

A key the infotext lacks leaves the field as it is. A value Atelier cannot use is
skipped with a note, never an error. The defaults A1111 inserts for missing keys
are applied here, where they change the request: "Schedule type" is Automatic
(except for A1111/Forge images from before 1.9, see :func:`schedule_for`),
"Clip skip" is 1, "Emphasis" is Original, and "RNG" is GPU for A1111 and Forge images.
``TI hashes`` need nothing: an embedding is used by its name in the prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from pipelines import samplers
from pipelines.errors import ValidationError
from pipelines.infotext.model_match import ModelMatch, match_checkpoint, match_loras
from pipelines.infotext.paste_hires import paste_hires
from pipelines.infotext.paste_refiner import paste_refiner
from pipelines.infotext.vae_match import match_vae
from pipelines.requests import Img2ImgRequest, Txt2ImgRequest

if TYPE_CHECKING:
    from pipelines.models.store import ModelStore

_PROMPT_KEYS = ("Prompt", "Negative prompt")
_A1111_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
# Keys that change the image but that Atelier's txt2img cannot apply yet.
# (The hires keys and "Denoising strength" are applied by pipelines.infotext.paste_hires.)
NOT_APPLIED = ("Hires checkpoint", "First pass size", "ENSD", "Eta", "Eta DDIM", "Tiling",
               "Face restoration", "Token merging ratio", "Distilled CFG Scale", "Noise multiplier", "Module 1")
_DEFAULT_VALUES = {"Beta schedule alpha": "0.6", "Beta schedule beta": "0.6"}
# Settings an infotext carries, with the value A1111 assumes when the key is missing.
_SETTINGS = (("Clip skip", "clip_skip", "1"), ("Emphasis", "emphasis", "Original"),
             ("VAE Decoder", "sd_vae_decode_method", "Full"), ("VAE Encoder", "sd_vae_encode_method", "Full"))


@dataclass(frozen=True)
class PastedParameters:
    """Request fields an infotext sets, the model it names, and what could not be used."""

    fields: dict[str, Any]  # Txt2ImgRequest field name -> value
    model_status: ModelMatch = field(default_factory=lambda: ModelMatch(False))
    loras: tuple[ModelMatch, ...] = ()
    notes: tuple[str, ...] = ()  # skipped values and settings Atelier does not apply

    @property
    def has_parameters(self) -> bool:
        """More than a prompt: the text had a parameters line."""
        return any(name not in ("prompt", "negative_prompt") for name in self.fields) or bool(self.notes)

    def messages(self) -> list[str]:
        """Everything the user should read, the model first."""
        lines = [self.model_status.message] if self.model_status.message else []
        return lines + [m.message for m in self.loras] + list(self.notes)


def writer(params: Mapping[str, str]) -> str:
    """Which program wrote the infotext: "SD.Next", "Fooocus", "Atelier", "Forge" or "A1111"."""
    version = params.get("Version", "").strip()
    if params.get("App", "").strip().lower() == "sd.next":
        return "SD.Next"
    for name in ("Fooocus", "Atelier"):
        if version.startswith(name):
            return name
    return "Forge" if re.match(r"^f\d", version) else "A1111"


def a1111_version(params: Mapping[str, str]) -> tuple[int, int, int] | None:
    """The A1111 version an A1111 or Forge image names (Forge: ``f2.0.1v1.10.1-...``)."""
    if writer(params) not in ("A1111", "Forge"):
        return None
    match = _A1111_VERSION.search(params.get("Version", ""))
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _to_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if not number.is_integer():
            raise ValueError(f"{text!r} is not a whole number") from None
        return int(number)


_SIMPLE: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("Prompt", "prompt", str),
    ("Negative prompt", "negative_prompt", str),
    ("Steps", "steps", _to_int),
    ("CFG scale", "cfg_scale", float),
    ("Seed", "seed", _to_int),
    ("Size-1", "width", _to_int),
    ("Size-2", "height", _to_int),
    ("Batch size", "batch_size", _to_int),
    ("Variation seed", "subseed", _to_int),
    ("Variation seed strength", "subseed_strength", float),
    ("Seed resize from-1", "seed_resize_from_w", _to_int),
    ("Seed resize from-2", "seed_resize_from_h", _to_int),
)


def _checked(name: str, value: Any) -> None:
    """Raise the request's own ValidationError if ``value`` cannot go in field ``name``."""
    replace(Txt2ImgRequest(), **{name: value}).validate()


def schedule_for(params: Mapping[str, str], spec: samplers.SamplerSpec, legacy: str | None,
                 notes: list[str]) -> str:
    """The schedule label to paste with sampler ``spec``.

    ``Schedule type`` when given; else the suffix of a pre-1.9 name ("DPM++ 2M Karras");
    else Fooocus's ``Scheduler``. Without any, A1111 pastes Automatic, which since 1.9
    means Karras for DPM++ 2M; but an image made before 1.9 with plain "DPM++ 2M" used
    the sampler's plain (uniform) schedule, so that is what reproduces it.
    """
    named = params.get("Schedule type", "").strip()
    if named:
        schedule = samplers.find_schedule(named)
        if schedule is None:
            notes.append(f"Schedule type {named!r} is not available in Atelier; using Automatic.")
            return "Automatic"
        return schedule.label
    if legacy:
        return legacy
    fooocus = samplers.find_schedule(params.get("Scheduler", ""))
    if fooocus is not None:
        return fooocus.label
    version = a1111_version(params)
    if version is not None and version < (1, 9, 0):
        return "Uniform"
    return "Automatic"


def _paste_sampler(params: Mapping[str, str], fields: dict[str, Any], notes: list[str]) -> None:
    raw = params.get("Sampler", "").strip()
    if not raw:
        return
    base, legacy = samplers.split_legacy_name(raw)
    spec = samplers.find_sampler(base)
    if spec is None:
        notes.append(f"Sampler {raw!r} is not available in Atelier; the current sampler is kept.")
        return
    schedule = schedule_for(params, spec, legacy, notes)
    try:
        samplers.resolve(spec.name, schedule)
    except ValidationError as exc:
        notes.append(f"{exc.message}; using Automatic.")
        schedule = "Automatic"
    fields["sampler_name"], fields["scheduler"] = spec.name, schedule


def _paste_value(label: str, raw: str, name: str, convert: Callable[[str], Any], fields: dict[str, Any],
                 notes: list[str]) -> None:
    """``fields[name]`` from the text ``raw`` when the request accepts it, else a note saying why not."""
    try:
        value = convert(raw)
        _checked(name, value)
    except (ValueError, ValidationError) as exc:
        reason = exc.message if isinstance(exc, ValidationError) else str(exc)
        notes.append(f"{_SHOWN.get(label, label)} {raw!r} skipped: {reason}.")
        return
    fields[name] = value


def _paste_settings(params: Mapping[str, str], fields: dict[str, Any], notes: list[str]) -> None:
    """Clip skip and Emphasis: the image's value, or A1111's default when the key is missing."""
    for label, name, default in _SETTINGS:
        _paste_value(label, params.get(label, default).strip(), name, _to_int if name == "clip_skip" else str,
                     fields, notes)


def _civitai_model_hash(params: Mapping[str, str]) -> str | None:
    """Civitai adds ``Hashes: {"model": "<hash10>", ...}`` to images it serves."""
    try:
        hashes = json.loads(params.get("Hashes", ""))
    except ValueError:
        return None
    value = hashes.get("model") if isinstance(hashes, dict) else None
    return value if isinstance(value, str) else None


def _unapplied_notes(params: Mapping[str, str]) -> list[str]:
    shown = [f"{key}: {params[key][:60]}" for key in NOT_APPLIED if params.get(key)]
    shown += [f"{key}: {params[key]}" for key, default in _DEFAULT_VALUES.items()
              if params.get(key, default).strip() != default]
    notes = [f"Not applied (Atelier's txt2img does not support these yet): {', '.join(shown)}."] if shown else []
    rng = params.get("RNG", "GPU" if writer(params) in ("A1111", "Forge") else "")
    if rng and rng.upper() != "CPU":
        notes.append(f"The image's noise came from the {rng} (RNG: {rng}); Atelier draws it on the CPU, "
                     "so the image will not be the same.")
    return notes

# How a key is named in a note ("Width", not "Size-1").
_SHOWN = {"Size-1": "Width", "Size-2": "Height", "Seed resize from-1": "Seed resize from width",
          "Seed resize from-2": "Seed resize from height"}


def _variation_off_unless_named(params: Mapping[str, str], fields: dict[str, Any]) -> None:
    """No variation strength (no seed resize) when the image names none, so the pasted recipe makes the same
    image whatever the form held: A1111's paste unticks the seed "Extra" then."""
    if "Variation seed strength" not in params:
        fields.setdefault("subseed_strength", 0.0)
    if "Seed resize from-1" not in params or "Seed resize from-2" not in params:
        fields.setdefault("seed_resize_from_w", 0)
        fields.setdefault("seed_resize_from_h", 0)


def paste_parameters(params: Mapping[str, str], store: ModelStore | None = None) -> PastedParameters:
    """Map a :func:`~pipelines.infotext.codec.parse_infotext` result onto txt2img request fields.

    With a ``store``, the checkpoint and LoRAs the image names are looked up.
    """
    fields: dict[str, Any] = {}
    notes: list[str] = []
    has_params_line = any(key not in _PROMPT_KEYS for key in params)
    for label, name, convert in _SIMPLE:
        if label in params:
            raw = params[label] if name in ("prompt", "negative_prompt") else params[label].strip()
            _paste_value(label, raw, name, convert, fields, notes)
    if not has_params_line:
        return PastedParameters(fields)
    _paste_sampler(params, fields, notes)
    _paste_settings(params, fields, notes)
    paste_hires(params, fields, notes)  # txt2img's hires fix: on with its values, or off
    paste_refiner(params, fields, notes, store)  # txt2img's SDXL refiner: on with its values, or off
    _variation_off_unless_named(params, fields)
    notes += _unapplied_notes(params)
    if store is None:
        if params.get("VAE"):
            notes.append(f"VAE {params['VAE']} not applied (no installed models to look it up in).")
        return PastedParameters(fields, notes=tuple(notes))
    vae = match_vae(store, params)
    if vae.found:
        fields["sd_vae"] = vae.name
    elif vae.message:
        notes.append(vae.message)
    status = match_checkpoint(store, params.get("Model"), params.get("Model hash") or _civitai_model_hash(params))
    if status.found:
        fields["model"] = status.name
    loras = match_loras(store.settings.models_dir / "Lora", params)
    return PastedParameters(fields, status, loras, tuple(notes))


def to_txt2img_request(pasted: PastedParameters, current: Txt2ImgRequest) -> Txt2ImgRequest:
    """``current`` with every field the infotext names replaced; the others kept."""
    return replace(current, **pasted.fields)


# img2img (and inpaint): the same mapping plus A1111's "Denoising strength" -> denoising_strength.
_IMG2IMG_FIELDS = frozenset(f.name for f in fields(Img2ImgRequest))


def paste_img2img_parameters(params: Mapping[str, str], store: ModelStore | None = None) -> PastedParameters:
    """:func:`paste_parameters` for the img2img form: "Denoising strength" is a field of its own there."""
    pasted = paste_parameters({k: v for k, v in params.items() if k != "Denoising strength"}, store)
    if pasted.fields.get("refiner") is not None:  # the SDXL refiner is txt2img's
        pasted = replace(pasted, notes=(*pasted.notes, "Refiner not applied: img2img runs without one (txt2img only)."))
    raw = params.get("Denoising strength", "").strip()
    if not raw:
        return pasted
    try:
        strength = float(raw)
    except ValueError:
        strength = -1.0
    if not 0 <= strength <= 1:
        return replace(pasted, notes=(*pasted.notes, f"Denoising strength {raw!r} skipped: must be between 0 and 1."))
    return replace(pasted, fields={**pasted.fields, "denoising_strength": strength})


def to_img2img_request(pasted: PastedParameters, current: Img2ImgRequest) -> Img2ImgRequest:
    """``current`` with every img2img field the infotext names replaced; the image and the others kept."""
    return replace(current, **{k: v for k, v in pasted.fields.items() if k in _IMG2IMG_FIELDS})
