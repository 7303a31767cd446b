"""The extra-networks panel's model cards (A1111's "Extra networks"), without any UI.

A card is one installed model of one panel tab: its name, size, architecture, preview image
(``NAME.png`` or ``NAME.preview.png`` beside the file, as A1111 looks for them), whether it was made
for another architecture than the selected checkpoint, and why it cannot be used, if known.

Clicking a card in A1111 toggles its text in the active prompt box: a LoRA card adds
``<lora:NAME:1>`` (A1111's default multiplier 1) and, when that LoRA is already in the prompt at
any weight, removes it instead; an embedding card does the same with the embedding's name. Text
is appended after a space (A1111's default separator). The LoRA name written is the file name,
the one ``<lora:...>`` resolves (:meth:`ModelStore.find`), not the training alias
(``ss_output_name``), which is shown in the details.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pipelines.models.architecture import Architecture
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord, SourceKind
from pipelines.models.store import ModelStore
from pipelines.networks.metadata import alias, file_metadata

__all__ = ["NetworkCard", "NetworkTab", "build_cards", "card_details", "find_card_record", "preview_path",
           "prompt_text", "size_text", "toggle_in_prompt"]

PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")  # A1111 also reads these beside the model


class NetworkTab(StrEnum):
    """The panel's tabs, in A1111's order."""

    CHECKPOINTS = "checkpoints"
    TEXTUAL_INVERSION = "textual_inversion"
    LORA = "lora"
    VAE = "vae"

    @property
    def label(self) -> str:
        return {"checkpoints": "Checkpoints", "textual_inversion": "Textual Inversion", "lora": "LoRA",
                "vae": "VAE"}[self.value]

    @property
    def model_type(self) -> ModelType:
        return {"checkpoints": ModelType.CHECKPOINT, "textual_inversion": ModelType.EMBEDDING,
                "lora": ModelType.LORA, "vae": ModelType.VAE}[self.value]

    @property
    def inserts_text(self) -> bool:
        """A click writes into the prompt (LoRA, embedding); otherwise it picks a model (checkpoint, VAE)."""
        return self in (NetworkTab.LORA, NetworkTab.TEXTUAL_INVERSION)


@dataclass(frozen=True)
class NetworkCard:
    """One model as the panel shows it."""

    tab: NetworkTab
    name: str
    size_bytes: int
    architecture: Architecture | None
    preview: Path | None  # an image beside the model file, if there is one
    other_architecture: bool  # made for another architecture than the selected checkpoint
    problem: str | None = None  # why it cannot be used, when the scan found out

    @property
    def size(self) -> str:
        return size_text(self.size_bytes)

    @property
    def architecture_label(self) -> str:
        return self.architecture.label if self.architecture is not None else "unknown"


def size_text(size_bytes: int) -> str:
    """A file size as the panel shows it: ``512 KiB``, ``1.9 MiB``, ``6.46 GiB`` (empty when unknown)."""
    if size_bytes <= 0:
        return ""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.{2 if unit == 'GiB' else 1}f} {unit}"
    return f"{max(1, round(size_bytes / 1024))} KiB"


def preview_path(record: ModelRecord) -> Path | None:
    """``NAME.png`` (or .jpg/.jpeg/.webp), else ``NAME.preview.png`` (...) beside a local model file or folder."""
    if record.path is None or record.ref.kind is SourceKind.HUB:
        return None
    base = record.path.with_suffix("") if record.path.is_file() else record.path
    for stem in (base.name, f"{base.name}.preview"):
        for suffix in PREVIEW_SUFFIXES:
            candidate = base.with_name(stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def _search_text(record: ModelRecord, folders: tuple[Path, ...]) -> str:
    """The name and the path under the model folder (A1111 searches subfolders too: "styles/ink")."""
    if record.path is None or record.ref.kind is SourceKind.HUB:
        return f"{record.name} {record.ref.location}".lower()
    shown = record.path.name
    for folder in folders:
        if record.path.is_relative_to(folder):
            shown = record.path.relative_to(folder).as_posix()
            break
    return f"{record.name} {shown}".lower()


def build_cards(store: ModelStore, tab: NetworkTab, current: Architecture | None,
                search: str = "") -> list[NetworkCard]:
    """The installed models of ``tab`` whose name or path (under its model folder) holds every word of
    ``search`` (case-insensitive), sorted by name.

    ``current`` is the selected checkpoint's architecture (None while unknown): a LoRA, embedding or
    VAE known to be made for another one is marked. Checkpoints are never marked: picking one switches.
    """
    cards = []
    folders = store.registry.folders(tab.model_type)
    words = search.lower().split()
    for record in store.records(tab.model_type):
        if not record.installed or not all(word in _search_text(record, folders) for word in words):
            continue
        arch = record.architecture
        other = (tab is not NetworkTab.CHECKPOINTS and arch is not None and current is not None and arch is not current)
        cards.append(NetworkCard(tab, record.name, record.size_bytes, arch, preview_path(record), other,
                                 record.problem))
    return sorted(cards, key=lambda card: card.name.lower())


def find_card_record(store: ModelStore, tab: NetworkTab, name: str) -> ModelRecord:
    """The record a card names; raises :class:`~pipelines.errors.ModelNotFoundError` listing close names."""
    return store.find(name, tab.model_type)


def card_details(store: ModelStore, tab: NetworkTab, name: str) -> dict[str, Any]:
    """What a card's details show: the file, its size and architecture, and the training metadata
    (kohya's ``ss_*`` keys from the safetensors header) when the file has any."""
    record = find_card_record(store, tab, name)
    details: dict[str, Any] = {"name": record.name, "type": tab.model_type.label,
                               "architecture": record.architecture.label if record.architecture else "unknown",
                               "size": size_text(record.size_bytes),
                               "file": str(record.path) if record.path else record.ref.location}
    if record.problem:
        details["problem"] = record.problem
    if record.sha256:
        details["sha256"] = record.sha256
    if record.path is not None and record.path.is_file() and tab is not NetworkTab.CHECKPOINTS:
        metadata = file_metadata(record.path)
        if tab is NetworkTab.LORA:
            details["alias"] = alias(record.name, metadata)
        training = {key: value for key, value in sorted(metadata.items()) if key.startswith("ss_")}
        if training:
            details["training metadata"] = training
    return details


def prompt_text(tab: NetworkTab, name: str, multiplier: float = 1.0) -> str:
    """What a card writes into the prompt: ``<lora:NAME:1>`` for a LoRA, the name of an embedding."""
    if tab is NetworkTab.LORA:
        weight = int(multiplier) if float(multiplier).is_integer() else multiplier
        return f"<lora:{name}:{weight}>"
    if tab is NetworkTab.TEXTUAL_INVERSION:
        return name
    raise ValueError(f"a {tab.label} card selects a model; it writes nothing into the prompt")


def _pattern(tab: NetworkTab, name: str) -> re.Pattern[str]:
    """Where the card's text already is in a prompt: its LoRA tag at any weight, or the embedding's name as a word."""
    if tab is NetworkTab.LORA:
        return re.compile(rf"[ \t]*<(?:lora|lyco):{re.escape(name)}(?::[^>]*)?>")
    return re.compile(rf"[ \t]*(?<![\w-]){re.escape(name)}(?![\w-])")


def toggle_in_prompt(prompt: str, tab: NetworkTab, name: str) -> str:
    """``prompt`` with the card's text appended after a space, or, when it is already there, taken out
    (every occurrence, with the spaces before it: A1111's second click undoes the first)."""
    pattern = _pattern(tab, name)
    if pattern.search(prompt):
        removed = pattern.sub("", prompt)
        return removed if prompt[:1].isspace() else removed.lstrip(" \t")
    text = prompt_text(tab, name)
    if not prompt.strip():
        return text
    return prompt + text if prompt[-1].isspace() else f"{prompt} {text}"
