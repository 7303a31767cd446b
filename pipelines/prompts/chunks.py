"""Weighted prompt pieces to 77-token CLIP chunks, as A1111 builds them ("Emphasis: Original").

1. Each piece is tokenized without start/end tokens; every token carries its piece's weight.
2. Tokens fill chunks of 75. When a chunk is full and the last comma is at most
   ``comma_backtrack`` (A1111's "comma padding backtrack", default 20) tokens back, the tokens
   after that comma move to the next chunk and the chunk is padded. ``BREAK`` ends the chunk at
   once (a ``BREAK`` with nothing before it gives an empty chunk). An empty prompt is one empty
   chunk; a prompt ending in ``BREAK`` gets no trailing empty chunk.
3. A chunk is ``[BOS] + tokens + [EOS] + padding`` = 77 ids (padding is the tokenizer's pad token,
   which is EOS for SD1/SDXL's first tokenizer), with weight 1.0 for BOS, EOS and padding.

Textual inversion: ``embeddings`` maps an embedding's name to its number of vectors. Where the
tokens of a piece spell that name (tokenized like the prompt, so matching is case-insensitive and
word-based, as in A1111), the name's tokens are replaced by that many positions holding
``EMBEDDING_PLACEHOLDER_ID``, recorded in :attr:`PromptChunk.embeddings`; the encoder puts the
embedding's vectors at those positions. An embedding never straddles two chunks: if it does not
fit, the chunk ends first.

Tokenizers are duck-typed: anything called like ``transformers.CLIPTokenizer`` with
``bos_token_id``, ``eos_token_id`` and ``pad_token_id`` works.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pipelines.errors import ValidationError
from pipelines.prompts.emphasis import DEFAULT_EMPHASIS, EmphasisMode, PromptPiece, parse_emphasis
from pipelines.prompts.limits import MAX_PROMPT_CHARS
from pipelines.prompts.schedule import build_schedule

CHUNK_TOKENS = 75
CHUNK_LENGTH = CHUNK_TOKENS + 2
DEFAULT_COMMA_BACKTRACK = 20
# Token id written where embedding vectors go (A1111 uses 0 too); the encoder replaces the
# vectors at those positions, so the id only has to differ from EOS.
EMBEDDING_PLACEHOLDER_ID = 0


@dataclass(frozen=True)
class EmbeddingSlot:
    """``length`` positions of a chunk, from ``position`` (an index into its 77 ids), that take
    the vectors of the textual-inversion embedding ``name``."""

    name: str
    position: int
    length: int


@dataclass(frozen=True)
class PromptChunk:
    """One 77-token encoder input: ids, per-token weights, embedding slots and prompt-token count."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]
    embeddings: tuple[EmbeddingSlot, ...] = ()
    length: int = 0  # prompt tokens in the chunk (without BOS, EOS and padding)


@dataclass(frozen=True)
class TokenizedPrompt:
    """A prompt's chunks and A1111's token count (75 per full chunk plus the last one's tokens)."""

    chunks: tuple[PromptChunk, ...]
    token_count: int


class TokenCount(NamedTuple):
    """The UI counter "used/capacity": capacity is 75 per chunk the prompt needs."""

    used: int
    capacity: int


@dataclass(frozen=True)
class _Specials:
    bos: int
    eos: int
    pad: int
    comma: int | None


def _specials(tokenizer: Any) -> _Specials:
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise ValueError("the tokenizer has no start or end token; a CLIP tokenizer is needed")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    comma_ids = _tokenize(tokenizer, [","])[0]
    return _Specials(bos, eos, pad, comma_ids[0] if len(comma_ids) == 1 else None)


def _tokenize(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    # verbose=False: a long piece is expected here and must not log a truncation warning.
    return tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]


def empty_chunk(tokenizer: Any) -> PromptChunk:
    """The chunk of an empty prompt: ``[BOS] [EOS] padding...``, all weights 1.0."""
    return _pad_chunk([], [], [], _specials(tokenizer))


def _pad_chunk(ids: list[int], weights: list[float], slots: list[EmbeddingSlot], sp: _Specials) -> PromptChunk:
    fill = CHUNK_TOKENS - len(ids)
    return PromptChunk(
        ids=(sp.bos, *ids, sp.eos, *([sp.pad] * fill)),
        weights=(1.0, *weights, *([1.0] * (fill + 1))),
        embeddings=tuple(EmbeddingSlot(s.name, s.position + 1, s.length) for s in slots),
        length=len(ids),
    )


class _EmbeddingMatcher:
    """Finds embedding names in token lists, longest name first."""

    def __init__(self, tokenizer: Any, embeddings: Mapping[str, int] | None, field: str) -> None:
        self.by_first: dict[int, list[tuple[tuple[int, ...], str, int]]] = {}
        if not embeddings:
            return
        names = list(embeddings)
        for name, ids in zip(names, _tokenize(tokenizer, names), strict=True):
            vectors = embeddings[name]
            if isinstance(vectors, bool) or not isinstance(vectors, int) or not 1 <= vectors <= CHUNK_TOKENS:
                raise ValidationError(field, f"embedding {name!r} has {vectors} vectors; 1 to {CHUNK_TOKENS} fit")
            if ids:
                self.by_first.setdefault(ids[0], []).append((tuple(ids), name, vectors))
        for candidates in self.by_first.values():
            candidates.sort(key=lambda candidate: -len(candidate[0]))

    def match(self, tokens: list[int], position: int) -> tuple[str, int, int] | None:
        """``(name, tokens used by the name, vectors)`` for a name starting at ``position``."""
        for ids, name, vectors in self.by_first.get(tokens[position], ()):
            if tuple(tokens[position : position + len(ids)]) == ids:
                return name, len(ids), vectors
        return None


