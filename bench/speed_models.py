"""The speed benchmark's models on disk, and evicting them from the page cache.

* :func:`ensure_models`: a full-size SD1.5-architecture checkpoint with random weights (UNet 860M,
  AutoencoderKL 84M, CLIP ViT-L/14 text encoder 123M, configs written below as in the SD1.5 repository's
  ``*/config.json``) in diffusers' folder layout, and a full-size random ``AutoencoderTiny`` (TAESD's
  architecture), built once under the work folder and reused; ``tiny=True`` builds the tests' tiny
  models instead. Nothing is downloaded: the tokenizer is the tests' hand-written CLIP tokenizer (a
  small vocabulary, ``model_max_length`` 77, every prompt padded to 77 tokens as SD does), which is all
  speed depends on; the text encoder keeps CLIP-L's 49,408-token embedding table.
* :func:`evict` / :func:`resident_fraction`: drop a folder's files from the page cache (``os.sync`` then
  ``posix_fadvise(DONTNEED)`` on every file; ``/proc/sys/vm/drop_caches`` only when asked) and check it
  worked (``mincore``).

Speed does not depend on the weights' values, so random weights measure what a real SD1.5 checkpoint
costs; the images are noise-like, and every contender must still produce the same one.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.sd_configs import CLIP_L as SD15_TEXT
from bench.sd_configs import SD15_UNET, SD15_VAE

MODEL_NAME = "sd15-random"  # the checkpoint folder's name: what Atelier lists and the REST API selects
TINY_NAME = "tiny-sd15"
DONE_MARK = ".complete"  # written last: a folder without it is rebuilt

TINY_TAESD = dict(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                  num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1))


@dataclass(frozen=True)
class Models:
    """The checkpoint folder (in ``ckpt_parent``, as Atelier's ``--ckpt-dir``), its name and the TAESD folder."""

    name: str
    folder: Path
    taesd: Path
    tiny: bool

    @property
    def ckpt_parent(self) -> Path:
        return self.folder.parent

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in files_under(self.folder))


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def ensure_models(work_dir: Path, *, tiny: bool) -> Models:
    """Build what is missing under ``work_dir`` (minutes for the full size, once); reuse the rest."""
    root = work_dir / ("tiny" if tiny else "full")
    folder = root / "checkpoints" / (TINY_NAME if tiny else MODEL_NAME)
    taesd = root / "taesd"
    if not (folder / DONE_MARK).exists():
        t0 = time.perf_counter()
        print(f"building the {'tiny' if tiny else 'full-size SD1.5'} random checkpoint in {folder} ...", flush=True)
        _build_tiny(folder) if tiny else _build_sd15(folder)
        (folder / DONE_MARK).write_text("ok\n")
        print(f"  built in {time.perf_counter() - t0:.0f}s", flush=True)
    if not (taesd / DONE_MARK).exists():
        _build_taesd(taesd, tiny=tiny)
        (taesd / DONE_MARK).write_text("ok\n")
    return Models(folder.name, folder, taesd, tiny)


def _build_tiny(folder: Path) -> None:
    from tests.support.tiny_models import save_sd15_folder

    save_sd15_folder(folder, seed=0)


def _build_sd15(folder: Path) -> None:
    """Full-size SD1.5 components with random weights (torch's default init, seed 0), fp32 safetensors."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from tests.support.tiny_models import tokenizer_vocab, write_clip_tokenizer

    vocab, _ = tokenizer_vocab()
    eos = vocab["<|endoftext|>"]
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD15_UNET)
    vae = AutoencoderKL(**SD15_VAE)
    text = CLIPTextModel(CLIPTextConfig(**SD15_TEXT, bos_token_id=vocab["<|startoftext|>"], eos_token_id=eos,
                                        pad_token_id=eos))
    tokenizer = CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(folder / "tokenizer")))
    scheduler = PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", skip_prk_steps=True, set_alpha_to_one=False,
                              steps_offset=1, prediction_type="epsilon")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    write_clip_tokenizer(folder / "tokenizer")  # the hand-written legacy files, as the tests' folders have


def _build_taesd(folder: Path, *, tiny: bool) -> None:
    """A random ``AutoencoderTiny``: TAESD's architecture at full size (diffusers' defaults), or a tiny one."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(3)
    AutoencoderTiny(**(TINY_TAESD if tiny else {})).save_pretrained(str(folder), safe_serialization=True)


# ------------------------------------------------------------------------------- page cache
def evict(folder: Path, *, drop_caches: bool = False) -> float:
    """Drop ``folder``'s files from the page cache; returns the fraction still resident afterwards."""
    os.sync()  # dirty pages are not dropped
    for path in files_under(folder):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    if drop_caches:
        try:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        except OSError as exc:
            print(f"  (could not write /proc/sys/vm/drop_caches: {exc}; fadvise only)")
    return resident_fraction(folder)


def resident_fraction(folder: Path) -> float:
    """Fraction of ``folder``'s bytes in the page cache (``mincore`` over a private mapping), or -1."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        page = mmap.PAGESIZE
        resident = total = 0
        for path in files_under(folder):
            size = path.stat().st_size
            if size == 0:
                continue
            pages = (size + page - 1) // page
            with path.open("rb") as fh:
                # a private mapping is writable, which ctypes needs to take its address; nothing is written
                mm = mmap.mmap(fh.fileno(), size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
                try:
                    vec = (ctypes.c_ubyte * pages)()
                    anchor = ctypes.c_char.from_buffer(mm)
                    failed = libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(size), vec)
                    del anchor
                finally:
                    mm.close()
                if failed:
                    return -1.0
                resident += sum(b & 1 for b in bytes(vec))
                total += pages
        return resident / total if total else 0.0
    except (OSError, AttributeError, TypeError, ValueError, BufferError):
        return -1.0
