"""Names for models: where a model comes from (ref) and what is known of it (record)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.models.architecture import Architecture, ModelKind
from pipelines.models.families import ModelFamily, ModelFamilyHint, hint_for
from pipelines.models.kinds import ModelType

if TYPE_CHECKING:
    from pipelines.models.prediction import PredictionDecision


class SourceKind(StrEnum):
    HUB = "hub"  # a Hub repo id in diffusers layout, kept in the HF cache
    FOLDER = "folder"  # a local diffusers-layout folder
    SINGLE_FILE = "single_file"  # one original-layout checkpoint file


@dataclass(frozen=True)
class ModelRef:
    """Where a model lives; also its cache key."""

    kind: SourceKind
    location: str  # repo id for HUB, absolute path otherwise
    model_type: ModelType = ModelType.CHECKPOINT

    @property
    def key(self) -> str:
        return f"{self.model_type.value}:{self.kind.value}:{self.location}"


@dataclass(frozen=True)
class ModelRecord:
    """One model the store knows about, installed or downloadable, of any :class:`ModelType`."""

    ref: ModelRef
    name: str  # A1111's "model_name": file stem, folder name or repo id
    kind: ModelKind | None = None  # checkpoints: architecture and variant; None while unknown (not downloaded)
    installed: bool = True
    path: Path | None = None  # file, folder or HF snapshot
    config_path: Path | None = None  # sidecar config folder for single files
    sha256: str | None = None
    size_bytes: int = 0
    problem: str | None = None  # why it cannot be loaded, when known
    arch: Architecture | None = None  # LoRAs, embeddings, VAEs: the architecture their tensors fit, if known
    addnet_hash: str | None = None  # LoRAs: sha256 of the bytes after the safetensors header (A1111, Civitai)
    family: ModelFamily | None = None  # checkpoints: Turbo, LCM, ... (suggested steps/CFG), when recognised
    prediction: PredictionDecision | None = None  # single-file checkpoints: epsilon or v, once decided

    @property
    def type(self) -> ModelType:
        return self.ref.model_type

    @property
    def architecture(self) -> Architecture | None:
        return self.kind.architecture if self.kind is not None else self.arch

    @property
    def short_hash(self) -> str | None:
        return self.sha256[:10] if self.sha256 else None

    @property
    def title(self) -> str:
        """A1111's checkpoint title: ``name [hash10]`` once hashed."""
        return f"{self.name} [{self.short_hash}]" if self.short_hash else self.name

    @property
    def family_hint(self) -> ModelFamilyHint | None:
        """The steps/CFG/sampler a Turbo, LCM, Lightning or Hyper checkpoint is made for; None otherwise."""
        return hint_for(self.name, self.family, turbo=self.kind is not None and self.kind.turbo)

    def with_hash(self, sha256: str) -> ModelRecord:
        return replace(self, sha256=sha256)