def chunk_pieces(
    pieces: Sequence[PromptPiece],
    tokenizer: Any,
    *,
    embeddings: Mapping[str, int] | None = None,
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    field: str = "prompt",
) -> TokenizedPrompt:
    """Tokenize weighted pieces (from :func:`parse_emphasis`) and split them into chunks."""
    if isinstance(comma_backtrack, bool) or not isinstance(comma_backtrack, int) or comma_backtrack < 0:
        raise ValidationError("comma_backtrack", f"must be a whole number >= 0, got {comma_backtrack!r}")
    sp = _specials(tokenizer)
    matcher = _EmbeddingMatcher(tokenizer, embeddings, field)
    texts = [piece.text for piece in pieces if not piece.is_break]
    tokenized = iter(_tokenize(tokenizer, texts))

    chunks: list[PromptChunk] = []
    ids: list[int] = []
    weights: list[float] = []
    slots: list[EmbeddingSlot] = []
    last_comma = -1
    token_count = 0

    def finish(*, is_last: bool = False) -> None:
        nonlocal ids, weights, slots, last_comma, token_count
        token_count += len(ids) if is_last else CHUNK_TOKENS
        chunks.append(_pad_chunk(ids, weights, slots, sp))
        ids, weights, slots, last_comma = [], [], [], -1

    for piece in pieces:
        if piece.is_break:
            finish()
            continue
        tokens = next(tokenized)
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token == sp.comma:
                last_comma = len(ids)
            elif (
                comma_backtrack
                and len(ids) == CHUNK_TOKENS
                and last_comma != -1
                and len(ids) - last_comma <= comma_backtrack
            ):
                # Full chunk with a comma close behind: the words after it start the next chunk.
                cut = last_comma + 1
                moved_ids, moved_weights = ids[cut:], weights[cut:]
                moved_slots = [EmbeddingSlot(s.name, s.position - cut, s.length) for s in slots if s.position >= cut]
                ids, weights, slots = ids[:cut], weights[:cut], [s for s in slots if s.position < cut]
                finish()
                ids, weights, slots = moved_ids, moved_weights, moved_slots
            if len(ids) == CHUNK_TOKENS:
                finish()
            found = matcher.match(tokens, position)
            if found is None:
                ids.append(token)
                weights.append(piece.weight)
                position += 1
                continue
            name, used, vectors = found
            if len(ids) + vectors > CHUNK_TOKENS:
                finish()
            slots.append(EmbeddingSlot(name, len(ids), vectors))
            ids.extend([EMBEDDING_PLACEHOLDER_ID] * vectors)
            weights.extend([piece.weight] * vectors)
            position += used
    if ids or not chunks:
        finish(is_last=True)
    return TokenizedPrompt(tuple(chunks), token_count)


def tokenize_prompt(
    prompt: str,
    tokenizer: Any,
    *,
    emphasis: EmphasisMode = DEFAULT_EMPHASIS,
    embeddings: Mapping[str, int] | None = None,
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    field: str = "prompt",
    max_chars: int | None = MAX_PROMPT_CHARS,
) -> TokenizedPrompt:
    """Parse emphasis in one (already scheduled) prompt text and chunk it."""
    pieces = parse_emphasis(prompt, mode=emphasis, field=field, max_chars=max_chars)
    return chunk_pieces(pieces, tokenizer, embeddings=embeddings, comma_backtrack=comma_backtrack, field=field)


def token_capacity(used: int) -> int:
    """75 per chunk needed for ``used`` tokens (at least one chunk)."""
    return math.ceil(max(used, 1) / CHUNK_TOKENS) * CHUNK_TOKENS


def count_tokens(
    prompt: str,
    tokenizer: Any,
    *,
    steps: int = 20,
    emphasis: EmphasisMode = DEFAULT_EMPHASIS,
    embeddings: Mapping[str, int] | None = None,
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    field: str = "prompt",
    max_chars: int | None = MAX_PROMPT_CHARS,
) -> TokenCount:
    """The UI's token counter: ``(tokens used, chunk capacity)``, e.g. ``(12, 75)`` or ``(80, 150)``.

    Like A1111, prompt editing is expanded over ``steps`` (pass the job's steps) and the longest
    of the resulting prompts is counted. Extra-network tags such as ``<lora:x:1>`` are counted as
    text; strip them first.
    """
    schedule = build_schedule(prompt, steps, field=field, max_chars=max_chars)
    used = max(
        tokenize_prompt(
            text,
            tokenizer,
            emphasis=emphasis,
            embeddings=embeddings,
            comma_backtrack=comma_backtrack,
            field=field,
            max_chars=max_chars,
        ).token_count
        for text in schedule.distinct
    )
    return TokenCount(used, token_capacity(used))
