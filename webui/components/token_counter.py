"""A1111's token counter on a prompt box: "N/75", the capacity growing by 75 per chunk the prompt needs.

The core counts (:func:`pipelines.prompts.count_tokens`: emphasis, prompt editing over the job's
steps, BREAK, 75-token chunks); this module finds the selected checkpoint's tokenizer on disk and
shows the count. Only the tokenizer is loaded, never the model, so the counter works before the
first generation. Without a tokenizer on disk (a Hub model not downloaded yet, a single file
without a config folder) it shows "?/75".
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from pipelines.errors import ValidationError
from pipelines.models.refs import ModelRecord
from pipelines.prompts import CHUNK_TOKENS, count_tokens
from pipelines.selection import CheckpointSelection

log = logging.getLogger(__name__)

UNKNOWN = f"?/{CHUNK_TOKENS}"
# Extra-network tags such as <lora:name:0.8> never reach the text encoder (A1111 removes them first).
_EXTRA_NETWORK = re.compile(r"<\w+:[^<>]*>")
_TEMPLATE = "<div class='token-counter'>${value}</div>"
# Built just above its prompt box, the counter is drawn over the box's label line, at the right, as in A1111
# (100%: its own, empty block's height; then the column's gap and the box's top padding).
_CSS = (".token-counter { position: absolute; right: 12px; top: calc(100% + var(--layout-gap) + 10px); z-index: 1;"
        " pointer-events: none; font-size: var(--text-sm); color: var(--body-text-color-subdued); }")


def tokenizer_folder(record: ModelRecord | None) -> Path | None:
    """The checkpoint's first CLIP tokenizer folder: ``tokenizer/`` in a diffusers folder or HF snapshot,
    or in a single file's config folder; None when there is none on disk."""
    if record is None or not record.installed:
        return None
    for base in (record.path, record.config_path):
        if base is not None and (base / "tokenizer").is_dir():
            return base / "tokenizer"
    return None


class TokenizerCache:
    """The selected checkpoint's tokenizer, loaded once per tokenizer folder (thread-safe)."""

    def __init__(self, selection: CheckpointSelection) -> None:
        self._selection = selection
        self._lock = threading.Lock()
        self._loaded: dict[Path, Any] = {}  # folder -> tokenizer, or None when it could not be read

    def current(self) -> Any | None:
        """The tokenizer of the selected checkpoint, or None when it has none on disk."""
        folder = tokenizer_folder(self._selection.record())
        if folder is None:
            return None
        with self._lock:
            if folder not in self._loaded:
                self._loaded[folder] = _load(folder)
            return self._loaded[folder]


def _load(folder: Path) -> Any | None:
    from transformers import CLIPTokenizer

    try:
        return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:  # damaged or foreign tokenizer files: the counter shows "?"
        log.warning("cannot read the tokenizer in %s for the token counter: %s", folder, exc)
        return None


def counter_text(prompt: str | None, tokenizer: Any | None, *, steps: float | None = None,
                 emphasis: str | None = None) -> str:
    """``"N/75"`` (``"80/150"`` past one chunk) for ``prompt``; ``"?/75"`` without a tokenizer or for a
    prompt the core refuses (too long: generating says why)."""
    if tokenizer is None:
        return UNKNOWN
    text = _EXTRA_NETWORK.sub("", prompt or "")
    try:
        used, capacity = count_tokens(text, tokenizer, steps=max(1, int(steps or 20)),
                                      emphasis=emphasis or "Original")  # type: ignore[arg-type]
    except (ValidationError, ValueError):  # ValueError: not a CLIP tokenizer (no start/end token)
        return UNKNOWN
    return f"{used}/{capacity}"


def counter(elem_id: str) -> gr.HTML:
    """The counter's display; build it just before its prompt box, whose label line it is drawn on."""
    return gr.HTML(f"0/{CHUNK_TOKENS}", html_template=_TEMPLATE, css_template=_CSS, js_on_load=None,
                   apply_default_css=False, elem_id=elem_id, padding=False)


def wire(tokenizers: TokenizerCache, box: gr.Textbox, display: gr.HTML, *, steps: gr.Slider,
         emphasis: gr.Dropdown, checkpoint: gr.Dropdown, api_name: str) -> None:
    """Recount as the box changes (typing, or a paste), and when the steps, emphasis or model change.

    Out of the queue and never queued twice (``always_last``), so typing stays light; callable by
    clients as ``api_name`` but not listed in the API docs.
    """

    def count_prompt_tokens(prompt: str | None, steps: float | None, emphasis: str | None) -> str:
        """The prompt's token count, "N/75"."""
        return counter_text(prompt, tokenizers.current(), steps=steps, emphasis=emphasis)

    gr.on([box.change, steps.change, emphasis.change, checkpoint.change], count_prompt_tokens, None, display,
          inputs_kwargs={"prompt": box, "steps": steps, "emphasis": emphasis}, api_name=api_name,
          api_visibility="undocumented", queue=False, show_progress="hidden", trigger_mode="always_last")
