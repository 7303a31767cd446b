"""A1111-style options ("settings"): typed, validated, persisted in ``data_dir/config.json``.

Each option Atelier knows is an :class:`OptionSpec` with a type and one of four behaviours:

- ``honoured``: changing it changes what Atelier does (``sd_model_checkpoint`` swaps the model);
- ``stored``: accepted and persisted, with no effect yet (``sd_checkpoints_limit``);
- ``fixed``: Atelier works one way only; the current value is accepted (so a client can post back
  what it read), any other value is refused naming the key (``CLIP_stop_at_last_layers``);
- ``derived``: reported from the running state, ignored when posted (``sd_checkpoint_hash``).

Keys Atelier does not know are kept, persisted and echoed back, as A1111 does with its config.
The file is rewritten atomically (temporary file + rename), so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pipelines.errors import ValidationError
from pipelines.extension_manager.index import DEFAULT_INDEX_URL
from pipelines.files import write_text_atomically
from pipelines.progress import ProgressFn, ignore_progress
from pipelines.requests.base import EMPHASIS_MODES
from pipelines.requests.decoders import DECODE_METHODS, PREVIEW_METHODS
from pipelines.settings import Settings

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
Behaviour = Literal["honoured", "stored", "fixed", "derived"]


@dataclass(frozen=True)
class OptionSpec:
    key: str
    kind: type  # bool, int, float or str
    default: Any
    label: str
    behaviour: Behaviour = "honoured"
    choices: tuple[Any, ...] | None = None


class CheckpointSource(Protocol):
    """What the options need of :class:`~pipelines.selection.CheckpointSelection`."""

    @property
    def current(self) -> str: ...

    def select(self, query: str, on_progress: ProgressFn = ...) -> Any: ...

    def record(self) -> Any: ...  # the selected ModelRecord, or None


def option_specs(settings: Settings) -> tuple[OptionSpec, ...]:
    """The A1111 option keys Atelier supports; defaults that depend on paths come from ``settings``."""
    txt2img_dir = str(settings.outputs_dir / "txt2img-images")
    return (
        OptionSpec("sd_model_checkpoint", str, "", "Stable Diffusion checkpoint (setting it loads the model)"),
        OptionSpec("sd_checkpoint_hash", str, "", "SHA256 of the current checkpoint", "derived"),
        OptionSpec("samples_format", str, "png", "File format for images (PNG only: it carries the infotext)",
                   choices=("png",)),
        OptionSpec("live_previews_enable", bool, True, "Show live previews (/progress current_image)"),
        OptionSpec("show_progress_every_n_steps", int, settings.live_preview_every,
                   "Live preview period in steps (set at start-up)", "fixed"),
        OptionSpec("CLIP_stop_at_last_layers", int, 1, "Clip skip (1-12; SDXL ignores it, as A1111 does)",
                   choices=tuple(range(1, 13))),
        OptionSpec("emphasis", str, "Original", "Emphasis: how (word:1.2) weights apply", choices=EMPHASIS_MODES),
        OptionSpec("sd_vae", str, "Automatic", "SD VAE: Automatic (NAME.vae.safetensors beside the checkpoint, else "
                   "its own), None (the checkpoint's own) or a VAE's file name"),
        OptionSpec("sd_vae_decode_method", str, "Full", "VAE type for decode: Full, or TAESD (fast, a little blurry; "
                   "models/VAE-taesd)", choices=DECODE_METHODS),
        OptionSpec("sd_vae_encode_method", str, "Full", "VAE type for encode (img2img): Full or TAESD",
                   choices=DECODE_METHODS),
        OptionSpec("show_progress_type", str, "Approx cheap", "Live preview method: Approx cheap (a fitted colour "
                   "map), TAESD or Full (a real decode every preview)", choices=PREVIEW_METHODS),
        OptionSpec("sd_checkpoints_limit", int, 1,
                   "Checkpoints kept in RAM (stored only: Atelier's cache counts bytes)", "stored"),
        OptionSpec("outdir_samples", str, "", "Output folder for all images", "fixed"),
        OptionSpec("outdir_txt2img_samples", str, txt2img_dir, "Output folder for txt2img images", "fixed"),
        OptionSpec("grid_save", bool, True, "Save a grid of every batch of more than one image (outputs/<mode>-grids)"),
        OptionSpec("return_grid", bool, True, "Show the grid first in the gallery (stored only: galleries list the "
                   "images; the Imagine view shows the grid)", "stored"),
        OptionSpec("n_rows", int, -1, "Grid rows: -1 automatic, 0 one row per batch", choices=tuple(range(-1, 17))),
        OptionSpec("enable_pnginfo", bool, True, "Save generation parameters in the PNG", "fixed"),
        OptionSpec("add_model_hash_to_info", bool, True, "Model hash in the infotext", "fixed"),
        OptionSpec("add_model_name_to_info", bool, True, "Model name in the infotext", "fixed"),
        OptionSpec("add_version_to_infotext", bool, True, "Version in the infotext", "fixed"),
        OptionSpec("randn_source", str, "CPU", "Random number generator source (always the CPU)", "fixed"),
        OptionSpec("eta_noise_seed_delta", int, 0, "Eta noise seed delta", "fixed"),
        OptionSpec("api_enable_requests", bool, False, "Fetch http(s) image URLs in API requests", "fixed"),
        OptionSpec("api_forbid_local_requests", bool, True, "Forbid local addresses in image URLs", "fixed"),
        OptionSpec("api_useragent", str, "", "User agent for API image requests", "stored"),
        # Extensions (pipelines/extension_manager): switched off one by one, or all / all but the built-in ones.
        OptionSpec("disabled_extensions", list, [], "Extensions switched off (the Extensions tab)"),
        OptionSpec("disable_all_extensions", str, "none", "Disable all extensions (extra: all but the built-in ones)",
                   choices=("none", "extra", "all")),
        OptionSpec("extensions_index_url", str, DEFAULT_INDEX_URL, "Extension index URL (A1111's index.json format)"),
    )


def _coerce(spec: OptionSpec, value: Any, field: str) -> Any:
    """The value as the option's type, or a ValidationError naming ``field``."""
    kind = spec.kind
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if kind is int and isinstance(value, float) and value.is_integer():
        value, ok = int(value), True
    if not ok:
        raise ValidationError(field, f"must be {kind.__name__}, got {value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise ValidationError(field, f"{value!r} is not supported; Atelier supports {list(spec.choices)}")
    return value


def _stored_value(spec: OptionSpec, stored: Mapping[str, Any]) -> Any:
    """The saved value when it is one Atelier can use (an A1111 config.json may hold others)."""
    if spec.behaviour == "fixed" or spec.key not in stored:
        return spec.default
    try:
        return _coerce(spec, stored[spec.key], spec.key)
    except ValidationError:
        return spec.default


class OptionsStore:
    """Current option values for one process; thread-safe; persisted on every change."""

    def __init__(self, settings: Settings, checkpoints: CheckpointSource, *, path: Path | None = None,
                 vae_check: Callable[[Any, str], None] | None = None) -> None:
        """``vae_check(value, field)`` refuses an ``sd_vae`` that names no VAE (raising ValidationError(field))."""
        self.path = path or settings.data_dir / CONFIG_FILE
        self._specs = {spec.key: spec for spec in option_specs(settings)}
        self._checkpoints = checkpoints
        self._vae_check = vae_check
        self._lock = threading.Lock()
        self._stored: dict[str, Any] = read_config(self.path)

    def _current_record(self) -> Any:
        return self._checkpoints.record()  # None: the default Hub model before it is downloaded

    def add_options(self, specs: Iterable[OptionSpec]) -> None:
        """Options declared by extensions: listed with their defaults, typed and checked like Atelier's own
        (a key Atelier already has keeps its own spec)."""
        with self._lock:
            for spec in specs:
                self._specs.setdefault(spec.key, spec)

    def values(self) -> dict[str, Any]:
        """Every known option with its current value, then the unknown keys as stored.

        ``sd_model_checkpoint`` is the current model's title (``name [hash10]`` once hashed).
        """
        with self._lock:
            stored = dict(self._stored)
        out = {key: _stored_value(spec, stored) for key, spec in self._specs.items()}
        out["sd_vae"] = self._usable_vae(out["sd_vae"])
        record = self._current_record()
        out["sd_model_checkpoint"] = record.title if record is not None else self._checkpoints.current
        out["sd_checkpoint_hash"] = (record.sha256 or "") if record is not None else ""
        out.update({key: value for key, value in stored.items() if key not in self._specs})
        return out

    def _usable_vae(self, value: str) -> str:
        """A saved ``sd_vae`` whose VAE is gone (or an A1111 config's) reads as the default, Automatic."""
        if self._vae_check is None:
            return value
        try:
            self._vae_check(value, "sd_vae")
        except ValidationError:
            log.info("sd_vae %r names no installed VAE; using Automatic", value)
            return self._specs["sd_vae"].default
        return value

    def prompt_settings(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The request fields the options decide (clip skip, emphasis), with ``overrides`` (a request's
        already checked ``override_settings``) taking precedence."""
        values = {**self.values(), **(overrides or {})}
        return {"clip_skip": values["CLIP_stop_at_last_layers"], "emphasis": values["emphasis"]}

    def grid_settings(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The request fields the grid options decide (grid_save, n_rows), ``overrides`` taking precedence."""
        values = {**self.values(), **(overrides or {})}
        return {"save_grid": values["grid_save"], "grid_rows": values["n_rows"]}

    def decoder_settings(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The request fields the VAE-type and live-preview options decide, ``overrides`` taking precedence."""
        values = {**self.values(), **(overrides or {})}
        return {key: values[key] for key in ("sd_vae_decode_method", "sd_vae_encode_method", "show_progress_type")}

    def sd_vae(self, overrides: Mapping[str, Any] | None = None) -> str:
        """The request's ``sd_vae``: the SD VAE option, or ``overrides["sd_vae"]`` (already checked)."""
        return {**self.values(), **(overrides or {})}["sd_vae"]

    def check(self, changes: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
        """Validate ``changes`` without applying them; returns the values to store.

        Derived keys are dropped, fixed keys must keep their value, unknown keys pass as they are.
        """
        out: dict[str, Any] = {}
        for key, value in changes.items():
            spec = self._specs.get(key)
            if spec is None:
                out[key] = value
                continue
            if spec.behaviour == "derived":
                continue
            value = _coerce(spec, value, prefix + key)
            if key == "sd_vae" and self._vae_check is not None:
                self._vae_check(value, prefix + key)
            if spec.behaviour == "fixed" and value != spec.default:
                raise ValidationError(prefix + key, f"Atelier cannot change this yet; it is {spec.default!r}")
            if spec.behaviour != "fixed":
                out[key] = value
        return out

    def update(self, changes: Mapping[str, Any], on_progress: ProgressFn = ignore_progress) -> dict[str, Any]:
        """Validate and apply ``changes``; a new ``sd_model_checkpoint`` is loaded before anything is saved.

        Raises ValidationError / ModelNotFoundError (and the store's load errors) with nothing changed.
        """
        accepted = self.check(changes)
        wanted = accepted.get("sd_model_checkpoint")
        if wanted is not None:
            loaded = self._checkpoints.select(wanted, on_progress)
            record = getattr(loaded, "record", None)
            accepted["sd_model_checkpoint"] = record.title if record is not None else wanted
        with self._lock:
            merged = {**self._stored, **accepted}
            write_config(self.path, merged)
            self._stored = merged
        return accepted


def read_config(path: Path) -> dict[str, Any]:
    """The stored options, or {} when the file is missing or unreadable (which is logged)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable options file %s: %s", path, exc)
        return {}
    if not isinstance(data, dict):
        log.warning("ignoring options file %s: not a JSON object", path)
        return {}
    return data


def write_config(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON atomically: readers see the old file or the new one, never half."""
    write_text_atomically(path, json.dumps(dict(data), indent=4, ensure_ascii=False, default=str))


def saved_checkpoint(data_dir: Path) -> str | None:
    """The ``sd_model_checkpoint`` saved by a previous run, for launch.py to load at start-up."""
    value = read_config(data_dir / CONFIG_FILE).get("sd_model_checkpoint")
    return value if isinstance(value, str) and value else None
