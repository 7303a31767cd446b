"""The SD VAE of a job: A1111's ``sd_vae`` setting ("Automatic", "None" or a VAE's name) resolved, checked
against the checkpoint and held through the model store for one job.

- ``Automatic``: ``NAME.vae.safetensors`` beside checkpoint ``NAME`` when there is one, else the checkpoint's own;
- ``None``: the checkpoint's own VAE;
- a name: a file in ``models/VAE`` (or ``--vae-dir``), a diffusers VAE folder, a Hub VAE repo; found by file
  name (A1111 stores ``vae-ft-mse-840000-ema-pruned.safetensors``), name without extension, or hash prefix.

The cached checkpoint is never changed: the job runs on a pipeline view whose ``vae`` is the chosen one
(:func:`pipelines.modes.common.with_vae`), so the next job without it decodes with the checkpoint's own.
A VAE whose latents do not fit the checkpoint's UNet is refused naming ``sd_vae`` and both models.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipelines.errors import ModelNotFoundError, ValidationError
from pipelines.models.architecture import read_safetensors_shapes
from pipelines.models.identify import vae_latent_channels
from pipelines.models.kinds import ModelType
from pipelines.models.loaded import LoadedModel
from pipelines.models.refs import ModelRecord, SourceKind
from pipelines.models.scan import CHECKPOINT_VAE_TAG
from pipelines.models.store import ModelStore
from pipelines.progress import ProgressFn, ignore_progress

log = logging.getLogger(__name__)

__all__ = ["AUTOMATIC", "NO_VAE", "JobVae", "find_vae", "held_vae", "vae_beside", "vae_choices", "vae_title"]

AUTOMATIC = "Automatic"
NO_VAE = "None"
FIELD = "sd_vae"
_LEVEL = re.compile(r"(?:first_stage_model\.)?encoder\.down(?:_blocks)?\.(\d+)\.")
# Config keys that decide whether a single-file VAE loaded for one checkpoint fits another.
_SHAPE_KEYS = ("latent_channels", "block_out_channels", "layers_per_block", "norm_num_groups", "scaling_factor",
               "shift_factor")


def vae_title(record: ModelRecord) -> str:
    """The VAE's name as A1111 shows and stores it: a file's name with its extension, else the folder or repo."""
    if record.ref.kind is SourceKind.SINGLE_FILE and record.path is not None:
        return record.path.name
    return record.name


def vae_choices(store: ModelStore) -> list[str]:
    """The ``sd_vae`` values: Automatic, None, then every usable VAE's title."""
    return [AUTOMATIC, NO_VAE, *(vae_title(r) for r in store.records(ModelType.VAE) if r.installed and not r.problem)]


def find_vae(store: ModelStore, value: Any, *, field: str = FIELD) -> ModelRecord | None:
    """The VAE record ``value`` names (None for Automatic / None); a ValidationError naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be {AUTOMATIC!r}, {NO_VAE!r} or a VAE's name, got {value!r}")
    if value in (AUTOMATIC, NO_VAE):
        return None
    try:
        record = store.find(value, ModelType.VAE)
    except ModelNotFoundError as exc:
        raise ValidationError(field, f"{exc} (or {AUTOMATIC!r} / {NO_VAE!r})") from exc
    if record.problem:
        raise ValidationError(field, record.problem)
    return record


def check_vae_name(store: ModelStore, value: Any, field: str = FIELD) -> None:
    """Refuse an ``sd_vae`` value that names no VAE (for the options and ``override_settings``)."""
    find_vae(store, value, field=field)


def vae_beside(store: ModelStore, checkpoint: ModelRecord) -> ModelRecord | None:
    """``NAME.vae.safetensors`` (or ``.vae.pt``/``.vae.ckpt``) beside checkpoint ``NAME``, if there is one."""
    if checkpoint.path is None or checkpoint.ref.kind is SourceKind.HUB:
        return None
    stem = checkpoint.path.stem if checkpoint.ref.kind is SourceKind.SINGLE_FILE else checkpoint.path.name
    folder = checkpoint.path.parent.resolve()
    for record in store.records(ModelType.VAE):
        path = record.path
        if path is not None and path.stem == stem + CHECKPOINT_VAE_TAG and path.parent.resolve() == folder:
            return record
    return None


@dataclass(frozen=True)
class JobVae:
    """The VAE a job decodes (and encodes) with, in place of the checkpoint's own."""

    record: ModelRecord
    vae: Any  # the diffusers AutoencoderKL / AutoencoderTiny

    @property
    def name(self) -> str:
        return vae_title(self.record)

    def infotext(self) -> dict[str, Any]:
        """A1111's ``VAE hash`` (sha256[:10] of the file) and ``VAE`` (its file name)."""
        return {"VAE hash": self.record.short_hash, "VAE": self.name}


