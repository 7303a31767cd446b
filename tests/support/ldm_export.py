"""Export tiny diffusers folders to single ``.safetensors`` files in the original LDM/CompVis layout.

diffusers only converts original -> diffusers (``diffusers/loaders/single_file_utils.py``); this
module is the reverse mapping, written from the key names those conversion functions expect, so
that the project's tests can exercise ``from_single_file`` on files shaped like community
checkpoints (``v1-5-pruned-emaonly.safetensors``, ``sd_xl_base_1.0.safetensors``).

Offline loading (verified with diffusers 0.42.1 / transformers 5.23; no network is touched)::

    StableDiffusionPipeline.from_single_file(
        str(out_file), config=str(diffusers_folder_or_sidecar_dir), local_files_only=True
    )

``config`` must be an existing *local directory*: diffusers then reads every component config,
the tokenizer and the scheduler straight from it. Without ``config`` diffusers infers a Hub repo id
from the checkpoint keys (``stable-diffusion-v1-5/stable-diffusion-v1-5`` for SD1) and needs that
repo's configs in the HF cache; ``local_files_only=True`` alone is not enough then.
``original_config=`` (a YAML) is a legacy path that also needs the Hub for the CLIP config, so
it is not used here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "export_sd15_single_file",
    "export_sdxl_single_file",
    "export_sd2_single_file",
    "write_sidecar_config",
    "unet_to_ldm",
    "vae_to_ldm",
    "clip_to_ldm",
    "open_clip_to_ldm",
]

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_CLIP_PREFIX = "cond_stage_model.transformer."
SD2_OPEN_CLIP_PREFIX = "cond_stage_model.model."
SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer."
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."


# --------------------------------------------------------------------------------------- loading
def _read_config(component_dir: Path) -> dict:
    return json.loads((component_dir / "config.json").read_text(encoding="utf-8"))


def _load_component_weights(component_dir: Path) -> dict[str, torch.Tensor]:
    """All tensors of one component folder (single or sharded safetensors files)."""
    files = sorted(component_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors weights in {component_dir}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    return state


# ------------------------------------------------------------------------------------------ UNet
_UNET_TOP_LEVEL = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    # SDXL `text_time` added conditioning and SD `projection` class embeddings share LDM's label_emb.
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "class_embedding.linear_1": "label_emb.0.0",
    "class_embedding.linear_2": "label_emb.0.2",
}

_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}


def _rename_unet_resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    if head not in _UNET_RESNET:
        raise KeyError(f"unexpected UNet resnet parameter {rest!r}")
    return f"{_UNET_RESNET[head]}.{tail}"


def unet_to_ldm(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """diffusers ``UNet2DConditionModel`` state dict -> LDM ``openaimodel.UNetModel`` keys (no prefix).

    Inverse of ``convert_ldm_unet_checkpoint``: input block ``1 + b*(L+1) + j`` holds down block
    ``b``'s resnet/attention ``j`` (``.0``/``.1``) and ``1 + b*(L+1) + L`` its downsampler
    (``.0.op``); output block ``b*(L+1) + j`` holds up block ``b``'s layer ``j`` and the upsampler
    sits after the last layer (``.1.conv`` without attention, ``.2.conv`` with).
    """
    per_block = config["layers_per_block"]
    if not isinstance(per_block, int):
        raise NotImplementedError("only an int layers_per_block is supported")
    up_has_attention = {
        int(m.group(1)) for k in state if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))
    }
    out: dict[str, torch.Tensor] = {}

    def put(key: str, value: torch.Tensor) -> None:
        if key in out:
            raise KeyError(f"two diffusers tensors map to LDM key {key!r}")
        out[key] = value

    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module in _UNET_TOP_LEVEL:
            put(f"{_UNET_TOP_LEVEL[module]}.{param}", value)
            continue
        if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            block, kind, layer, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            index = 1 + block * (per_block + 1) + layer
            if kind == "resnets":
                put(f"input_blocks.{index}.0.{_rename_unet_resnet(rest)}", value)
            else:
                put(f"input_blocks.{index}.1.{rest}", value)
            continue
        if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key):
            index = 1 + int(m.group(1)) * (per_block + 1) + per_block
            put(f"input_blocks.{index}.0.op.{m.group(2)}", value)
            continue
        if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
            put(f"middle_block.{2 * int(m.group(1))}.{_rename_unet_resnet(m.group(2))}", value)
            continue
        if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
            put(f"middle_block.1.{m.group(1)}", value)
            continue
        if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            block, kind, layer, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            index = block * (per_block + 1) + layer
            if kind == "resnets":
                put(f"output_blocks.{index}.0.{_rename_unet_resnet(rest)}", value)
            else:
                put(f"output_blocks.{index}.1.{rest}", value)
            continue
        if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key):
            block = int(m.group(1))
            index = block * (per_block + 1) + per_block
            slot = 2 if block in up_has_attention else 1
            put(f"output_blocks.{index}.{slot}.conv.{m.group(2)}", value)
            continue
        raise KeyError(f"no LDM name for UNet tensor {key!r}")
    return out


# ------------------------------------------------------------------------------------------- VAE
_VAE_TOP_LEVEL = {
    "encoder.conv_in": "encoder.conv_in",
    "encoder.conv_out": "encoder.conv_out",
    "encoder.conv_norm_out": "encoder.norm_out",
    "decoder.conv_in": "decoder.conv_in",
    "decoder.conv_out": "decoder.conv_out",
    "decoder.conv_norm_out": "decoder.norm_out",
    "quant_conv": "quant_conv",
    "post_quant_conv": "post_quant_conv",
}

_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def vae_to_ldm(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """diffusers ``AutoencoderKL`` state dict -> LDM ``AutoencoderKL`` keys (no prefix).

    Decoder up blocks are numbered in reverse in LDM (``up.{n-1-i}``), ``conv_shortcut`` is
    ``nin_shortcut``, and the mid-block attention q/k/v/proj_out are 1x1 convolutions, so their
    2-D linear weights gain two trailing singleton dimensions.
    """
    num_up = len(config["up_block_types"])
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module in _VAE_TOP_LEVEL:
            out[f"{_VAE_TOP_LEVEL[module]}.{param}"] = value
            continue
        if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            rest = m.group(3).replace("conv_shortcut", "nin_shortcut")
            out[f"encoder.down.{m.group(1)}.block.{m.group(2)}.{rest}"] = value
            continue
        if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key):
            out[f"encoder.down.{m.group(1)}.downsample.conv.{m.group(2)}"] = value
            continue
        if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            rest = m.group(3).replace("conv_shortcut", "nin_shortcut")
            out[f"decoder.up.{num_up - 1 - int(m.group(1))}.block.{m.group(2)}.{rest}"] = value
            continue
        if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key):
            out[f"decoder.up.{num_up - 1 - int(m.group(1))}.upsample.conv.{m.group(2)}"] = value
            continue
        if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
            out[f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{m.group(3)}"] = value
            continue
        attention = r"(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_[qkv]|to_out\.0)\.(\w+)"
        if m := re.fullmatch(attention, key):
            if param == "weight" and m.group(2) != "group_norm" and value.ndim == 2:
                value = value[:, :, None, None]
            out[f"{m.group(1)}.mid.attn_1.{_VAE_ATTENTION[m.group(2)]}.{m.group(3)}"] = value
            continue
        raise KeyError(f"no LDM name for VAE tensor {key!r}")
    return out


# ------------------------------------------------------------------------------------- CLIP text
def clip_to_ldm(state: dict[str, torch.Tensor], *, with_position_ids: bool = True) -> dict[str, torch.Tensor]:
    """transformers ``CLIPTextModel`` state dict -> ``transformer.text_model.*`` layout (no outer prefix).

    transformers >= 5.6 saves ``CLIPTextModel`` without the ``text_model.`` level; older folders
    have it. Both are accepted. ``embeddings.position_ids`` (present in community SD1 checkpoints,
    a non-persistent buffer in current transformers) is added when ``with_position_ids``.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "text_projection.weight":
            raise KeyError("a projection CLIP belongs in the OpenCLIP layout (open_clip_to_ldm)")
        key = key.removeprefix("text_model.")
        out[f"text_model.{key}"] = value
    pos = out.get("text_model.embeddings.position_embedding.weight")
    if with_position_ids and pos is not None:
        position_ids = torch.arange(pos.shape[0], dtype=torch.int64)[None]
        out.setdefault("text_model.embeddings.position_ids", position_ids)
    return out


