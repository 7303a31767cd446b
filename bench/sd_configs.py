"""Full-size Stable Diffusion component configs, written out so the benchmarks build the real architectures with
random weights and download nothing (values as in the repositories' ``*/config.json``). Plain data: importing this
imports nothing else."""

from __future__ import annotations

# stable-diffusion-v1-5/stable-diffusion-v1-5: unet, vae
SD15_UNET = dict(
    act_fn="silu", attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280), center_input_sample=False,
    cross_attention_dim=768, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",), downsample_padding=1,
    flip_sin_to_cos=True, freq_shift=0, in_channels=4, layers_per_block=2, mid_block_scale_factor=1, norm_eps=1e-5,
    norm_num_groups=32, out_channels=4, sample_size=64,
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
)
SD15_VAE = dict(
    act_fn="silu", block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
    in_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32, out_channels=3, sample_size=512,
    up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215,
)
# openai/clip-vit-large-patch14's text tower (SD1.5's text_encoder, SDXL's text_encoder)
CLIP_L = dict(
    hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12, max_position_embeddings=77,
    vocab_size=49408, hidden_act="quick_gelu", projection_dim=768, layer_norm_eps=1e-5, attention_dropout=0.0,
    dropout=0.0, initializer_factor=1.0, initializer_range=0.02,
)
# stabilityai/stable-diffusion-xl-base-1.0: unet, vae, text_encoder_2 (laion CLIP ViT-bigG/14's text tower)
SDXL_UNET = dict(
    act_fn="silu", addition_embed_type="text_time", addition_embed_type_num_heads=64, addition_time_embed_dim=256,
    attention_head_dim=(5, 10, 20), block_out_channels=(320, 640, 1280), cross_attention_dim=2048,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"), downsample_padding=1,
    flip_sin_to_cos=True, freq_shift=0, in_channels=4, layers_per_block=2, mid_block_scale_factor=1, norm_eps=1e-5,
    norm_num_groups=32, out_channels=4, projection_class_embeddings_input_dim=2816, sample_size=128,
    transformer_layers_per_block=(1, 2, 10), up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    use_linear_projection=True,
)
SDXL_VAE = {**SD15_VAE, "scaling_factor": 0.13025, "sample_size": 1024, "force_upcast": True}
CLIP_G = dict(
    hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32, max_position_embeddings=77,
    vocab_size=49408, hidden_act="gelu", projection_dim=1280, layer_norm_eps=1e-5,
)
