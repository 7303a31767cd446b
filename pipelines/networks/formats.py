"""What kind of network a LoRA-folder file holds, told from its tensor names.

diffusers' LoRA loader (peft backend) reads plain LoRA and LoCon files in kohya's layout
(``lora_down``/``lora_up``/``alpha``) and in diffusers/peft layouts (``lora_A``/``lora_B``,
``lora.down``/``lora.up``, ``lora_linear_layer``). LyCORIS' other algorithms factor the weight
update differently, and for Stable Diffusion diffusers does not convert them, so they are named
and refused before anything touches the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.errors import UnsupportedModelError

__all__ = ["LORA", "check_loadable", "network_kind"]

LORA = "LoRA"

# Marker in a tensor name -> the algorithm, most specific first.
_KINDS: tuple[tuple[str, str], ...] = (
    ("hada_w1_a", "LoHa (LyCORIS)"),
    ("lokr_w1", "LoKr (LyCORIS)"),
    ("oft_blocks", "OFT (LyCORIS)"),
    ("oft_diag", "OFT (LyCORIS)"),
    ("boft_", "BOFT (LyCORIS)"),
    (".a1.weight", "GLoRA (LyCORIS)"),
    (".on_input", "(IA)^3 (LyCORIS)"),
    (".diff", "full-weight difference (LyCORIS)"),
)
_LORA_MARKERS = ("lora_down", "lora_up", "lora_A", "lora_B", "lora.down", "lora.up", "lora_linear_layer")


def network_kind(keys: Iterable[str]) -> str | None:
    """``"LoRA"``, the name of another algorithm, or None when no known network tensor is there."""
    keys = list(keys)
    for marker, kind in _KINDS:
        if any(marker in key for key in keys):
            return kind
    if any(marker in key for key in keys for marker in _LORA_MARKERS):
        return LORA
    return None


def check_loadable(name: str, keys: Iterable[str]) -> None:
    """Raise :class:`UnsupportedModelError` unless ``name``'s tensors are a LoRA/LoCon diffusers can load."""
    kind = network_kind(keys)
    if kind == LORA:
        return
    if kind is None:
        raise UnsupportedModelError(f"LoRA {name!r}: the file holds no LoRA tensors (lora_down/lora_up or "
                                    "lora_A/lora_B)")
    raise UnsupportedModelError(f"LoRA {name!r}: {kind} is not supported; only LoRA and LoCon networks "
                                "(lora_down/lora_up or lora_A/lora_B tensors) can be applied")
