"""Textual-inversion embeddings for a job: which names a prompt uses, loaded through the model store.

A name is used when it stands as a whole word in a prompt (case-insensitively, as the tokenizer
reads it). Files for another architecture than the model's are skipped with a note, never a
crash; their names then stay plain text, as in A1111.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from pipelines.errors import DamagedModelError, ModelNotFoundError
from pipelines.models.architecture import Architecture
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord
from pipelines.models.store import ModelStore


@dataclass(frozen=True)
class EmbeddingUse:
    """The embeddings one job uses: vectors per text encoder, hashes for the infotext, notes on skipped ones."""

    vectors: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)  # name -> A1111's 12-digit TI hash
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why

    def infotext(self) -> dict[str, str]:
        """``TI hashes: "name: hash12, ..."`` when any embedding was used."""
        if not self.hashes:
            return {}
        return {"TI hashes": ", ".join(f"{name}: {digest}" for name, digest in self.hashes.items())}


def per_encoder(state: dict[str, Any], architecture: Architecture) -> list[torch.Tensor] | None:
    """The vectors of an embedding file, one 2-D tensor per text encoder of ``architecture``."""
    if architecture is Architecture.SDXL:
        if "clip_l" in state and "clip_g" in state:
            return [state["clip_l"].float(), state["clip_g"].float()]
        return None
    if "clip_g" in state:
        return None
    tensor = state.get("emb_params", state.get("string_to_param.*"))  # the latter: a flattened old .pt
    nested = state.get("string_to_param")
    if tensor is None and isinstance(nested, dict):
        tensor = nested.get("*")
    if tensor is None:
        tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
        tensor = tensors[0] if len(tensors) == 1 else None
    if tensor is None:
        return None
    tensor = tensor.float()
    return [tensor if tensor.ndim == 2 else tensor.reshape(-1, tensor.shape[-1])]


def compatible(record: ModelRecord, architecture: Architecture) -> str | None:
    """Why ``record`` cannot be used with ``architecture`` (None when it can, or cannot be told yet)."""
    if record.problem:
        return record.problem
    if record.arch is not None and record.arch is not architecture:
        return f"made for {record.arch.label}, the model is {architecture.label}"
    return None


def mentioned(name: str, texts: Iterable[str]) -> bool:
    pattern = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])", re.IGNORECASE)
    return any(pattern.search(text) for text in texts)


def embeddings_for(store: ModelStore, architecture: Architecture, texts: Iterable[str], *,
                   widths: list[int]) -> EmbeddingUse:
    """Load the embeddings ``texts`` name, for a model of ``architecture`` whose encoders are ``widths`` wide."""
    texts = list(texts)
    use = EmbeddingUse()
    for record in store.records(ModelType.EMBEDDING):
        if not mentioned(record.name, texts):
            continue
        problem = compatible(record, architecture)
        if problem is None:
            try:
                with store.use(record, model_type=ModelType.EMBEDDING) as loaded:
                    vectors = per_encoder(loaded.model, architecture)
            except (DamagedModelError, ModelNotFoundError) as exc:  # changed since listed: skipped, as A1111 does
                use.skipped[record.name] = str(exc)
                continue
            if vectors is None or [v.shape[-1] for v in vectors] != widths:
                got = [tuple(v.shape) for v in vectors] if vectors else "no vectors it can read"
                problem = f"its vectors ({got}) do not fit this model's text encoders (widths {widths})"
        if problem is not None:
            use.skipped[record.name] = problem
            continue
        use.vectors[record.name] = vectors
        use.hashes[record.name] = (store.hashed(record).sha256 or "")[:12]
    return use
