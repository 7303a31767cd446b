"""Which installed VAE an infotext names (``VAE`` = its file name, ``VAE hash`` = sha256[:10], as A1111 writes).

Looked up by name first, then by a hash already known (this run or ``cache.json``); nothing here hashes
a whole file. A VAE that is not installed leaves the SD VAE setting as it is, with a note saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipelines.errors import ModelNotFoundError
from pipelines.infotext.model_match import ModelMatch
from pipelines.models.kinds import ModelType
from pipelines.networks.vae import vae_title

if TYPE_CHECKING:
    from pipelines.models.store import ModelStore


def match_vae(store: ModelStore, params: Mapping[str, str]) -> ModelMatch:
    """The installed VAE an image's infotext names (``found`` with its ``sd_vae`` value as ``name``)."""
    wanted_name = (params.get("VAE") or "").strip() or None
    wanted_hash = (params.get("VAE hash") or "").strip().lower() or None
    if wanted_name is None and wanted_hash is None:
        return ModelMatch(False, kind="VAE")
    record = None
    if wanted_name is not None:
        try:
            record = store.find(wanted_name, ModelType.VAE)
        except ModelNotFoundError:
            record = None
    if record is None and wanted_hash is not None:
        record = next((r for r in store.records(ModelType.VAE)
                       if (store.known_sha256(r) or "").startswith(wanted_hash)), None)
    if record is not None and not record.problem:
        title = vae_title(record)
        return ModelMatch(True, title, wanted_name, wanted_hash, f"SD VAE set to {title}.", kind="VAE")
    label = " ".join(p for p in (wanted_name, f"[{wanted_hash}]" if wanted_hash else None) if p)
    return ModelMatch(False, None, wanted_name, wanted_hash,
                      f"This image was decoded with VAE {label}; it is not installed (put it in models/VAE), "
                      "so the SD VAE setting is kept.", kind="VAE")