def _file_shape(record: ModelRecord) -> tuple[int | None, int | None, float | None]:
    """(latent channels, downscaling levels, scaling factor) from the VAE's own files; None where unknown."""
    path = record.path
    if path is None:
        return None, None, None
    if path.is_dir():
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, ValueError):
            return None, None, None
        blocks = config.get("block_out_channels")
        kl = config.get("_class_name", "AutoencoderKL") == "AutoencoderKL"  # TAESD's latents come pre-scaled
        return config.get("latent_channels"), len(blocks) if isinstance(blocks, list) and kl else None, \
            config.get("scaling_factor") if kl else None
    if path.suffix != ".safetensors":
        return None, None, None  # pickled: its shape is only known once loaded
    shapes = read_safetensors_shapes(path)
    levels = {int(m.group(1)) for key in shapes if (m := _LEVEL.match(key))}
    return vae_latent_channels(shapes), len(levels) or None, None


def _refuse(record: ModelRecord, checkpoint: ModelRecord, why: str) -> ValidationError:
    return ValidationError(FIELD, f"VAE {vae_title(record)!r} does not fit checkpoint {checkpoint.name!r}: {why}; "
                           f"choose another VAE, or {AUTOMATIC!r} / {NO_VAE!r} for the checkpoint's own")


def check_fits(record: ModelRecord, channels: int | None, levels: int | None, scaling: float | None,
               loaded: LoadedModel) -> None:
    """Refuse a VAE whose latents the checkpoint's UNet cannot take (channels, 8x vs other downscaling), or one
    made for another family (the SDXL VAE's scaling factor 0.13025 vs SD1/SD2's 0.18215)."""
    own = loaded.pipeline.vae.config
    wanted = loaded.pipeline.unet.config.out_channels
    if channels is not None and channels != wanted:
        raise _refuse(record, loaded.record, f"its latents have {channels} channels, the checkpoint's UNet "
                      f"works on {wanted}")
    own_levels = len(own.block_out_channels)
    if levels is not None and levels != own_levels:
        raise _refuse(record, loaded.record, f"it scales images down {2 ** (levels - 1)}x, the checkpoint's VAE "
                      f"{2 ** (own_levels - 1)}x")
    if scaling is not None and abs(scaling - own.scaling_factor) > 1e-6:
        family = {0.13025: "an SDXL VAE", 0.18215: "an SD1/SD2 VAE"}.get(round(scaling, 5), "a VAE")
        raise _refuse(record, loaded.record, f"it is {family} (scaling factor {scaling:g}) and the checkpoint is "
                      f"{loaded.record.architecture or 'another kind'} (scaling factor {own.scaling_factor:g})")


def job_vae_record(store: ModelStore, choice: str, checkpoint: ModelRecord) -> ModelRecord | None:
    """The VAE file a job with ``sd_vae = choice`` uses, or None for the checkpoint's own."""
    if choice == AUTOMATIC:
        return vae_beside(store, checkpoint)
    return find_vae(store, choice)


@contextmanager
def held_vae(store: ModelStore, choice: str, loaded: LoadedModel,
             on_progress: ProgressFn = ignore_progress) -> Iterator[JobVae | None]:
    """Resolve, check and hold the job's VAE (None: the checkpoint's own) until the block ends."""
    record = job_vae_record(store, choice, loaded.record)
    if record is None:
        yield None
        return
    check_fits(record, *_file_shape(record), loaded)
    record = store.hashed(record)
    config = None
    if record.ref.kind is SourceKind.SINGLE_FILE:  # no config of its own: the checkpoint's shape
        config = dict(loaded.pipeline.vae.config)
        cached = store.loaded(record, ModelType.VAE)
        if cached is not None and any(cached.model.config.get(k) != config.get(k) for k in _SHAPE_KEYS):
            store.unload(cached.record.ref.key)  # loaded earlier for a checkpoint of another shape
    with store.use(record, on_progress, model_type=ModelType.VAE, config=config) as held:
        vae = held.model
        kl = type(vae).__name__ == "AutoencoderKL"
        check_fits(record, vae.config.get("latent_channels"), len(vae.config.get("block_out_channels") or ()) or None
                   if kl else None, vae.config.get("scaling_factor") if kl else None, loaded)
        log.info("VAE %s for %s", vae_title(record), loaded.record.name)
        yield JobVae(record, vae)
