"""A1111's prompt language, as a pure core: no UI, no model loading.

Modules, in the order a prompt goes through them:

* :mod:`~pipelines.prompts.schedule` -- prompt editing ``[a:b:when]`` and alternation ``[a|b]``:
  the prompt text per step (:func:`build_schedule` -> :class:`PromptSchedule`).
* :mod:`~pipelines.prompts.emphasis` -- ``(a:1.2)``, ``[a]``, escapes and ``BREAK``: weighted
  pieces of one prompt text (:func:`parse_emphasis`).
* :mod:`~pipelines.prompts.chunks` -- pieces to 77-token CLIP chunks with per-token weights and
  textual-inversion slots (:func:`tokenize_prompt`), and the UI token counter (:func:`count_tokens`).
* :mod:`~pipelines.prompts.encode` -- chunks to text-encoder embeddings (imports torch, so it is
  not imported here: ``from pipelines.prompts.encode import encode_prompt_pair``).
* :mod:`~pipelines.prompts.styles` -- ``styles.csv`` and applying styles to a prompt pair.

Every entry point refuses prompts over :data:`MAX_PROMPT_CHARS` characters with a
``ValidationError`` naming the field.
"""

from pipelines.prompts.chunks import (
    CHUNK_LENGTH,
    CHUNK_TOKENS,
    EmbeddingSlot,
    PromptChunk,
    TokenCount,
    TokenizedPrompt,
    count_tokens,
    tokenize_prompt,
)
from pipelines.prompts.emphasis import EMPHASIS_MODES, EmphasisMode, PromptPiece, parse_emphasis
from pipelines.prompts.limits import MAX_PROMPT_CHARS
from pipelines.prompts.schedule import PromptSchedule, build_schedule
from pipelines.prompts.styles import PromptStyle, StyleStore, apply_styles, extract_styles

__all__ = [
    "CHUNK_LENGTH",
    "CHUNK_TOKENS",
    "EMPHASIS_MODES",
    "MAX_PROMPT_CHARS",
    "EmbeddingSlot",
    "EmphasisMode",
    "PromptChunk",
    "PromptPiece",
    "PromptSchedule",
    "PromptStyle",
    "StyleStore",
    "TokenCount",
    "TokenizedPrompt",
    "apply_styles",
    "build_schedule",
    "count_tokens",
    "extract_styles",
    "parse_emphasis",
    "tokenize_prompt",
]
