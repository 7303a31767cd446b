"""LoRA files that fit the tiny test models, in the layouts users download.

The layer names and shapes come from the tiny model itself (its saved folder), so the files load
into it the way real LoRAs load into real checkpoints:

* :func:`save_kohya_lora_for` - kohya-ss layout (A1111, Civitai): ``lora_unet_<module_path>`` and
  ``lora_te_text_model_<module_path>`` (SDXL: ``lora_te1_`` / ``lora_te2_``) with ``.lora_down.weight``,
  ``.lora_up.weight`` and ``.alpha``; optionally LoCon conv layers (4-D factors).
* :func:`save_peft_lora_for` - diffusers/peft layout, made with peft's ``LoraConfig`` on the real
  modules, ``get_peft_model_state_dict`` and diffusers' ``save_lora_weights`` (``unet.<path>.lora_A.weight``).
* :func:`save_lycoris_file` - LoHa / LoKr key layouts (LyCORIS), which diffusers cannot load for SD.
* :func:`lora_factors` - the (down, up, scale) of one layer of a kohya file, for checking the maths.

Weights are drawn from a seeded generator, so one seed always gives the same file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

__all__ = ["lora_factors", "save_kohya_lora_for", "save_lycoris_file", "save_peft_lora_for", "tiny_components"]

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # attention projections, as most LoRAs train
TE_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
_KOHYA_TE_PREFIX = {"text_encoder": "lora_te_", "text_encoder_2": "lora_te2_"}


def tiny_components(model_dir: Path) -> dict[str, torch.nn.Module]:
    """The UNet and text encoder(s) of a saved tiny model folder (SDXL: two text encoders)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    model_dir = Path(model_dir)
    parts: dict[str, torch.nn.Module] = {"unet": UNet2DConditionModel.from_pretrained(model_dir / "unet")}
    parts["text_encoder"] = CLIPTextModel.from_pretrained(model_dir / "text_encoder")
    if (model_dir / "text_encoder_2").is_dir():
        parts["text_encoder_2"] = CLIPTextModelWithProjection.from_pretrained(model_dir / "text_encoder_2")
    return parts


def _targets(module: torch.nn.Module, suffixes: tuple[str, ...], *, conv: bool) -> list[tuple[str, torch.nn.Module]]:
    out = []
    for name, child in module.named_modules():
        if isinstance(child, torch.nn.Linear) and name.endswith(suffixes):
            out.append((name, child))
        elif conv and isinstance(child, torch.nn.Conv2d) and name.endswith(("resnets.0.conv1", "resnets.0.conv2")):
            out.append((name, child))
    return out


def _kohya_name(component: str, path: str, sdxl: bool) -> str:
    if component == "unet":
        return "lora_unet_" + path.replace(".", "_")
    prefix = "lora_te1_" if sdxl and component == "text_encoder" else _KOHYA_TE_PREFIX[component]
    # kohya names text-encoder layers as transformers 4 did: under ``text_model``
    path = path if path.startswith("text_model.") else "text_model." + path
    return prefix + path.replace(".", "_")


def save_kohya_lora_for(model_dir: Path, path: Path, *, rank: int = 4, alpha: float = 2.0, seed: int = 0,
                        unet: bool = True, text_encoder: bool = True, conv: bool = False,
                        std: float = 0.1) -> Path:
    """A kohya-format LoRA (LoCon with ``conv``) for the tiny model saved in ``model_dir``."""
    parts = tiny_components(model_dir)
    sdxl = "text_encoder_2" in parts
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for component, module in parts.items():
        is_unet = component == "unet"
        if (is_unet and not unet) or (not is_unet and not text_encoder):
            continue
        for module_path, layer in _targets(module, UNET_TARGETS if is_unet else TE_TARGETS, conv=conv and is_unet):
            key = _kohya_name(component, module_path, sdxl)
            if isinstance(layer, torch.nn.Conv2d):
                k = layer.kernel_size
                down = torch.randn(rank, layer.in_channels, *k, generator=gen) * std
                up = torch.randn(layer.out_channels, rank, 1, 1, generator=gen) * std
            else:
                down = torch.randn(rank, layer.in_features, generator=gen) * std
                up = torch.randn(layer.out_features, rank, generator=gen) * std
            tensors[f"{key}.lora_down.weight"] = down
            tensors[f"{key}.lora_up.weight"] = up
            tensors[f"{key}.alpha"] = torch.tensor(float(alpha))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora", "ss_network_dim": str(rank),
                                            "ss_network_alpha": str(alpha)})
    return path


def lora_factors(path: Path, key: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(down, up, alpha / rank) of one kohya layer of ``path``."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    down, up = tensors[f"{key}.lora_down.weight"], tensors[f"{key}.lora_up.weight"]
    alpha = float(tensors[f"{key}.alpha"]) if f"{key}.alpha" in tensors else float(down.shape[0])
    return down, up, alpha / down.shape[0]


def save_peft_lora_for(model_dir: Path, path: Path, *, rank: int = 4, seed: int = 0, unet: bool = True,
                       text_encoder: bool = True, std: float = 0.1) -> Path:
    """A diffusers/peft-format LoRA (what diffusers' training scripts save) for the tiny model in ``model_dir``."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    parts = tiny_components(model_dir)
    gen = torch.Generator().manual_seed(seed)
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for component, module in parts.items():
        is_unet = component == "unet"
        if (is_unet and not unet) or (not is_unet and not text_encoder):
            continue
        config = LoraConfig(r=rank, lora_alpha=rank, target_modules=list(UNET_TARGETS if is_unet else TE_TARGETS))
        module.add_adapter(config)
        with torch.no_grad():  # peft starts lora_B at zero (a no-op LoRA); draw both factors instead
            for name, param in module.named_parameters():
                if "lora_" in name:
                    param.copy_(torch.randn(param.shape, generator=gen) * std)
        layers[component] = convert_state_dict_to_diffusers(get_peft_model_state_dict(module))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"unet_lora_layers": layers.get("unet"), "text_encoder_lora_layers": layers.get("text_encoder")}
    cls = StableDiffusionPipeline
    if "text_encoder_2" in parts:
        cls = StableDiffusionXLPipeline
        kwargs["text_encoder_2_lora_layers"] = layers.get("text_encoder_2")
    cls.save_lora_weights(str(path.parent), weight_name=path.name, **kwargs)
    return path


def save_lycoris_file(path: Path, *, kind: str = "loha", rank: int = 4, width: int = 64, seed: int = 0) -> Path:
    """A LyCORIS LoHa (``hada_w1_a``...) or LoKr (``lokr_w1``...) file on one tiny UNet layer."""
    gen = torch.Generator().manual_seed(seed)
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
    if kind == "loha":
        tensors = {f"{key}.hada_w1_a": torch.randn(width, rank, generator=gen),
                   f"{key}.hada_w1_b": torch.randn(rank, width, generator=gen),
                   f"{key}.hada_w2_a": torch.randn(width, rank, generator=gen),
                   f"{key}.hada_w2_b": torch.randn(rank, width, generator=gen)}
    elif kind == "lokr":
        tensors = {f"{key}.lokr_w1": torch.randn(4, 4, generator=gen),
                   f"{key}.lokr_w2": torch.randn(width // 4, width // 4, generator=gen)}
    else:
        raise ValueError(f"unknown LyCORIS kind {kind!r}")
    tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
