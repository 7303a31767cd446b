"""The kinds of model the store keeps: one enum, with where each kind lives on disk."""

from __future__ import annotations

from enum import StrEnum


class ModelType(StrEnum):
    """What a model is for. ControlNet and IP-Adapter models will be further members."""

    CHECKPOINT = "checkpoint"  # a Stable Diffusion pipeline (folder, single file or Hub repo)
    VAE = "vae"
    TAESD = "taesd"  # a tiny autoencoder (diffusers AutoencoderTiny: TAESD, TAESDXL): previews, fast decoding
    LORA = "lora"  # LoRA / LoCon / LyCORIS network files
    EMBEDDING = "embedding"  # textual-inversion embeddings
    UPSCALER = "upscaler"  # an upscaler model file spandrel loads (ESRGAN, SwinIR, HAT, DAT, ...)
    SD_X4_UPSCALER = "sd_x4_upscaler"  # diffusers' StableDiffusionUpscalePipeline
    IMAGE_VARIATION = "image_variation"  # StableDiffusionImageVariationPipeline, StableUnCLIPImg2ImgPipeline

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def small(self) -> bool:
        """Models of a few MiB that stay in RAM (the job moves what it needs to the device)."""
        return self in (ModelType.LORA, ModelType.EMBEDDING)


_LABELS = {
    ModelType.CHECKPOINT: "Checkpoint",
    ModelType.VAE: "VAE",
    ModelType.TAESD: "TAESD (tiny VAE)",
    ModelType.LORA: "LoRA",
    ModelType.EMBEDDING: "Embedding",
    ModelType.UPSCALER: "Upscaler",
    ModelType.SD_X4_UPSCALER: "SD x4 upscaler",
    ModelType.IMAGE_VARIATION: "Image variation model",
}