_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def open_clip_to_ldm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers ``CLIPTextModelWithProjection`` state dict -> OpenCLIP text tower keys (no prefix).

    q/k/v projections are fused into ``attn.in_proj_weight``/``in_proj_bias`` (q, k, v order) and
    ``text_projection`` is stored transposed (``[width, projection_dim]``), as OpenCLIP does.
    """
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        key = key.removeprefix("text_model.")
        if key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
        elif key == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = value
        elif key == "embeddings.position_embedding.weight":
            out["positional_embedding"] = value
        elif key == "embeddings.position_ids":
            continue
        elif key.startswith("final_layer_norm."):
            out["ln_final." + key.removeprefix("final_layer_norm.")] = value
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            fused_key = f"transformer.resblocks.{m.group(1)}.attn.in_proj_{m.group(3)}"
            fused.setdefault(fused_key, {})[m.group(2)] = value
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key):
            if m.group(2) not in _OPEN_CLIP_LAYER:
                raise KeyError(f"no OpenCLIP name for {key!r}")
            out[f"transformer.resblocks.{m.group(1)}.{_OPEN_CLIP_LAYER[m.group(2)]}.{m.group(3)}"] = value
        else:
            raise KeyError(f"no OpenCLIP name for text encoder tensor {key!r}")
    for key, parts in fused.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


# ---------------------------------------------------------------------------------------- export
def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + k: v.contiguous() for k, v in state.items()}


def _unet_and_vae(folder: Path) -> dict[str, torch.Tensor]:
    unet = unet_to_ldm(_load_component_weights(folder / "unet"), _read_config(folder / "unet"))
    vae = vae_to_ldm(_load_component_weights(folder / "vae"), _read_config(folder / "vae"))
    return _prefixed(UNET_PREFIX, unet) | _prefixed(VAE_PREFIX, vae)


def _save(tensors: dict[str, torch.Tensor], out_file: Path) -> Path:
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    # Community checkpoints carry no diffusers metadata; a plain format tag is what most have.
    save_file(dict(sorted(tensors.items())), str(out_file), metadata={"format": "pt"})
    return out_file


def export_sd15_single_file(diffusers_folder: Path, out_file: Path) -> Path:
    """Write an SD1.x diffusers folder (plain or inpainting) as one LDM-layout ``.safetensors``.

    Keys: ``model.diffusion_model.*`` (UNet), ``first_stage_model.*`` (VAE),
    ``cond_stage_model.transformer.text_model.*`` (CLIP). Load it back offline with::

        StableDiffusionPipeline.from_single_file(str(out_file), config=str(diffusers_folder),
                                                 local_files_only=True)

    (``StableDiffusionInpaintPipeline`` for the inpainting variant; ``config`` may also be a
    :func:`write_sidecar_config` directory). Returns ``out_file``.
    """
    folder = Path(diffusers_folder)
    tensors = _unet_and_vae(folder)
    tensors |= _prefixed(SD1_CLIP_PREFIX, clip_to_ldm(_load_component_weights(folder / "text_encoder")))
    return _save(tensors, out_file)


def export_sd2_single_file(diffusers_folder: Path, out_file: Path) -> Path:
    """Write an SD 2.x diffusers folder as one ``.safetensors`` in the layout of ``v2-1_768-ema-pruned``.

    Keys: ``model.diffusion_model.*``, ``first_stage_model.*`` and ``cond_stage_model.model.*`` (the
    OpenCLIP text tower, fused ``in_proj``). 768-v and 512-base files have exactly these names, so nothing
    in them says which prediction their UNet makes. Returns ``out_file``.
    """
    folder = Path(diffusers_folder)
    tensors = _unet_and_vae(folder)
    tensors |= _prefixed(SD2_OPEN_CLIP_PREFIX, open_clip_to_ldm(_load_component_weights(folder / "text_encoder")))
    return _save(tensors, out_file)


def export_sdxl_single_file(diffusers_folder: Path, out_file: Path) -> Path:
    """Write an SDXL diffusers folder as one ``.safetensors`` in the SGM layout of ``sd_xl_base_1.0``.

    Keys: ``model.diffusion_model.*``, ``first_stage_model.*``,
    ``conditioner.embedders.0.transformer.text_model.*`` (CLIP-L style text_encoder) and
    ``conditioner.embedders.1.model.*`` (OpenCLIP-bigG style text_encoder_2 with fused ``in_proj``
    and transposed ``text_projection``). Load back offline with
    ``StableDiffusionXLPipeline.from_single_file(str(out_file), config=str(diffusers_folder),
    local_files_only=True)``. diffusers tells the two encoders apart by embedding width, so they
    must differ in ``hidden_size`` (they do in :func:`tests.support.tiny_models.save_sdxl_folder`).
    Returns ``out_file``.
    """
    folder = Path(diffusers_folder)
    width_1 = _read_config(folder / "text_encoder")["hidden_size"]
    width_2 = _read_config(folder / "text_encoder_2")["hidden_size"]
    if width_1 == width_2:
        raise ValueError("diffusers cannot tell SDXL text encoders of equal hidden_size apart in one file")
    tensors = _unet_and_vae(folder)
    tensors |= _prefixed(SDXL_CLIP_PREFIX, clip_to_ldm(_load_component_weights(folder / "text_encoder")))
    open_clip = open_clip_to_ldm(_load_component_weights(folder / "text_encoder_2"))
    tensors |= _prefixed(SDXL_OPEN_CLIP_PREFIX, open_clip)
    return _save(tensors, out_file)


def export_sdxl_refiner_single_file(diffusers_folder: Path, out_file: Path) -> Path:
    """Write an SDXL refiner folder as one ``.safetensors`` in the SGM layout of ``sd_xl_refiner_1.0``.

    Keys: ``model.diffusion_model.*``, ``first_stage_model.*`` and ``conditioner.embedders.0.model.*`` (its
    one text encoder, OpenCLIP-bigG style; the base's first embedder, CLIP-L, is absent). diffusers reads it as
    ``xl_refiner`` when the tower has a ``resblocks.9`` (it does in
    :func:`tests.support.tiny_models.save_sdxl_refiner_folder`). Returns ``out_file``.
    """
    folder = Path(diffusers_folder)
    tensors = _unet_and_vae(folder)
    open_clip = open_clip_to_ldm(_load_component_weights(folder / "text_encoder_2"))
    return _save(tensors | _prefixed("conditioner.embedders.0.model.", open_clip), out_file)


_SIDECAR_SUFFIXES = {".json", ".txt", ".model"}


def write_sidecar_config(diffusers_folder: Path, sidecar_dir: Path) -> Path:
    """Copy only the config files of a diffusers folder into ``sidecar_dir`` and return it.

    Copies ``model_index.json``, every ``<component>/config.json``, scheduler configs and tokenizer
    files (``*.json``, ``*.txt``, ``*.model`` - the patterns diffusers itself fetches for
    ``from_single_file``), never weights (weight index files ``*.index.json`` are skipped too).
    ``from_single_file(file, config=str(sidecar_dir), local_files_only=True)`` then works offline.
    """
    src = Path(diffusers_folder)
    dst = Path(sidecar_dir)
    dst.mkdir(parents=True, exist_ok=True)
    for file in sorted(src.rglob("*")):
        if not file.is_file() or file.suffix not in _SIDECAR_SUFFIXES or file.name.endswith(".index.json"):
            continue
        rel = file.relative_to(src)
        if len(rel.parts) > 2:  # model_index.json or <component>/<file> only
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, dst / rel)
    return dst
