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
import math
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from pipelines.errors import DamagedModelError, ModelNotFoundError, UnsupportedModelError, ValidationError
from pipelines.models.architecture import read_safetensors_shapes
from pipelines.models.identify import vae_latent_channels
from pipelines.models.integrity import check_on_disk
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
_NOT_WEIGHTS = ("loss.", "model_ema.")  # training leftovers some original-layout files keep (A1111 skips them)
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


@dataclass(frozen=True)
class VaeShape:
    """What decides whether a VAE fits a checkpoint; None where unknown."""

    channels: int | None = None  # latent channels
    levels: int | None = None  # downscaling levels (4: 8x)
    scaling: float | None = None  # latent scaling factor (AutoencoderKL)
    parameters: int | None = None  # weights in a single file, read from its header

    @classmethod
    def of_module(cls, vae: Any) -> VaeShape:
        if type(vae).__name__ != "AutoencoderKL":  # TAESD: its latents come pre-scaled, its blocks differ
            return cls(vae.config.get("latent_channels"))
        return cls(vae.config.get("latent_channels"), len(vae.config.get("block_out_channels") or ()) or None,
                   vae.config.get("scaling_factor"))


def _file_shape(record: ModelRecord) -> VaeShape:
    """The shape a VAE's own files state: a folder's config, a safetensors file's header (pickles: unknown)."""
    path = record.path
    if path is None:
        return VaeShape()
    if path.is_dir():
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, ValueError):
            return VaeShape()
        if config.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
            return VaeShape(config.get("latent_channels"))
        blocks = config.get("block_out_channels")
        return VaeShape(config.get("latent_channels"), len(blocks) if isinstance(blocks, list) else None,
                        config.get("scaling_factor"))
    if path.suffix != ".safetensors":
        return VaeShape()  # pickled: its shape is only known once loaded
    shapes = {k: v for k, v in read_safetensors_shapes(path).items() if not k.startswith(_NOT_WEIGHTS)}
    levels = {int(m.group(1)) for key in shapes if (m := _LEVEL.match(key))}
    return VaeShape(vae_latent_channels(shapes), len(levels) or None, None,
                    sum(math.prod(shape) for shape in shapes.values()))


def _refuse(record: ModelRecord, checkpoint: ModelRecord, why: str) -> ValidationError:
    return ValidationError(FIELD, f"VAE {vae_title(record)!r} does not fit checkpoint {checkpoint.name!r}: {why}; "
                           f"choose another VAE, or {AUTOMATIC!r} / {NO_VAE!r} for the checkpoint's own")


def check_fits(record: ModelRecord, shape: VaeShape, loaded: LoadedModel) -> None:
    """Refuse a VAE whose latents the checkpoint's UNet cannot take (channels, 8x vs other downscaling), one
    made for another family (the SDXL VAE's scaling factor 0.13025 vs SD1/SD2's 0.18215), or a single file
    whose weights are not the checkpoint VAE's shape (it is loaded with that VAE's config)."""
    own_vae = loaded.pipeline.vae
    own = VaeShape.of_module(own_vae)
    wanted = loaded.pipeline.unet.config.out_channels
    if shape.channels is not None and shape.channels != wanted:
        raise _refuse(record, loaded.record, f"its latents have {shape.channels} channels, the checkpoint's UNet "
                      f"works on {wanted}")
    if shape.levels is not None and own.levels is not None and shape.levels != own.levels:
        raise _refuse(record, loaded.record, f"it scales images down {2 ** (shape.levels - 1)}x, the checkpoint's "
                      f"VAE {2 ** (own.levels - 1)}x")
    if shape.scaling is not None and own.scaling is not None and abs(shape.scaling - own.scaling) > 1e-6:
        family = {0.13025: "an SDXL VAE", 0.18215: "an SD1/SD2 VAE"}.get(round(shape.scaling, 5), "a VAE")
        raise _refuse(record, loaded.record, f"it is {family} (scaling factor {shape.scaling:g}) and the checkpoint "
                      f"is {loaded.record.architecture or 'another kind'} (scaling factor {own.scaling:g})")
    if shape.parameters is not None:
        own_parameters = sum(t.numel() for t in own_vae.state_dict().values())
        if shape.parameters != own_parameters:
            raise _refuse(record, loaded.record, f"its file holds {shape.parameters:,} weights, the checkpoint's VAE "
                          f"{own_parameters:,} (another VAE design)")


def _plain(value: Any) -> Any:
    """A config value comparable across sources (JSON lists, tuples from code)."""
    return list(value) if isinstance(value, list | tuple) else value


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
    try:
        check_on_disk(record)  # deleted or damaged since it was listed
    except (DamagedModelError, ModelNotFoundError) as exc:
        raise ValidationError(FIELD, str(exc)) from exc
    if record.problem:  # an Automatic VAE beside the checkpoint is not looked up by name, so not checked there
        raise ValidationError(FIELD, record.problem)
    check_fits(record, _file_shape(record), loaded)
    store.start_hashing(record)  # VAE hash: read while the VAE loads, waited for after the load
    config = None
    if record.ref.kind is SourceKind.SINGLE_FILE:  # no config of its own: the checkpoint's shape
        config = dict(loaded.pipeline.vae.config)
        cached = store.loaded(record, ModelType.VAE)
        if cached is not None and any(_plain(cached.model.config.get(k)) != _plain(config.get(k)) for k in _SHAPE_KEYS):
            store.unload(cached.record.ref.key)  # loaded earlier for a checkpoint of another shape
    with ExitStack() as stack:
        try:
            held = stack.enter_context(store.use(record, on_progress, model_type=ModelType.VAE, config=config))
        except UnsupportedModelError as exc:  # a single file whose weights the checkpoint's VAE config cannot take
            raise _refuse(record, loaded.record, str(exc)) from exc
        check_fits(record, VaeShape.of_module(held.model), loaded)  # what pickles and Hub repos only tell now
        record = store.hashed(record)
        log.info("VAE %s for %s", vae_title(record), loaded.record.name)
        yield JobVae(record, held.model)
