"""Typed, frozen settings for one Atelier process.

``launch.py`` is the only place that reads argv, the environment and the
settings file; it builds one :class:`Settings` and passes it down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DeviceName = Literal["auto", "cpu", "cuda", "mps"]
AttentionName = Literal["auto", "sdpa", "xformers", "sliced"]
MemoryMode = Literal["auto", "normal", "medvram", "lowvram"]
PrecisionName = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
# A1111's --precision values: "full" and "half" name a dtype; "autocast" (its default) lets the device decide.
PRECISION_ALIASES: dict[str, str] = {"full": "fp32", "half": "fp16", "autocast": "auto"}


def parse_precision(value: str) -> PrecisionName:
    """A ``--precision`` value (Atelier's or A1111's) as one of :data:`PRECISIONS`; ValueError names the choices."""
    name = PRECISION_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {value!r}; choose one of {', '.join([*PRECISIONS, *PRECISION_ALIASES])}")
    return name  # type: ignore[return-value]

# First-run model: Stable Diffusion 1.5 in diffusers layout (CreativeML OpenRAIL-M).
DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"

# Hub repos whose configs describe each architecture; single-file checkpoints
# without a sidecar config are built with these (config files only are fetched).
DEFAULT_REFERENCE_CONFIGS: dict[str, str] = {
    "sd1": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd1-inpaint": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "sd2": "stabilityai/stable-diffusion-2-1",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
    "sdxl-refiner": "stabilityai/stable-diffusion-xl-refiner-1.0",
}


# Folders under models/ that hold upscaler files (A1111's names, plus HAT).
UPSCALER_FOLDERS = ("ESRGAN", "RealESRGAN", "SwinIR", "HAT", "DAT", "ScuNET")


@dataclass(frozen=True)
class Settings:
    """Everything that shapes how this process runs; immutable once built."""

    data_dir: Path
    ckpt_dirs: tuple[Path, ...] = ()
    vae_dirs: tuple[Path, ...] = ()  # --vae-dir
    lora_dirs: tuple[Path, ...] = ()  # --lora-dir
    embeddings_dirs: tuple[Path, ...] = ()  # --embeddings-dir
    device: DeviceName = "auto"
    attention: AttentionName = "auto"
    memory_mode: MemoryMode = "auto"
    no_half: bool = False
    # --precision (A1111's full/half/autocast map to fp32/fp16/auto): pipelines/models/precision.py decides "auto"
    precision: PrecisionName = "auto"
    channels_last: bool = False  # --channels-last: UNet and VAE in torch.channels_last memory format
    compile: bool = False  # --compile: torch.compile of the UNet and the VAE decoder (pipelines/models/compile.py)
    compile_mode: str = "auto"  # --compile-mode: auto = "max-autotune" (CUDA graphs) on CUDA, "default" elsewhere
    # --compile-backend: inductor (kernels built for the machine: the fast one), eager (traced graphs on eager
    # kernels: checks a model compiles, in seconds), cudagraphs (eager kernels in CUDA graphs)
    compile_backend: str = "inductor"
    allow_pickle: bool = False
    no_hashing: bool = False  # --no-hashing (A1111's): checkpoints are never hashed, no Model hash in infotexts
    initial_model: str | None = None
    default_model: str = DEFAULT_MODEL
    reference_configs: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REFERENCE_CONFIGS))
    ram_budget_fraction: float = 0.5
    vram_budget_fraction: float = 0.8
    ram_budget_bytes: int | None = None
    vram_budget_bytes: int | None = None
    live_preview_every: int = 5
    torch_threads: int | None = None
    # Hugging Face Hub access; None means huggingface_hub's own default, which
    # already honours HF_HOME / HF_HUB_CACHE / HF_ENDPOINT / HF_HUB_OFFLINE.
    hf_cache_dir: Path | None = None
    hf_endpoint: str | None = None
    hub_offline: bool = False
    # Tiled upscaling (A1111's ESRGAN_tile / ESRGAN_tile_overlap defaults); the tile halves on out-of-memory.
    upscale_tile: int = 192
    upscale_tile_overlap: int = 8
    # Extensions: where they are installed (--extensions-dir; None: data_dir/extensions), the folder of
    # those shipped with Atelier (launch.py: the repo's extensions/), and A1111's switches.
    extensions_dir: Path | None = None
    builtin_extensions_dir: Path | None = None
    disable_all_extensions: bool = False  # --disable-all-extensions: built-in ones too
    disable_extra_extensions: bool = False  # --disable-extra-extensions: only those users installed
    # How far the server is reachable: installing, updating and enabling extensions are refused beyond
    # this machine unless --enable-insecure-extension-access (pipelines/extension_manager/access.py).
    listen: bool = False
    share: bool = False
    server_name: str | None = None
    enable_insecure_extension_access: bool = False
    # Uploads through the UI: the largest file Gradio accepts (larger ones get 413 before they are stored).
    max_upload_bytes: int = 100 * 2**20
    # Gradio's temporary folder (uploads, the copies of results pages show): every `temp_sweep_every_s`,
    # files unchanged for `temp_max_age_s` are deleted (webui/temp_sweeper.py); 0: never.
    temp_max_age_s: float = 86400.0
    temp_sweep_every_s: float = 3600.0
    # Jobs that may wait for the device at once (UI, API, CLI, scripts together); past it a new job is refused
    # with "queue full, try again" (503 + Retry-After in the API). The running job is not counted.
    max_queued_jobs: int = 16

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def checkpoint_dirs(self) -> tuple[Path, ...]:
        """Folders scanned for checkpoints: ``models/Stable-diffusion`` then ``--ckpt-dir``."""
        return (self.models_dir / "Stable-diffusion", *self.ckpt_dirs)

    @property
    def vae_folders(self) -> tuple[Path, ...]:
        """Folders scanned for VAEs: ``models/VAE`` then ``--vae-dir``."""
        return (self.models_dir / "VAE", *self.vae_dirs)

    @property
    def taesd_folders(self) -> tuple[Path, ...]:
        """Folders scanned for tiny autoencoders (TAESD): A1111's ``models/VAE-taesd``, then the VAE folders."""
        return (self.models_dir / "VAE-taesd", *self.vae_folders)

    @property
    def lora_folders(self) -> tuple[Path, ...]:
        """Folders scanned for LoRAs: ``models/Lora`` (A1111 also reads ``models/LyCORIS``) then ``--lora-dir``."""
        return (self.models_dir / "Lora", self.models_dir / "LyCORIS", *self.lora_dirs)

    @property
    def embedding_folders(self) -> tuple[Path, ...]:
        """Folders scanned for textual-inversion embeddings: ``embeddings`` then ``--embeddings-dir``."""
        return (self.data_dir / "embeddings", *self.embeddings_dirs)

    @property
    def upscaler_dirs(self) -> tuple[Path, ...]:
        """Folders scanned for upscaler model files (downloads go to the first)."""
        return tuple(self.models_dir / name for name in UPSCALER_FOLDERS)

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def styles_file(self) -> Path:
        """A1111's ``styles.csv`` (name, prompt, negative_prompt)."""
        return self.data_dir / "styles.csv"

    @property
    def extensions_folder(self) -> Path:
        """Where extensions are installed: ``--extensions-dir``, else ``data_dir/extensions``."""
        return self.extensions_dir or self.data_dir / "extensions"

    @property
    def hash_cache_file(self) -> Path:
        return self.data_dir / "cache.json"

    def data_folders(self) -> list[Path]:
        """Folders created at start-up so users know where to drop files."""
        m = self.models_dir
        return [
            m / "Stable-diffusion",
            m / "ESRGAN",
            m / "Lora",
            m / "VAE",
            self.data_dir / "embeddings",
            self.outputs_dir,
        ]
