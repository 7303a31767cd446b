"""Tell the architecture of a LoRA, VAE or embedding file from its tensor names and shapes.

Only the safetensors header is read. A file that cannot be placed gets ``None`` (unknown), never
an error: listing must not fail on a stranger's file, and the job that uses it says what is wrong.
"""

from __future__ import annotations

from pipelines.models.architecture import Architecture

Shapes = dict[str, tuple[int, ...]]

# Width of the context a LoRA's layers see: CLIP-L 768 (SD1), OpenCLIP-H 1024 (SD2), both 2048 (SDXL).
_WIDTH = {768: Architecture.SD1, 1024: Architecture.SD2, 2048: Architecture.SDXL}
_DOWN = ("lora_down", "lora.down", "lora_A")  # the first factor of a LoRA pair: (rank, in_features)


def lora_architecture(shapes: Shapes) -> Architecture | None:
    """SD1 / SD2 / SDXL from a kohya or diffusers/peft LoRA's keys and shapes."""
    if any(k.startswith(("lora_te1_", "lora_te2_", "te1.", "te2.", "text_encoder_2.")) for k in shapes):
        return Architecture.SDXL
    for key, shape in shapes.items():  # the UNet's cross-attention key/value layers read the text context
        if ("attn2_to_k" in key or "attn2.to_k" in key) and any(d in key for d in _DOWN) and len(shape) == 2:
            return _WIDTH.get(shape[1])
    for key, shape in shapes.items():  # else a text-encoder layer's width
        if key.startswith(("lora_te_", "text_encoder.", "te.")) and any(d in key for d in _DOWN) and len(shape) == 2:
            return _WIDTH.get(shape[1])
    return None


def is_lora(shapes: Shapes) -> bool:
    return any(("lora_" in k or "hada_" in k or "lokr_" in k or ".lora_A." in k or ".lora.down." in k)
               for k in shapes)


def embedding_architecture(shapes: Shapes) -> Architecture | None:
    """SD1 (768-wide vectors), SD2 (1024) or SDXL (``clip_l`` + ``clip_g``) textual inversion."""
    if "clip_g" in shapes and "clip_l" in shapes:
        return Architecture.SDXL
    vectors = shapes.get("emb_params") or shapes.get("string_to_param.*")
    if vectors is None and len(shapes) == 1:
        vectors = next(iter(shapes.values()))
    if vectors is None or not vectors:
        return None
    return {768: Architecture.SD1, 1024: Architecture.SD2}.get(vectors[-1])


def vae_latent_channels(shapes: Shapes) -> int | None:
    """Latent channels of a VAE file in original (``encoder.down.0``) or diffusers (``encoder.down_blocks``) layout."""
    for key in ("decoder.conv_in.weight", "first_stage_model.decoder.conv_in.weight"):
        if key in shapes and len(shapes[key]) == 4:
            return shapes[key][1]
    return None


def is_vae(shapes: Shapes) -> bool:
    return vae_latent_channels(shapes) is not None and not any(k.startswith("model.diffusion_model.") for k in shapes)
