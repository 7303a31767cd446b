"""Build a diffusers pipeline from files already on disk.

Hub snapshots and local folders load with ``from_pretrained`` from their local
path; single files with ``from_single_file`` and a local config folder (a
sidecar, or a reference config fetched by :mod:`pipelines.models.hub`), so
loading itself never reaches the network.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from pipelines.errors import DamagedModelError, UnsafeFormatError, UnsupportedModelError
from pipelines.lazy_diffusers import diffusers_attr
from pipelines.models.architecture import Architecture, ModelKind
from pipelines.models.refs import ModelRecord, SourceKind
from pipelines.models.weights import read_state_dict

log = logging.getLogger(__name__)


def pipeline_class(kind: ModelKind) -> type:
    """The diffusers pipeline class that runs this kind of model."""
    if kind.refiner:  # text_encoder None, aesthetic-score time ids: only the img2img pipeline runs it
        name = "StableDiffusionXLImg2ImgPipeline"
    elif kind.architecture is Architecture.SDXL:
        name = "StableDiffusionXLInpaintPipeline" if kind.inpainting else "StableDiffusionXLPipeline"
    else:
        name = "StableDiffusionInpaintPipeline" if kind.inpainting else "StableDiffusionPipeline"
    return diffusers_attr(name)


def _extra_kwargs(cls: type) -> dict:
    if cls.__name__ in ("StableDiffusionPipeline", "StableDiffusionInpaintPipeline"):
        return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    return {}


def weights_variant(folder: Path) -> str | None:
    """``"fp16"`` when a folder only carries the fp16 variant of its UNet weights."""
    unet = folder / "unet"
    if (unet / "diffusion_pytorch_model.safetensors").exists():
        return None
    if (unet / "diffusion_pytorch_model.fp16.safetensors").exists():
        return "fp16"
    return None


def _check_safe_folder(folder: Path, allow_pickle: bool) -> None:
    if allow_pickle:
        return
    for sub in folder.iterdir():
        if sub.is_dir() and any(sub.glob("*.bin")) and not any(sub.glob("*.safetensors")):
            raise UnsafeFormatError(
                f"{folder.name}/{sub.name} only has pickled .bin weights; convert it to .safetensors "
                "or start Atelier with --allow-pickle to load it (weights_only)"
            )


def load_pipeline(
    record: ModelRecord,
    *,
    dtype: torch.dtype,
    config_dir: Path | None = None,
    allow_pickle: bool = False,
) -> Any:
    """Load ``record`` onto the CPU in ``dtype``; the caller moves it to its device."""
    assert record.kind is not None and record.path is not None
    started = time.perf_counter()
    try:
        if record.kind.architecture is Architecture.UNCONDITIONAL:
            pipe = _unconditional(record.path, dtype, allow_pickle)
        else:
            pipe = _from_files(record, pipeline_class(record.kind), dtype, config_dir, allow_pickle)
    except (OSError, SafetensorError) as exc:  # files changed or missing since the store checked them
        raise DamagedModelError(f"{record.name}: its files in {record.path} could not be loaded "
                                f"({type(exc).__name__}: {exc}); download it again") from exc
    pipe.set_progress_bar_config(disable=True)
    log.info("loaded %s as %s in %.2fs", record.name, type(pipe).__name__, time.perf_counter() - started)
    return pipe


def _from_files(record: ModelRecord, cls: type, dtype: torch.dtype, config_dir: Path | None,
                allow_pickle: bool) -> Any:
    assert record.path is not None
    if record.ref.kind in (SourceKind.HUB, SourceKind.FOLDER):
        _check_safe_folder(record.path, allow_pickle)
        pipe = cls.from_pretrained(
            str(record.path),
            dtype=dtype,
            variant=weights_variant(record.path),
            use_safetensors=None if allow_pickle else True,
            local_files_only=True,
            **_extra_kwargs(cls),
        )
    else:
        if record.path.suffix != ".safetensors" and not allow_pickle:
            raise UnsafeFormatError(f"{record.path.name} is a pickled checkpoint; start with --allow-pickle to load it")
        assert config_dir is not None, "single files need a config folder"
        pipe = cls.from_single_file(
            str(record.path),
            config=str(config_dir),
            dtype=dtype,
            local_files_only=True,
            **_extra_kwargs(cls),
        )
    return pipe


def _unconditional(folder: Path, dtype: torch.dtype, allow_pickle: bool) -> Any:
    """A ``DDPMPipeline`` / ``DDIMPipeline`` folder, in diffusers' nested layout (``unet/``, ``scheduler/``) or the
    flat one of the early DDPM repos (``config.json``, weights and ``scheduler_config.json`` at the top, which
    diffusers loads from the folder itself), or a bare ``UNet2DModel`` folder with its scheduler (no index):
    always a ``DDPMPipeline`` holding the model's own UNet and scheduler; the job picks its sampler."""
    _check_safe_folder(folder, allow_pickle)
    unet_dir = folder / "unet" if (folder / "unet" / "config.json").is_file() else folder
    if unet_dir == folder and not allow_pickle and not any(folder.glob("*.safetensors")) and any(folder.glob("*.bin")):
        raise UnsafeFormatError(f"{folder.name} only has pickled .bin weights; convert it to .safetensors "
                                "or start Atelier with --allow-pickle to load it (weights_only)")
    sched_dir = folder / "scheduler" if (folder / "scheduler" / "scheduler_config.json").is_file() else folder
    unet = diffusers_attr("UNet2DModel").from_pretrained(str(unet_dir), dtype=dtype, local_files_only=True,
                                                         use_safetensors=None if allow_pickle else True)
    config = json.loads((sched_dir / "scheduler_config.json").read_text())
    try:
        scheduler_cls = diffusers_attr(config.get("_class_name") or "DDPMScheduler")
    except (AttributeError, ImportError):  # a scheduler this diffusers does not have: the DDPM one reads its config
        scheduler_cls = diffusers_attr("DDPMScheduler")
    scheduler = scheduler_cls.from_config(config)
    return diffusers_attr("DDPMPipeline")(unet=unet, scheduler=scheduler)


