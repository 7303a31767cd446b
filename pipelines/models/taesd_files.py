"""Tiny autoencoders (TAESD, TAESDXL: diffusers ``AutoencoderTiny``) on disk: what they are and how to load one.

A TAESD comes as a diffusers folder (``config.json`` + weights; the Hub repos ``madebyollin/taesd`` and
``madebyollin/taesdxl``) or as a single ``.safetensors`` file holding that folder's weights (keys
``encoder.layers.*`` / ``decoder.layers.*``), whose config is read from the tensors' shapes. The original
repository's split ``taesd_decoder`` / ``taesd_encoder`` files (another key layout) are not read.

TAESD and TAESDXL have the same shape; only their weights differ, so which family one is for comes from its
name, as in A1111 (``taesdxl``): a name with ``xl`` in it is for SDXL, any other for SD 1.x / SD 2.x.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from pipelines.errors import UnsafeFormatError, UnsupportedModelError
from pipelines.lazy_diffusers import diffusers_attr
from pipelines.models.architecture import Architecture
from pipelines.models.refs import ModelRecord
from pipelines.models.weights import read_state_dict

CLASS_NAME = "AutoencoderTiny"
_LAYER = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(.+)$")
Shapes = dict[str, tuple[int, ...]]


def is_taesd(shapes: Shapes) -> bool:
    """A single file holding an ``AutoencoderTiny``'s weights (diffusers layout)."""
    return bool(shapes) and any(k.startswith("decoder.layers.") for k in shapes) \
        and all(_LAYER.match(k) for k in shapes)


def taesd_architecture(name: str) -> Architecture | None:
    """SDXL for a TAESDXL (``xl`` in its name), else None: TAESD fits SD 1.x and SD 2.x alike."""
    return Architecture.SDXL if "xl" in name.lower() else None


def folder_is_taesd(config: Path) -> bool:
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("_class_name") == CLASS_NAME


def _levels(shapes: Shapes, part: str) -> tuple[list[int], list[int]]:
    """Per level, the block count and the block width, read from one half's layer indices: a block has
    ``conv.0``; a bias-free conv (stride-2 in the encoder, after the upsample in the decoder) starts a level."""
    layers: dict[int, set[str]] = {}
    for key in shapes:
        match = _LAYER.match(key)
        if match and match.group(1) == part:
            layers.setdefault(int(match.group(2)), set()).add(match.group(3))
    counts: list[int] = [0]
    widths: list[int] = [0]
    for index in sorted(layers):
        names = layers[index]
        if "conv.0.weight" in names:
            counts[-1] += 1
            widths[-1] = shapes[f"{part}.layers.{index}.conv.0.weight"][0]
        elif "weight" in names and "bias" not in names and counts[-1]:
            counts.append(0)
            widths.append(0)
    return counts, widths


def config_from_shapes(shapes: Shapes) -> dict[str, Any]:
    """An ``AutoencoderTiny`` config that fits a single file's tensors."""
    enc_counts, enc_widths = _levels(shapes, "encoder")
    dec_counts, dec_widths = _levels(shapes, "decoder")
    first = next(k for k in sorted(shapes) if k.startswith("decoder.layers.") and k.endswith("weight"))
    return {"encoder_block_out_channels": tuple(enc_widths), "decoder_block_out_channels": tuple(dec_widths),
            "num_encoder_blocks": tuple(enc_counts), "num_decoder_blocks": tuple(dec_counts),
            "latent_channels": shapes[first][1]}


def load_taesd(record: ModelRecord, *, dtype: torch.dtype, allow_pickle: bool = False) -> Any:
    """The ``AutoencoderTiny`` of a diffusers folder (or Hub snapshot) or of a single ``.safetensors`` file."""
    assert record.path is not None
    cls = diffusers_attr(CLASS_NAME)
    if record.path.is_dir():
        return cls.from_pretrained(str(record.path), dtype=dtype, use_safetensors=None if allow_pickle else True,
                                   local_files_only=True)
    if record.path.suffix != ".safetensors":
        raise UnsafeFormatError(f"{record.path.name}: a TAESD is read from .safetensors files only")
    state = read_state_dict(record.path, allow_pickle=False)
    try:
        model = cls(**config_from_shapes({k: tuple(v.shape) for k, v in state.items()}))
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError, StopIteration) as exc:
        raise UnsupportedModelError(f"{record.path.name}: not the weights of a diffusers AutoencoderTiny "
                                    f"(TAESD) ({exc})") from exc
    return model.to(dtype)
