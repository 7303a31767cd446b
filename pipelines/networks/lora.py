"""LoRAs applied to a pipeline for one job, through diffusers' LoRA API (peft backend).

``with applied_loras(pipe, store, tags, architecture) as applied:`` resolves every tag to a file
(failing before the pipeline is touched), loads each file's tensors through the model store (read
from disk once, then cached), adds them as peft adapters with separate text-encoder and UNet
weights, and on exit takes every adapter out again, so the next job runs on exactly the modules
it ran on before. Wrap the whole job, prompt encoding included: the text encoder's LoRA layers
change the conditioning.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from pipelines.errors import DamagedModelError, ModelNotFoundError, UnsupportedModelError, ValidationError
from pipelines.models.architecture import Architecture
from pipelines.models.compile import unfused_qkv
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord
from pipelines.models.store import ModelStore
from pipelines.networks.formats import check_loadable
from pipelines.networks.tags import LoraTag, merge_tags

log = logging.getLogger(__name__)

__all__ = ["ADAPTER_PREFIX", "AppliedLora", "AppliedLoras", "applied_loras", "resolve_loras"]

# Adapter names this module owns. peft keeps adapters in ModuleDicts (no dots allowed), and
# transformers tells adapter tensors from base weights by the adapter name inside the key, so
# the name must be distinctive (a one-letter name makes every base weight look "missing").
ADAPTER_PREFIX = "atelier_lora_"
_TEXT_ENCODERS = ("text_encoder", "text_encoder_2")


@dataclass(frozen=True)
class AppliedLora:
    """One LoRA active for the job."""

    name: str
    te_weight: float
    unet_weight: float
    adapter: str  # the peft adapter name on the pipeline's modules
    components: tuple[str, ...]  # the pipeline components it has layers in ("unet", "text_encoder", ...)
    short_hash: str | None  # A1111's 12-digit "addnet" hash; None for pickled files


@dataclass(frozen=True)
class AppliedLoras:
    """The LoRAs of one job, for the infotext and the log."""

    loras: tuple[AppliedLora, ...] = ()
    load_seconds: float = 0.0  # reading (first use), converting and injecting every LoRA

    def __bool__(self) -> bool:
        return bool(self.loras)

    def infotext(self) -> dict[str, str]:
        """``Lora hashes: "name: hash12, ..."`` when any LoRA was used (the infotext writer adds the quotes)."""
        hashes = [f"{lora.name}: {lora.short_hash}" for lora in self.loras if lora.short_hash]
        return {"Lora hashes": ", ".join(hashes)} if hashes else {}


def resolve_loras(store: ModelStore, tags: Sequence[LoraTag], architecture: Architecture | None, *,
                  model_name: str | None = None) -> list[tuple[LoraTag, ModelRecord]]:
    """Each (merged) tag with its file's record; raises ValidationError("prompt") for an unknown name
    or a LoRA made for another architecture than the model's (an unknown architecture is allowed)."""
    out = []
    model = f"the model {model_name!r}" if model_name else "the model"
    for tag in merge_tags(tags):
        try:
            record = store.find(tag.name, ModelType.LORA)
        except ModelNotFoundError as exc:
            raise ValidationError("prompt", f"<lora:{tag.name}>: {exc}") from exc
        if record.problem:  # damaged, or no LoRA tensors: found when the folder was scanned
            raise ValidationError("prompt", f"<lora:{tag.name}>: {record.problem}")
        if record.arch is not None and architecture is not None and record.arch is not architecture:
            raise ValidationError("prompt", f"<lora:{tag.name}>: the LoRA is made for {record.arch.label}, "
                                            f"{model} is {architecture.label}")
        out.append((tag, record))
    return out


def _adapters(pipe: Any) -> dict[str, list[str]]:
    """Adapter names per component, e.g. ``{"unet": ["a"], "text_encoder": ["a"]}`` (none: empty lists)."""
    return {part: list(names) for part, names in pipe.get_list_adapters().items()}


def _components_of(adapters: dict[str, list[str]], adapter: str) -> tuple[str, ...]:
    return tuple(part for part, names in adapters.items() if adapter in names)


def _weights(applied: Sequence[AppliedLora]) -> list[dict[str, float]]:
    """Per-adapter component weights for ``set_adapters``, naming only components the adapter has."""
    return [{part: lora.unet_weight if part == "unet" else lora.te_weight for part in lora.components}
            for lora in applied]


@contextmanager
def _expected_peft_warnings() -> Iterator[None]:
    """peft warns when a module gets a second adapter and when the active one is deleted: both are the plan here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        warnings.filterwarnings("ignore", message=r"Adapter .* was active which is now deleted")
        yield


def _remove(pipe: Any, ours: Sequence[str], previously_active: Sequence[str]) -> None:
    """Take this job's adapters out; with none left, drop the peft layers so the modules are the originals."""
    with _expected_peft_warnings():
        _remove_adapters(pipe, ours, previously_active)


def _remove_adapters(pipe: Any, ours: Sequence[str], previously_active: Sequence[str]) -> None:
    adapters = _adapters(pipe)
    present = {name for names in adapters.values() for name in names}
    if not present - set(ours):
        pipe.unload_lora_weights()
        return
    for name in ours:  # someone else's adapters stay; only ours go
        for part in _components_of(adapters, name):
            component = getattr(pipe, part)
            if part in _TEXT_ENCODERS:
                component.delete_adapter(name)
            else:
                component.delete_adapters([name])
    if previously_active:
        pipe.set_adapters(list(previously_active))


