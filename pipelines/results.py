"""What a generation returns: images, their seeds, infotexts and saved paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GeneratedImage:
    image: Any  # PIL.Image.Image
    seed: int
    infotext: str
    path: Path | None = None  # where it was saved, when saving was on


@dataclass(frozen=True)
class GenerationResult:
    """One request's outcome; ``info`` mirrors A1111's ``Processed.js()`` keys."""

    images: list[GeneratedImage]
    info: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    notices: tuple[str, ...] = ()  # what the user should know about how the job ran (e.g. a lower-memory retry)
    grid: GeneratedImage | None = None  # the batch as one picture (A1111's grid), when the job made more than one

    @property
    def paths(self) -> list[Path]:
        return [img.path for img in self.images if img.path is not None]
