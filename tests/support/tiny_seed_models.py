"""Tiny random models of the families from the seed (issue 13), built like tests/support/tiny_models.py's:
an unconditional pixel-space DDPM/DDIM pipeline, a Stable Diffusion image-variation pipeline and a Stable unCLIP one."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.support.tiny_models import sd1_scheduler, tiny_vae


def save_ddpm_folder(path: Path, *, seed: int = 0, pipeline: str = "DDPMPipeline", flat: bool = False) -> Path:
    """Save a tiny random unconditional pixel-space pipeline (``DDPMPipeline`` or ``DDIMPipeline``) and return ``path``.

    A ``UNet2DModel`` (32/64 channels, one attention level, RGB in and out, ``sample_size`` 16) and a
    ``DDPMScheduler`` with the DDPM paper's 1000 linear-beta training steps. ``flat``: the layout of the early
    ``google/ddpm-*`` repos, the UNet's ``config.json`` and weights and ``scheduler_config.json`` at the top of
    the folder and no ``model_index.json`` (a bare UNet2DModel folder with its scheduler).
    """
    import diffusers

    torch.manual_seed(seed)
    unet = diffusers.UNet2DModel(
        sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    )
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    path = Path(path)
    if flat:
        unet.save_pretrained(str(path), safe_serialization=True)
        scheduler.save_pretrained(str(path))
        return path
    pipe = getattr(diffusers, pipeline)(unet=unet, scheduler=scheduler)
    pipe.save_pretrained(str(path), safe_serialization=True)
    return path


def save_image_variation_folder(path: Path, *, seed: int = 0) -> Path:
    """Save a tiny random ``StableDiffusionImageVariationPipeline`` (DALL·E 2's idea on SD: the UNet cross-attends
    to the CLIP *image* embedding of the input picture) and return ``path``.

    image_encoder: ``CLIPVisionModelWithProjection`` (32 wide, 2 layers, 32x32 input in 4x4 patches, projection 32);
    feature_extractor: a ``CLIPImageProcessor`` resizing and cropping to 32; the UNet and VAE of the tiny SD 1.x
    (cross-attention width 32, the projection's), PNDM scheduler; no safety checker. Default output 256x256.
    """
    from diffusers import StableDiffusionImageVariationPipeline, UNet2DConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8,
    )
    torch.manual_seed(seed + 1)
    vae = tiny_vae()
    torch.manual_seed(seed + 2)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        image_size=32, patch_size=4))
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    pipe = StableDiffusionImageVariationPipeline(
        vae=vae, image_encoder=encoder, unet=unet, scheduler=sd1_scheduler(), safety_checker=None,
        feature_extractor=processor, requires_safety_checker=False,
    )
    path = Path(path)
    pipe.save_pretrained(str(path), safe_serialization=True)
    return path


def save_unclip_folder(path: Path, *, seed: int = 0) -> Path:
    """Save a tiny random Stable unCLIP ``StableUnCLIPImg2ImgPipeline`` (as stabilityai/stable-diffusion-2-1-unclip:
    the UNet takes the input picture's *noised* CLIP image embedding as its class labels, beside a text prompt) and
    return ``path``.

    image_encoder / feature_extractor: as :func:`save_image_variation_folder`'s (embedding width 32);
    image_normalizer: ``StableUnCLIPImageNormalizer`` (32); image_noising_scheduler: ``DDPMScheduler`` (1000 steps,
    squaredcos_cap_v2, as the real model's); the UNet and text encoder of the tiny SD 2.x with
    ``class_embed_type="projection"`` taking 64 = 2 x 32 (the embedding and its noise level's timestep embedding);
    the tiny VAE and the PNDM scheduler. Default output 256x256.
    """
    from diffusers import DDPMScheduler, StableUnCLIPImg2ImgPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPImageProcessor, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    from tests.support.tiny_models import _clip_text_config, _load_tokenizer, _write_pipeline

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=(2, 4), use_linear_projection=True,
        class_embed_type="projection", projection_class_embeddings_input_dim=64,
    )
    torch.manual_seed(seed + 1)
    vae = tiny_vae()
    torch.manual_seed(seed + 2)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        image_size=32, patch_size=4))
    torch.manual_seed(seed + 3)
    text_encoder = CLIPTextModel(_clip_text_config(hidden_size=32, hidden_act="gelu"))
    normalizer = StableUnCLIPImageNormalizer(embedding_dim=32)
    with torch.no_grad():  # a fitted normalizer's statistics, not the identity it starts as
        normalizer.mean.copy_(torch.randn(1, 32) * 0.1)
        normalizer.std.copy_(torch.rand(1, 32) + 0.5)
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        image_encoder=encoder, image_normalizer=normalizer,
        image_noising_scheduler=DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2"),
        tokenizer=_load_tokenizer(Path(path) / "tokenizer"), text_encoder=text_encoder, unet=unet,
        scheduler=sd1_scheduler(), vae=vae,
    )
    return _write_pipeline(pipe, path)