def _stale(pipe: Any) -> list[str]:
    """Adapters of ours left by a job whose clean-up failed."""
    return sorted({n for names in _adapters(pipe).values() for n in names if n.startswith(ADAPTER_PREFIX)})


@contextmanager
def applied_loras(pipe: Any, store: ModelStore, tags: Sequence[LoraTag], architecture: Architecture | None, *,
                  model_name: str | None = None) -> Iterator[AppliedLoras]:
    """Apply the LoRAs ``tags`` name to ``pipe`` until the block ends; yields what the infotext needs.

    ``pipe`` is any diffusers SD/SDXL pipeline with the LoRA loader mixin; LoRA layers go into its
    modules, so every pipeline object sharing those modules sees them. With no tags nothing is done.
    """
    if not tags:
        yield AppliedLoras()
        return
    if not hasattr(pipe, "load_lora_weights"):
        raise ValidationError("prompt", f"{type(pipe).__name__} cannot take LoRAs")
    resolved = resolve_loras(store, tags, architecture, model_name=model_name)
    for _tag, record in resolved:  # their hashes read the files while they load (waited for below, per LoRA)
        store.start_hashing(record)
    with ExitStack() as stack:
        stack.enter_context(unfused_qkv(pipe))  # --compile fused Q/K/V: LoRA layers go into the separate ones
        started = time.perf_counter()
        tensors = []
        for tag, record in resolved:  # held (never evicted) until the job ends
            try:
                loaded = stack.enter_context(store.use(record, model_type=ModelType.LORA))
            except (DamagedModelError, ModelNotFoundError, UnsupportedModelError) as exc:  # changed since listed
                raise ValidationError("prompt", f"<lora:{tag.name}>: {exc}") from exc
            check_loadable(tag.name, loaded.model.keys())
            tensors.append(loaded.model)
        stale = _stale(pipe)
        if stale:
            log.warning("removing LoRA adapters left by an earlier job: %s", ", ".join(stale))
            _remove(pipe, stale, [])
        before = pipe.get_active_adapters() if any(_adapters(pipe).values()) else []
        names: list[str] = []
        try:
            applied = []
            for i, ((tag, record), state) in enumerate(zip(resolved, tensors, strict=True)):
                adapter = f"{ADAPTER_PREFIX}{i}"
                names.append(adapter)
                _load(pipe, tag.name, state, adapter, model_name)
                components = _components_of(_adapters(pipe), adapter)
                if not components:
                    model = repr(model_name) if model_name else "the model"
                    raise ValidationError("prompt", f"<lora:{tag.name}>: none of its layers is in {model}")
                digest = store.hashed(record).addnet_hash
                applied.append(AppliedLora(tag.name, tag.te_weight, tag.unet_weight, adapter, components,
                                           digest[:12] if digest else None))
            pipe.set_adapters(names, adapter_weights=_weights(applied))
            result = AppliedLoras(tuple(applied), time.perf_counter() - started)
            log.info("LoRAs applied in %.3f s: %s", result.load_seconds,
                     ", ".join(f"{a.name} (te {a.te_weight:g}, unet {a.unet_weight:g})" for a in applied))
            yield result
        finally:
            _remove(pipe, [n for n in names if n in {m for ns in _adapters(pipe).values() for m in ns}], before)


class _KnownNoise(logging.Filter):
    """Drops the warnings diffusers, transformers print while loading a LoRA that say nothing is wrong.

    - diffusers: "No LoRA keys associated to <component>" for a UNet-only or text-encoder-only LoRA
      (which components got layers is checked here instead);
    - transformers: a "LOAD REPORT" listing as MISSING the tensors of *other* adapters already in the
      text encoder, when several LoRAs are stacked (they are kept, not re-initialised). A report that
      names the adapter being loaded, or anything but MISSING, is kept.
    """

    def __init__(self, adapter: str) -> None:
        super().__init__()
        self.adapter = adapter

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("No LoRA keys associated to"):
            return False
        if "LOAD REPORT" in message:
            rows = [line for line in message.splitlines() if "|" in line and not line.startswith(("Key", "-"))]
            others = all("MISSING" in row and f".{self.adapter}." not in row for row in rows)
            return not (rows and others)
        return True


_NOISY_LOGGERS = ("diffusers.loaders.lora_base", "diffusers.loaders.lora_pipeline", "diffusers.loaders.peft",
                  "transformers.integrations.peft")


def _load(pipe: Any, name: str, state: dict[str, Any], adapter: str, model_name: str | None) -> None:
    """``load_lora_weights`` from the cached tensors; a file that does not fit the model is a prompt error."""
    noise = _KnownNoise(adapter)
    loggers = [logging.getLogger(n) for n in _NOISY_LOGGERS]
    for logger in loggers:
        logger.addFilter(noise)
    try:
        with _expected_peft_warnings():
            pipe.load_lora_weights(state, adapter_name=adapter)  # diffusers copies the dict; the cache stays intact
    except (ValueError, RuntimeError, KeyError) as exc:
        model = repr(model_name) if model_name else "the model"
        raise ValidationError("prompt", f"<lora:{name}> does not fit {model}: {_first_problem(exc)}") from exc
    finally:
        for logger in loggers:
            logger.removeFilter(noise)


def _first_problem(exc: BaseException) -> str:
    """The first line of a loader error that says what is wrong (torch puts the details on later lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    details = lines[1:] if lines[0].endswith(":") and len(lines) > 1 else []
    if not details:
        return lines[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{details[0]}{more}"
