"""The tiny autoencoder (TAESD) of a job: A1111's "VAE type for decode / encode" (``sd_vae_decode_method``,
``sd_vae_encode_method``: Full or TAESD) and "Live preview method" (``show_progress_type``: Approx cheap,
TAESD or Full) resolved, with the TAESD that fits the checkpoint held through the model store for one job.

TAESD (``madebyollin/taesd``) fits SD 1.x and SD 2.x, TAESDXL (``madebyollin/taesdxl``) SDXL. A job that asks
for one that is not installed is refused naming the option, which TAESD it needs and where to put it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipelines.errors import ValidationError
from pipelines.models.architecture import Architecture
from pipelines.models.kinds import ModelType
from pipelines.models.loaded import LoadedModel
from pipelines.models.refs import ModelRecord
from pipelines.models.store import ModelStore
from pipelines.progress import ProgressFn, ignore_progress
from pipelines.requests.decoders import APPROX_CHEAP, DECODE_METHODS, FULL, PREVIEW_METHODS, TAESD, check_decoder_fields

log = logging.getLogger(__name__)

__all__ = ["APPROX_CHEAP", "DECODE_METHODS", "FULL", "PREVIEW_METHODS", "TAESD", "JobTaesd", "find_taesd", "held_taesd",
           "taesd_installed"]

DECODER_KEY = "VAE Decoder"  # infotext: the final decode ran on TAESD (A1111's key and values)
ENCODER_KEY = "VAE Encoder"  # infotext: img2img's init image was encoded with TAESD
_REPOS = {Architecture.SDXL: "madebyollin/taesdxl"}
_DEFAULT_REPO = "madebyollin/taesd"


def _wanted(architecture: Architecture | None) -> tuple[str, Architecture | None]:
    """The Hub repo of the TAESD a checkpoint needs, and the ``arch`` its record has (None: SD 1.x / 2.x)."""
    if architecture is Architecture.SDXL:
        return _REPOS[Architecture.SDXL], Architecture.SDXL
    return _DEFAULT_REPO, None


def find_taesd(store: ModelStore, architecture: Architecture | None) -> ModelRecord | None:
    """The installed TAESD for a checkpoint of ``architecture``: one named like the official repo first."""
    repo, arch = _wanted(architecture)
    usable = [r for r in store.records(ModelType.TAESD) if r.installed and not r.problem and r.arch is arch]
    official = repo.split("/")[1]
    usable.sort(key=lambda r: (r.name.lower().split("/")[-1] != official, r.name.lower()))
    return usable[0] if usable else None


def taesd_installed(store: ModelStore, architecture: Architecture | None) -> bool:
    return find_taesd(store, architecture) is not None


def missing_message(store: ModelStore, architecture: Architecture | None) -> str:
    repo, _ = _wanted(architecture)
    folder = store.registry.folders(ModelType.TAESD)[0]
    family = "SDXL" if architecture is Architecture.SDXL else "SD 1.x / SD 2.x"
    return (f"needs {repo.split('/')[1].upper()} for {family} models, which is not installed: install {repo} "
            f"(Models tab: search {repo.split('/')[1]}, Install), or put its diffusers folder (config.json and "
            f"weights) or a .safetensors file of its weights in {folder}")


@dataclass(frozen=True)
class JobTaesd:
    """What a job does with the tiny autoencoder (``vae`` None when it does not use one)."""

    vae: Any = None  # diffusers AutoencoderTiny
    decode: bool = False
    encode: bool = False
    preview: str = APPROX_CHEAP

    def infotext(self, mode: str) -> dict[str, str]:
        """``VAE Decoder: TAESD`` (and img2img's ``VAE Encoder: TAESD``), so a pasted image decodes the same way."""
        params = {DECODER_KEY: TAESD} if self.decode else {}
        if self.encode and mode == "img2img":
            params[ENCODER_KEY] = TAESD
        return params


@contextmanager
def held_taesd(store: ModelStore, request: Any, loaded: LoadedModel,
               on_progress: ProgressFn = ignore_progress) -> Iterator[JobTaesd]:
    """Resolve the request's decode, encode and preview methods; hold the checkpoint's TAESD while a method uses it."""
    decode = getattr(request, "sd_vae_decode_method", FULL)
    encode = getattr(request, "sd_vae_encode_method", FULL)
    preview = getattr(request, "show_progress_type", APPROX_CHEAP)
    check_decoder_fields(request)
    encodes = encode == TAESD and request.mode == "img2img"
    wanted = [field for field, on in (("sd_vae_decode_method", decode == TAESD), ("sd_vae_encode_method", encodes),
                                      ("show_progress_type", preview == TAESD)) if on]
    if not wanted:
        yield JobTaesd(preview=preview)
        return
    architecture = loaded.record.architecture
    record = find_taesd(store, architecture)
    if record is None:
        raise ValidationError(wanted[0], f"{TAESD} {missing_message(store, architecture)}")
    wanted_channels = loaded.pipeline.unet.config.out_channels
    with store.use(record, on_progress, model_type=ModelType.TAESD) as held:
        channels = held.model.config.latent_channels
        if channels != wanted_channels:
            raise ValidationError(wanted[0], f"TAESD {record.name!r} makes {channels}-channel latents, checkpoint "
                                  f"{loaded.record.name!r} works on {wanted_channels}")
        log.info("TAESD %s for %s (%s)", record.name, loaded.record.name, ", ".join(wanted))
        yield JobTaesd(held.model, decode=decode == TAESD, encode=encodes, preview=preview)
