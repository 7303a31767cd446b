"""Identify a model's architecture from its own files, never from its name.

Diffusers folders are read through ``model_index.json`` and the component
configs; single files through the tensor names and shapes in the safetensors
header (the weights themselves are not read).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pipelines.errors import UnsupportedModelError


class Architecture(StrEnum):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    UNCONDITIONAL = "unconditional"  # a pixel-space UNet2DModel with a DDPM/DDIM scheduler: no text, no VAE

    @property
    def label(self) -> str:
        return {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "unconditional": "Unconditional (pixel space)"}[
            self.value]


@dataclass(frozen=True)
class ModelKind:
    """What a checkpoint is: its architecture and the variants that change how it runs."""

    architecture: Architecture
    inpainting: bool = False
    turbo: bool = False
    upscaler: bool = False  # the SD x4 upscaler pipeline: listed among the upscalers, not the checkpoints
    refiner: bool = False  # the SDXL refiner (OpenCLIP-G alone, aesthetic-score conditioning): refines, never starts
    image_variation: bool = False  # conditioned on a CLIP image embedding, not text: listed apart, run by Vary
    unclip: bool = False  # an image-variation model of the Stable unCLIP family (noised embedding as class labels)

    @property
    def label(self) -> str:
        if self.upscaler:
            return "SD x4 upscaler"
        if self.image_variation:
            return f"{self.architecture.label} {'unCLIP' if self.unclip else 'image variation'}"
        parts = [self.architecture.label]
        if self.turbo:
            parts.append("Turbo")
        if self.refiner:
            parts.append("refiner")
        if self.inpainting:
            parts.append("inpainting")
        return " ".join(parts)

    @property
    def reference_key(self) -> str:
        """Key into ``Settings.reference_configs`` for single files without a sidecar."""
        if self.inpainting and self.architecture is Architecture.SD1:
            return "sd1-inpaint"
        if self.refiner:
            return "sdxl-refiner"
        return self.architecture.value


SD_PIPELINES = {
    "StableDiffusionPipeline",
    "StableDiffusionImg2ImgPipeline",
    "StableDiffusionInpaintPipeline",
}
UPSCALE_PIPELINES = {"StableDiffusionUpscalePipeline"}  # SD 2-based, 4x, text-conditioned
SDXL_PIPELINES = {
    "StableDiffusionXLPipeline",
    "StableDiffusionXLImg2ImgPipeline",
    "StableDiffusionXLInpaintPipeline",
}
# Unconditional pixel-space pipelines (the DDPM paper's released checkpoints, google/ddpm-*): a UNet2DModel
# denoises RGB noise at its own sample_size; there is no prompt, no VAE and no guidance.
UNCONDITIONAL_PIPELINES = {"DDPMPipeline", "DDIMPipeline"}
UNCONDITIONAL_UNETS = {"UNet2DModel"}
# Image variations from an image embedding (DALL·E 2's idea): the UNet cross-attends to CLIP's image embedding, or
# (Stable unCLIP) takes the noised embedding as its class labels beside a text prompt
UNCLIP_PIPELINES = {"StableUnCLIPImg2ImgPipeline"}
VARIATION_PIPELINES = {"StableDiffusionImageVariationPipeline"} | UNCLIP_PIPELINES


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise UnsupportedModelError(f"{path} is not valid JSON: {exc}") from exc


def _is_turbo_name(name: str) -> bool:
    # Turbo models share SD2.1/SDXL architecture; only their distillation differs, so
    # the hint comes from the name and only changes suggested steps/CFG.
    return "turbo" in name.lower()


def is_bare_unet(folder: Path) -> bool:
    """A folder (or Hub repo) holding one ``UNet2DModel`` and its scheduler at the top, without a
    ``model_index.json``: an unconditional model in the layout the early DDPM repos used."""
    unet = _read_json(folder / "config.json")
    return unet.get("_class_name") in UNCONDITIONAL_UNETS and (folder / "scheduler_config.json").is_file()


def detect_folder(folder: Path, *, name_hint: str = "") -> ModelKind:
    """Kind of a diffusers-layout folder (local or a Hub snapshot)."""
    index = _read_json(folder / "model_index.json")
    if not index and is_bare_unet(folder):
        return ModelKind(Architecture.UNCONDITIONAL)
    if not index:
        raise UnsupportedModelError(f"{folder} has no model_index.json; it is not a diffusers model folder")
    cls = index.get("_class_name", "?")
    if cls in UNCONDITIONAL_PIPELINES:
        return ModelKind(Architecture.UNCONDITIONAL)
    unet = _read_json(folder / "unet" / "config.json")
    inpainting = unet.get("in_channels") == 9
    turbo = _is_turbo_name(name_hint or folder.name)
    if cls in SDXL_PIPELINES:
        # the refiner has no first text encoder: model_index.json lists text_encoder as [null, null]
        refiner = not any(index.get("text_encoder") or ())
        return ModelKind(Architecture.SDXL, inpainting, turbo, refiner=refiner)
    if cls in UPSCALE_PIPELINES:
        return ModelKind(Architecture.SD2, upscaler=True)
    text = _read_json(folder / "text_encoder" / "config.json")
    is_sd2 = bool(unet.get("use_linear_projection")) or text.get("hidden_act") == "gelu"
    if cls in UNCLIP_PIPELINES:
        return ModelKind(Architecture.SD2 if is_sd2 else Architecture.SD1, image_variation=True, unclip=True)
    if cls in VARIATION_PIPELINES:
        return ModelKind(Architecture.SD1, image_variation=True)
    if cls in SD_PIPELINES:
        return ModelKind(Architecture.SD2 if is_sd2 else Architecture.SD1, inpainting, turbo)
    raise UnsupportedModelError(
        f"{name_hint or folder.name}: pipeline {cls!r} is not supported; Atelier runs SD 1.x, SD 2.x and SDXL "
        "(including Turbo and inpainting variants) and unconditional DDPM/DDIM pipelines"
    )


_FOREIGN_MARKERS = {
    "double_blocks.": "Flux",
    "model.diffusion_model.double_blocks.": "Flux",
    "model.diffusion_model.joint_blocks.": "Stable Diffusion 3",
    "joint_blocks.": "Stable Diffusion 3",
    "lora_unet_": "a LoRA (put it in models/Lora)",
    "lora_te_": "a LoRA (put it in models/Lora)",
    "encoder.down.0.block": "a VAE (put it in models/VAE)",
}


def detect_tensor_names(names: dict[str, tuple[int, ...]], *, name_hint: str = "") -> ModelKind:
    """Kind of an original-layout (LDM) checkpoint from its tensor names and shapes."""
    first_conv = names.get("model.diffusion_model.input_blocks.0.0.weight")
    turbo = _is_turbo_name(name_hint)
    if first_conv is not None:
        inpainting = len(first_conv) == 4 and first_conv[1] == 9
        if any(k.startswith("conditioner.embedders.") for k in names):
            # the refiner's one embedder is OpenCLIP-G (embedders.0.model); the base's first is CLIP-L
            refiner = not any(k.startswith("conditioner.embedders.0.transformer.") for k in names)
            return ModelKind(Architecture.SDXL, inpainting, turbo, refiner=refiner)
        if any(k.startswith("cond_stage_model.model.") for k in names):
            return ModelKind(Architecture.SD2, inpainting, turbo)
        if any(k.startswith("cond_stage_model.transformer.") for k in names):
            return ModelKind(Architecture.SD1, inpainting, turbo)
    for marker, what in _FOREIGN_MARKERS.items():
        if any(k.startswith(marker) for k in names):
            raise UnsupportedModelError(f"{name_hint}: this file looks like {what}, not a Stable Diffusion checkpoint")
    raise UnsupportedModelError(
        f"{name_hint}: not a complete SD 1.x / SD 2.x / SDXL checkpoint (no UNet and text encoder found)"
    )


def read_safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header, without reading weights."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}


def detect_single_file(path: Path) -> ModelKind:
    if path.suffix != ".safetensors":
        raise UnsupportedModelError(f"{path.name}: only .safetensors single files can be inspected safely")
    return detect_tensor_names(read_safetensors_shapes(path), name_hint=path.name)
