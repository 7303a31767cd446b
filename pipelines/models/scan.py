"""Finding models on disk and in the Hugging Face cache, one function per kind of folder.

Scanning reads directory listings, JSON configs and safetensors headers only; hashes are
computed later, when a model is first loaded or asked for.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import AtelierError
from pipelines.models.architecture import (
    Architecture,
    detect_folder,
    detect_single_file,
    is_bare_unet,
    read_safetensors_shapes,
)
from pipelines.models.families import file_family, folder_family
from pipelines.models.header import read_header
from pipelines.models.identify import embedding_architecture, is_lora, is_vae, lora_architecture
from pipelines.models.integrity import folder_damage, safetensors_damage
from pipelines.models.kinds import ModelType
from pipelines.models.prediction import stated_prediction
from pipelines.models.refs import ModelRecord, ModelRef, SourceKind
from pipelines.models.taesd_files import folder_is_taesd, is_taesd, taesd_architecture

log = logging.getLogger(__name__)
SAFE_SUFFIXES = (".safetensors",)
CHECKPOINT_PICKLES = (".ckpt", ".pt", ".bin")
NETWORK_PICKLES = (".pt", ".ckpt", ".bin")  # LoRA, VAE, embedding files A1111 accepts
UPSCALER_PICKLES = (".pth", ".pt")
SIDECAR_SUFFIX = ".config"  # foo.safetensors + foo.config/ (diffusers configs, no weights)
_VAE_CLASSES = {"AutoencoderKL"}  # AutoencoderTiny folders are TAESDs (scan_taesd)
CHECKPOINT_VAE_TAG = ".vae"  # NAME.vae.safetensors beside checkpoint NAME: its VAE (A1111's "Automatic")


def is_checkpoint_vae(path: Path) -> bool:
    """``NAME.vae.safetensors`` (``.vae.pt``/``.vae.ckpt``): a VAE kept beside a checkpoint, not a checkpoint."""
    return path.stem.lower().endswith(CHECKPOINT_VAE_TAG)


@dataclass
class ScanResult:
    """Records found, and pickled files left out for want of ``--allow-pickle`` (by model type)."""

    records: list[ModelRecord] = field(default_factory=list)
    skipped_pickles: dict[ModelType, list[Path]] = field(default_factory=dict)

    def skip(self, model_type: ModelType, path: Path) -> None:
        self.skipped_pickles.setdefault(model_type, []).append(path)


def walk(folder: Path) -> list[Path]:
    """Every path below ``folder``, following symlinked folders (users link big model
    folders in from other disks) without looping on a link back up the tree."""
    out: list[Path] = []
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        base = Path(root)
        out += [base / d for d in dirs] + [base / f for f in files]
    return sorted(out)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in walk(path) if f.is_file())


def _file_ref(path: Path, model_type: ModelType) -> ModelRef:
    return ModelRef(SourceKind.SINGLE_FILE, str(path.resolve()), model_type)


# ---- checkpoints ---------------------------------------------------------------------------
def _checkpoint_file(path: Path, result: ScanResult, allow_pickle: bool) -> None:
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    base = dict(ref=_file_ref(path, ModelType.CHECKPOINT), name=path.stem, path=path, size_bytes=path.stat().st_size,
                config_path=sidecar if sidecar.is_dir() else None)
    header = read_header(path)  # empty for a pickle, whose yaml and name still count
    base.update(family=file_family(path.stem, header), prediction=stated_prediction(path, header))
    if path.suffix in CHECKPOINT_PICKLES:
        if not allow_pickle:
            result.skip(ModelType.CHECKPOINT, path)
            return
        result.records.append(ModelRecord(**base))
        return
    damage = safetensors_damage(path)  # cut short, or not safetensors at all: say so, not a parser's error
    if damage:
        result.records.append(ModelRecord(**base, problem=damage))
        return
    try:
        result.records.append(ModelRecord(**base, kind=detect_single_file(path)))
    except AtelierError as exc:
        result.records.append(ModelRecord(**base, problem=str(exc)))
    except Exception as exc:  # a truncated or foreign file must not break listing
        result.records.append(ModelRecord(**base, problem=f"{path.name}: unreadable checkpoint ({exc})"))


def _pipeline_folder(path: Path, *, source: SourceKind, location: str, name: str,
                     sha256: str | None = None) -> ModelRecord:
    """A diffusers pipeline folder: a checkpoint, or the SD x4 upscaler (listed among the upscalers)."""
    try:
        kind = detect_folder(path, name_hint=name)
    except AtelierError as exc:
        return ModelRecord(ref=ModelRef(source, location), name=name, path=path, problem=str(exc))
    model_type = ModelType.SD_X4_UPSCALER if kind.upscaler else ModelType.CHECKPOINT
    model_type = ModelType.IMAGE_VARIATION if kind.image_variation else model_type
    return ModelRecord(ref=ModelRef(source, location, model_type), name=name, kind=kind, path=path, sha256=sha256,
                       size_bytes=folder_size(path), family=folder_family(path, name),
                       problem=folder_damage(path, name))


def scan_checkpoint_dir(folder: Path, result: ScanResult, *, allow_pickle: bool) -> None:
    if not folder.is_dir():
        return
    paths = walk(folder)
    model_dirs = {p.parent for p in paths if p.name == "model_index.json"}
    model_dirs |= {p.parent for p in paths if p.name == "scheduler_config.json" and is_bare_unet(p.parent)}
    for path in paths:
        inside_model = any(parent in model_dirs for parent in path.parents)
        in_sidecar = any(part.endswith(SIDECAR_SUFFIX) for part in path.relative_to(folder).parts)
        if inside_model or in_sidecar:
            continue  # component files of a diffusers folder, or a sidecar config
        if path in model_dirs:
            result.records.append(_pipeline_folder(path, source=SourceKind.FOLDER, location=str(path.resolve()),
                                                   name=path.name))
        elif path.is_file() and path.suffix in SAFE_SUFFIXES + CHECKPOINT_PICKLES and is_checkpoint_vae(path):
            if path.suffix in SAFE_SUFFIXES or allow_pickle:
                result.records.append(_network_file(path, ModelType.VAE))
            else:
                result.skip(ModelType.VAE, path)
        elif path.is_file() and path.suffix in SAFE_SUFFIXES + CHECKPOINT_PICKLES:
            _checkpoint_file(path, result, allow_pickle)


# ---- LoRAs, embeddings, VAEs, upscalers: single files ------------------------------------------
def _network_file(path: Path, model_type: ModelType) -> ModelRecord:
    """A LoRA, embedding or VAE file; its architecture from the safetensors header when it has one."""
    base = dict(ref=_file_ref(path, model_type), name=path.stem, path=path, size_bytes=path.stat().st_size)
    if path.suffix not in SAFE_SUFFIXES:
        return ModelRecord(**base)  # pickled (opted in): the header cannot be read without unpickling
    damage = safetensors_damage(path)
    if damage:
        return ModelRecord(**base, problem=damage)
    try:
        shapes = read_safetensors_shapes(path)
    except Exception as exc:
        return ModelRecord(**base, problem=f"{path.name}: unreadable safetensors file ({exc})")
    if model_type is ModelType.LORA:
        if not is_lora(shapes):
            return ModelRecord(**base, problem=f"{path.name}: no LoRA/LyCORIS tensors in this file")
        return ModelRecord(**base, arch=lora_architecture(shapes))
    if model_type is ModelType.EMBEDDING:
        return ModelRecord(**base, arch=embedding_architecture(shapes))
    if model_type is ModelType.TAESD:
        if not is_taesd(shapes):
            return ModelRecord(**base, problem=f"{path.name}: not a TAESD (no AutoencoderTiny decoder.layers tensors)")
        return ModelRecord(**base, arch=taesd_architecture(path.stem))
    if not is_vae(shapes):
        return ModelRecord(**base, problem=f"{path.name}: not a VAE (no decoder weights)")
    return ModelRecord(**base)


def scan_files(folders: tuple[Path, ...], model_type: ModelType, result: ScanResult, *, allow_pickle: bool) -> None:
    """Single-file models of one type in ``folders`` (and their subfolders); the first name found wins."""
    pickles = UPSCALER_PICKLES if model_type is ModelType.UPSCALER else NETWORK_PICKLES
    seen: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        paths = walk(folder)
        diffusers_dirs = {p.parent for p in paths if p.name == "config.json"}  # a folder is one model, not files
        for path in paths:
            suffix = path.suffix.lower()
            if not path.is_file() or suffix not in SAFE_SUFFIXES + pickles or path.stem in seen:
                continue
            if any(parent in diffusers_dirs for parent in path.parents):
                continue
            if suffix in pickles and not allow_pickle:
                result.skip(model_type, path)
                continue
            if model_type is ModelType.VAE and _taesd_file(path):
                continue  # a TAESD kept in models/VAE: listed by scan_taesd
            seen.add(path.stem)
            if model_type is ModelType.UPSCALER:
                result.records.append(ModelRecord(ref=_file_ref(path, model_type), name=path.stem, path=path,
                                                  size_bytes=path.stat().st_size))
            else:
                result.records.append(_network_file(path, model_type))
    for folder in folders if model_type is ModelType.VAE else ():
        for config in (folder.glob("*/config.json") if folder.is_dir() else ()):
            if _class_name(config) in _VAE_CLASSES:  # a diffusers-layout VAE folder
                ref = ModelRef(SourceKind.FOLDER, str(config.parent.resolve()), ModelType.VAE)
                result.records.append(ModelRecord(ref=ref, name=config.parent.name, path=config.parent,
                                                  size_bytes=folder_size(config.parent), arch=_vae_arch(config)))
    skipped = result.skipped_pickles.get(model_type)
    if skipped:
        log.info("skipping %d pickled %s file(s) (start with --allow-pickle to load them): %s", len(skipped),
                 model_type.label, ", ".join(p.name for p in skipped))


def _taesd_file(path: Path) -> bool:
    try:
        return path.suffix == ".safetensors" and is_taesd(read_safetensors_shapes(path))
    except Exception:  # unreadable: the VAE scan reports it
        return False


def scan_taesd(folders: tuple[Path, ...], result: ScanResult) -> None:
    """Tiny autoencoders in ``folders`` (``models/VAE-taesd``, then the VAE folders): diffusers ``AutoencoderTiny``
    folders, and single ``.safetensors`` files of one (pickles are never read: A1111's ``.pth`` files are
    skipped with a note)."""
    seen: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        for config in sorted([folder / "config.json", *folder.glob("*/config.json")]):
            if config.is_file() and folder_is_taesd(config) and config.parent.name not in seen:
                seen.add(config.parent.name)
                ref = ModelRef(SourceKind.FOLDER, str(config.parent.resolve()), ModelType.TAESD)
                result.records.append(ModelRecord(ref=ref, name=config.parent.name, path=config.parent,
                                                  size_bytes=folder_size(config.parent),
                                                  arch=taesd_architecture(config.parent.name)))
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix in (".pth", ".pt") and "taesd" in path.name.lower():
                result.skip(ModelType.TAESD, path)
            elif path.is_file() and path.suffix == ".safetensors" and path.stem not in seen and _taesd_file(path):
                seen.add(path.stem)
                result.records.append(_network_file(path, ModelType.TAESD))
    if result.skipped_pickles.get(ModelType.TAESD):
        log.info("TAESD: pickled files are not read (%s); use the diffusers repos madebyollin/taesd or "
                 "madebyollin/taesdxl", ", ".join(p.name for p in result.skipped_pickles[ModelType.TAESD]))


def _vae_arch(config: Path) -> Architecture | None:
    """SDXL for a diffusers VAE with the SDXL VAE's scaling factor (0.13025); SD 1.x and 2.x share one VAE
    (0.18215), so that one stays unknown rather than being marked as not fitting SD 2.x."""
    try:
        scaling = json.loads(config.read_text()).get("scaling_factor")
    except (OSError, ValueError, AttributeError):
        return None
    return Architecture.SDXL if isinstance(scaling, float) and abs(scaling - 0.13025) < 1e-6 else None


def _class_name(config: Path) -> str | None:
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return None
    return data.get("_class_name") if isinstance(data, dict) else None


# ---- the Hugging Face cache --------------------------------------------------------------------
def _blob_sha256(snapshot: Path) -> str | None:
    """In the HF cache a weight file is a link to a blob named by its sha256."""
    for rel in ("unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors"):
        link = snapshot / rel
        if link.exists():
            name = link.resolve().name
            if re.fullmatch(r"[0-9a-f]{64}", name):
                return name
    return None


def main_snapshot(repo_path: Path) -> Path | None:
    ref_file = repo_path / "refs" / "main"
    if ref_file.is_file():
        snap = repo_path / "snapshots" / ref_file.read_text().strip()
        if snap.is_dir():
            return snap
    snaps = sorted((repo_path / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime)
    return snaps[-1] if snaps else None


def scan_hub_cache(cache: Path, result: ScanResult) -> None:
    """Diffusers pipelines (checkpoints, the SD x4 upscaler) and diffusers VAE repos in the HF cache."""
    if not cache.is_dir():
        return
    for repo_path in sorted(cache.glob("models--*")):
        repo_id = repo_path.name[len("models--"):].replace("--", "/")
        snapshot = main_snapshot(repo_path)
        if snapshot is None:
            continue
        if (snapshot / "model_index.json").exists() or is_bare_unet(snapshot):
            result.records.append(_pipeline_folder(snapshot, source=SourceKind.HUB, location=repo_id, name=repo_id,
                                                   sha256=_blob_sha256(snapshot)))
        elif folder_is_taesd(snapshot / "config.json"):
            result.records.append(ModelRecord(ref=ModelRef(SourceKind.HUB, repo_id, ModelType.TAESD), name=repo_id,
                                              path=snapshot, size_bytes=folder_size(snapshot),
                                              arch=taesd_architecture(repo_id)))
        elif _class_name(snapshot / "config.json") in _VAE_CLASSES:
            ref = ModelRef(SourceKind.HUB, repo_id, ModelType.VAE)
            result.records.append(ModelRecord(ref=ref, name=repo_id, path=snapshot, size_bytes=folder_size(snapshot),
                                              arch=_vae_arch(snapshot / "config.json")))