def load_sd_x4(record: ModelRecord, *, dtype: torch.dtype, allow_pickle: bool = False) -> Any:
    """The SD x4 upscaler (diffusers ``StableDiffusionUpscalePipeline``) from its local folder."""
    assert record.path is not None
    _check_safe_folder(record.path, allow_pickle)
    cls = diffusers_attr("StableDiffusionUpscalePipeline")
    pipe = cls.from_pretrained(str(record.path), dtype=dtype, variant=weights_variant(record.path),
                               use_safetensors=None if allow_pickle else True, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_image_variation(record: ModelRecord, *, dtype: torch.dtype, allow_pickle: bool = False) -> Any:
    """An image-variation model from its local folder: diffusers ``StableDiffusionImageVariationPipeline`` without
    its safety checker (as every Atelier checkpoint), or Stable unCLIP's ``StableUnCLIPImg2ImgPipeline`` (none)."""
    assert record.path is not None
    _check_safe_folder(record.path, allow_pickle)
    unclip = record.kind is not None and record.kind.unclip
    cls = diffusers_attr("StableUnCLIPImg2ImgPipeline" if unclip else "StableDiffusionImageVariationPipeline")
    extra = {} if unclip else {"safety_checker": None, "requires_safety_checker": False}
    pipe = cls.from_pretrained(str(record.path), dtype=dtype, variant=weights_variant(record.path),
                               use_safetensors=None if allow_pickle else True, local_files_only=True, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_vae(record: ModelRecord, *, dtype: torch.dtype, config: Mapping[str, Any] | None = None,
             allow_pickle: bool = False) -> Any:
    """A VAE from a diffusers folder (``AutoencoderKL``/``AutoencoderTiny``) or a single file in either layout.

    A single file has no config of its own: ``config`` (the checkpoint's own VAE config, which every
    VAE of that family shares, scaling factor included) describes its shape; diffusers converts an
    original-layout (LDM) file and takes a diffusers-layout one as it is.
    """
    assert record.path is not None
    if record.path.is_dir():
        folder_config = json.loads((record.path / "config.json").read_text())
        cls = diffusers_attr(folder_config.get("_class_name", "AutoencoderKL"))
        return cls.from_pretrained(str(record.path), dtype=dtype, use_safetensors=None if allow_pickle else True,
                                   local_files_only=True)
    if record.path.suffix != ".safetensors" and not allow_pickle:
        raise UnsafeFormatError(f"{record.path.name} is a pickled VAE; start with --allow-pickle to load it")
    if config is None:
        raise UnsupportedModelError(f"{record.path.name}: a single-file VAE is loaded for a checkpoint, "
                                    "whose VAE config it takes")
    with tempfile.TemporaryDirectory(prefix="atelier-vae-config-") as folder:
        (Path(folder) / "config.json").write_text(json.dumps({k: v for k, v in config.items()
                                                              if not k.startswith("_")} | {
            "_class_name": "AutoencoderKL"}))
        try:
            return diffusers_attr("AutoencoderKL").from_single_file(str(record.path), config=folder, dtype=dtype,
                                                                    local_files_only=True)
        except (ValueError, RuntimeError, KeyError) as exc:  # weights that do not fit the shape
            raise UnsupportedModelError(f"{record.path.name}: not a VAE of this checkpoint's shape ({exc})") from exc


def load_tensors(record: ModelRecord, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """A LoRA's or an embedding's tensors, on the CPU, read once (the store caches them)."""
    assert record.path is not None
    started = time.perf_counter()
    state = read_state_dict(record.path, allow_pickle=allow_pickle)
    log.info("read %s %s (%d tensors) in %.3fs", record.type.label, record.path.name, len(state),
             time.perf_counter() - started)
    return state
