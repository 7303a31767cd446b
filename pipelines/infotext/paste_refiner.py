"""A1111's paste for the SDXL refiner: ``Refiner: name [hash10]`` and ``Refiner switch at`` onto
:class:`~pipelines.requests.Refiner`.

The refiner is on when the infotext names one (A1111's rule for its checkbox) and off otherwise.
With a store, the checkpoint is looked up as the image's own model is (name and hash); a refiner
that is not installed is noted and the field left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipelines.errors import ValidationError
from pipelines.infotext.model_match import match_checkpoint
from pipelines.requests.refiner import DEFAULT_SWITCH_AT, Refiner

if TYPE_CHECKING:
    from pipelines.models.store import ModelStore

_TITLE = re.compile(r"^(?P<name>.*?)\s*\[(?P<hash>[0-9a-fA-F]{8,64})\]$")


def split_title(title: str) -> tuple[str, str | None]:
    """``"name [hash]"`` -> (name, hash); a bare name -> (name, None)."""
    match = _TITLE.match(title.strip())
    return (match["name"], match["hash"].lower()) if match else (title.strip(), None)


def paste_refiner(params: Mapping[str, str], fields: dict[str, Any], notes: list[str],
                  store: ModelStore | None = None) -> None:
    """Set ``fields["refiner"]`` from ``params`` (None when the infotext names no refiner)."""
    title = params.get("Refiner", "").strip()
    if not title:
        fields["refiner"] = None
        return
    raw = params.get("Refiner switch at", str(DEFAULT_SWITCH_AT)).strip()
    name, wanted_hash = split_title(title)
    try:
        refiner = Refiner(name, float(raw))
        refiner.validate()
    except (ValueError, ValidationError) as exc:
        reason = exc.message if isinstance(exc, ValidationError) else f"{raw!r} is not a number"
        notes.append(f"Refiner {title!r} skipped: {reason}.")
        return
    if store is not None:
        match = match_checkpoint(store, name, wanted_hash)
        if not match.found:
            notes.append(f"Refiner skipped: {match.message}")
            return
        refiner = Refiner(match.name, refiner.switch_at)
    fields["refiner"] = refiner
