"""Prompt text to text-encoder embeddings the A1111 way: chunked, weighted, any length.

Per prompt: emphasis is parsed, the pieces are cut into 77-token chunks
(:mod:`pipelines.prompts.chunks`), every chunk goes through each CLIP text encoder on its own,
the weights are applied to the encoder output and the chunks are joined on the token axis.

* SD1/SD2 (:meth:`PromptEncoder.sd`): the encoder's last hidden state (it has passed the final
  layer norm). With clip skip N > 1: hidden state ``-N`` passed through the encoder's
  ``final_layer_norm`` (A1111's "Clip skip"; diffusers' ``clip_skip=N-1``).
* SDXL (:meth:`PromptEncoder.sdxl`): both encoders read the same prompt; each gives hidden state
  ``-(N+1)`` without final norm (the penultimate layer at N = 1, as diffusers' SDXL pipeline
  does); their features are concatenated; the pooled output is the second encoder's projected
  output (``text_embeds``) for the first chunk. Note that A1111 1.10 ignores clip skip for SDXL
  by default, so pass ``clip_skip=1`` for SDXL to reproduce A1111 images.
  The SDXL refiner (:meth:`PromptEncoder.sdxl_refiner`) reads its one encoder the same way.
* Emphasis ``Original``: per chunk, ``z * weight`` per token, then the whole chunk is scaled so its
  mean equals the mean before weighting. ``No norm``: no mean restore. ``Ignore`` / ``None``:
  weights are not applied. A chunk whose weights are all 1.0 is left untouched, so a plain
  prompt of up to 75 tokens gives exactly diffusers' ``encode_prompt`` embeddings. (A1111 takes
  that mean over every prompt it encodes in one batch, e.g. all prompts of a schedule; here it is
  per prompt, so a prompt's embeddings never depend on what was encoded beside it.)
* Each chunk is its own encoder call, so a chunk's output is the same, bit for bit, whatever
  chunks surround it.
* Prompts encoded together (:func:`encode_prompts`, :func:`encode_prompt_pair`) are padded with
  the encoding of an empty chunk to the same number of chunks, so they can share a batch (A1111
  pads like this with its "Pad prompt/negative prompt" option; by default it runs the UNet on
  the two lengths separately instead).

Textual inversion: ``embeddings`` maps a name to one ``(vectors, hidden_size)`` tensor per text
encoder (SD1/SD2: one; SDXL: ``clip_l`` then ``clip_g``). Chunking reserves one position per
vector where the name appears; the vectors are written into the encoder's input embeddings at
those positions by a forward hook on ``model.get_input_embeddings()`` that exists only for that
call and only touches the ids tensor of that call (transformers 5's ``CLIPTextModel.forward``
takes no ``inputs_embeds``). The model itself is never changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from pipelines.errors import ValidationError
from pipelines.prompts.chunks import (
    CHUNK_LENGTH,
    DEFAULT_COMMA_BACKTRACK,
    PromptChunk,
    TokenizedPrompt,
    empty_chunk,
    tokenize_prompt,
)
from pipelines.prompts.emphasis import DEFAULT_EMPHASIS, EmphasisMode, check_emphasis_mode
from pipelines.prompts.limits import MAX_PROMPT_CHARS

EmbeddingVectors = Mapping[str, Sequence[torch.Tensor]]


@dataclass(frozen=True)
class ClipTextEncoder:
    """A CLIP tokenizer with its text model (``CLIPTextModel`` or ``CLIPTextModelWithProjection``)."""

    tokenizer: Any
    model: torch.nn.Module


@dataclass(frozen=True)
class PromptEncoder:
    """The text side of one model: its CLIP encoders and how their outputs are read."""

    encoders: tuple[ClipTextEncoder, ...]
    penultimate: bool  # SDXL: hidden states from the penultimate layer, no final norm, pooled output

    @classmethod
    def sd(cls, tokenizer: Any, text_encoder: torch.nn.Module) -> PromptEncoder:
        """SD1.x / SD2.x: one encoder, last layer (clip skip counts back from it)."""
        return cls((ClipTextEncoder(tokenizer, text_encoder),), penultimate=False)

    @classmethod
    def sdxl(
        cls, tokenizer: Any, text_encoder: torch.nn.Module, tokenizer_2: Any, text_encoder_2: torch.nn.Module
    ) -> PromptEncoder:
        """SDXL: CLIP-L and OpenCLIP-G, penultimate layers concatenated, pooled from the second."""
        return cls(
            (ClipTextEncoder(tokenizer, text_encoder), ClipTextEncoder(tokenizer_2, text_encoder_2)),
            penultimate=True,
        )

    @classmethod
    def sdxl_refiner(cls, tokenizer_2: Any, text_encoder_2: torch.nn.Module) -> PromptEncoder:
        """The SDXL refiner: OpenCLIP-G alone, read like SDXL's second encoder."""
        return cls((ClipTextEncoder(tokenizer_2, text_encoder_2),), penultimate=True)

    @classmethod
    def from_pipeline(cls, pipe: Any) -> PromptEncoder:
        """Read ``tokenizer``/``text_encoder`` (and ``_2`` for SDXL) off a diffusers pipeline."""
        if getattr(pipe, "text_encoder_2", None) is not None:
            if getattr(pipe, "text_encoder", None) is None:
                return cls.sdxl_refiner(pipe.tokenizer_2, pipe.text_encoder_2)
            return cls.sdxl(pipe.tokenizer, pipe.text_encoder, pipe.tokenizer_2, pipe.text_encoder_2)
        return cls.sd(pipe.tokenizer, pipe.text_encoder)


@dataclass(frozen=True)
class PromptEmbeds:
    """``embeds``: ``(1, 77 * chunks, hidden)``; ``pooled``: ``(1, projection_dim)`` for SDXL, else None."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None = None

    @property
    def chunks(self) -> int:
        return self.embeds.shape[1] // CHUNK_LENGTH

    def zeroed(self) -> PromptEmbeds:
        """All-zero embeddings of the same shapes (SDXL's "force zeros" for an empty negative prompt)."""
        pooled = None if self.pooled is None else torch.zeros_like(self.pooled)
        return PromptEmbeds(torch.zeros_like(self.embeds), pooled)


def encode_prompt(
    prompt: str,
    encoder: PromptEncoder,
    *,
    clip_skip: int = 1,
    emphasis: EmphasisMode = DEFAULT_EMPHASIS,
    embeddings: EmbeddingVectors | None = None,
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    field: str = "prompt",
    max_chars: int | None = MAX_PROMPT_CHARS,
) -> PromptEmbeds:
    """Encode one prompt text (prompt editing already expanded) to embeddings of its own length."""
    check_emphasis_mode(emphasis)
    _check_clip_skip(clip_skip, encoder)
    vectors = _check_embeddings(embeddings, encoder)
    sizes = {name: int(tensors[0].shape[0]) for name, tensors in vectors.items()}
    tokenized = [
        tokenize_prompt(
            prompt,
            enc.tokenizer,
            emphasis=emphasis,
            embeddings=sizes,
            comma_backtrack=comma_backtrack,
            field=field,
            max_chars=max_chars,
        )
        for enc in encoder.encoders
    ]
    return _encode_tokenized(tokenized, encoder, clip_skip, emphasis, vectors)


def encode_prompts(
    prompts: Sequence[str],
    encoder: PromptEncoder,
    *,
    clip_skip: int = 1,
    emphasis: EmphasisMode = DEFAULT_EMPHASIS,
    embeddings: EmbeddingVectors | None = None,
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    fields: Sequence[str] | None = None,
    max_chars: int | None = MAX_PROMPT_CHARS,
) -> list[PromptEmbeds]:
    """Encode several prompts (e.g. a schedule's distinct prompts and the negative's) and pad them
    with empty chunks to the same number of chunks. Identical texts are encoded once."""
    fields = list(fields) if fields is not None else ["prompt"] * len(prompts)
    if len(fields) != len(prompts):
        raise ValueError("fields must name one field per prompt")
    done: dict[str, PromptEmbeds] = {}
    for text, field in zip(prompts, fields, strict=True):
        if text not in done:
            done[text] = encode_prompt(
                text,
                encoder,
                clip_skip=clip_skip,
                emphasis=emphasis,
                embeddings=embeddings,
                comma_backtrack=comma_backtrack,
                field=field,
                max_chars=max_chars,
            )
    target = max((embeds.chunks for embeds in done.values()), default=1)
    empty = None
    if any(embeds.chunks < target for embeds in done.values()):
        empty = _encode_empty(encoder, clip_skip)
    return [pad_embeds(done[text], target, empty) for text in prompts]


def encode_prompt_pair(
    prompt: str,
    negative_prompt: str,
    encoder: PromptEncoder,
    *,
    clip_skip: int = 1,
    emphasis: EmphasisMode = DEFAULT_EMPHASIS,
    embeddings: EmbeddingVectors | None = None,
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    zero_empty_negative: bool = False,
    max_chars: int | None = MAX_PROMPT_CHARS,
) -> tuple[PromptEmbeds, PromptEmbeds]:
    """Positive and negative embeddings of equal length.

    ``zero_empty_negative``: an empty negative prompt becomes all zeros (embeddings and pooled),
    as A1111 and diffusers' ``force_zeros_for_empty_prompt`` do for SDXL.
    """
    positive, negative = encode_prompts(
        [prompt, negative_prompt],
        encoder,
        clip_skip=clip_skip,
        emphasis=emphasis,
        embeddings=embeddings,
        comma_backtrack=comma_backtrack,
        fields=["prompt", "negative_prompt"],
        max_chars=max_chars,
    )
    if zero_empty_negative and negative_prompt == "":
        negative = negative.zeroed()
    return positive, negative


def pad_embeds(embeds: PromptEmbeds, chunks: int, empty: PromptEmbeds | None) -> PromptEmbeds:
    """Append copies of ``empty`` (one encoded empty chunk) until ``embeds`` has ``chunks`` chunks."""
    missing = chunks - embeds.chunks
    if missing <= 0:
        return embeds
    if empty is None:
        raise ValueError("padding needs the encoding of an empty chunk")
    padding = empty.embeds.to(embeds.embeds.device, embeds.embeds.dtype).repeat(1, missing, 1)
    return PromptEmbeds(torch.cat([embeds.embeds, padding], dim=1), embeds.pooled)


# --- internals ---------------------------------------------------------------------------------


def _num_layers(model: torch.nn.Module) -> int:
    return int(model.config.num_hidden_layers)


def _check_clip_skip(clip_skip: int, encoder: PromptEncoder) -> None:
    limit = min(_num_layers(enc.model) for enc in encoder.encoders)
    if isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or not 1 <= clip_skip <= limit:
        raise ValidationError("clip_skip", f"must be a whole number from 1 to {limit}, got {clip_skip!r}")


def _check_embeddings(embeddings: EmbeddingVectors | None, encoder: PromptEncoder) -> dict[str, list[torch.Tensor]]:
    """Each embedding: one 2-D tensor per encoder, same vector count, the encoder's width."""
    checked: dict[str, list[torch.Tensor]] = {}
    for name, tensors in (embeddings or {}).items():
        tensors = list(tensors)
        if len(tensors) != len(encoder.encoders):
            raise ValueError(f"embedding {name!r} has {len(tensors)} tensors for {len(encoder.encoders)} encoders")
        for tensor, enc in zip(tensors, encoder.encoders, strict=True):
            width = int(enc.model.config.hidden_size)
            if tensor.ndim != 2 or tensor.shape[1] != width or tensor.shape[0] != tensors[0].shape[0]:
                shape = tuple(tensor.shape)
                raise ValueError(f"embedding {name!r}: a tensor of shape {shape} does not fit width {width}")
        checked[name] = tensors
    return checked


def _encode_empty(encoder: PromptEncoder, clip_skip: int) -> PromptEmbeds:
    tokenized = [TokenizedPrompt((empty_chunk(enc.tokenizer),), 0) for enc in encoder.encoders]
    return _encode_tokenized(tokenized, encoder, clip_skip, DEFAULT_EMPHASIS, {})


def _encode_tokenized(
    tokenized: list[TokenizedPrompt],
    encoder: PromptEncoder,
    clip_skip: int,
    emphasis: str,
    vectors: dict[str, list[torch.Tensor]],
) -> PromptEmbeds:
    counts = {len(t.chunks) for t in tokenized}
    if len(counts) != 1:
        raise ValueError("the text encoders' tokenizers split this prompt into different chunk counts")
    features: list[torch.Tensor] = []
    pooled: torch.Tensor | None = None
    for index, (enc, prompt) in enumerate(zip(encoder.encoders, tokenized, strict=True)):
        own_vectors = {name: tensors[index] for name, tensors in vectors.items()}
        z, pooled_all = _run_encoder(enc, prompt.chunks, clip_skip, encoder.penultimate, own_vectors)
        features.append(_apply_emphasis(z, prompt.chunks, emphasis))
        if encoder.penultimate and pooled_all is not None:
            pooled = pooled_all[:1]  # the last encoder's first chunk
    z = torch.cat(features, dim=-1) if len(features) > 1 else features[0]
    return PromptEmbeds(z.reshape(1, -1, z.shape[-1]), pooled if encoder.penultimate else None)


def _run_encoder(
    enc: ClipTextEncoder,
    chunks: Sequence[PromptChunk],
    clip_skip: int,
    penultimate: bool,
    vectors: Mapping[str, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(z, pooled)`` with ``z`` of shape ``(chunks, 77, hidden)``.

    One encoder call per chunk (batch of one, like diffusers): a chunk's output then does not
    depend on the chunks beside it, down to the last bit.
    """
    outputs = [_run_chunk(enc.model, chunk, clip_skip, penultimate, vectors) for chunk in chunks]
    z = torch.cat([z for z, _ in outputs])
    pooled = [pooled for _, pooled in outputs]
    return z, None if pooled[0] is None else torch.cat(pooled)


def _run_chunk(
    model: torch.nn.Module,
    chunk: PromptChunk,
    clip_skip: int,
    penultimate: bool,
    vectors: Mapping[str, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    ids = torch.tensor([chunk.ids], dtype=torch.long, device=model.device)
    attention_mask = None
    if getattr(model.config, "use_attention_mask", False):
        # BOS, the prompt's tokens and the first EOS are attended to, padding is not (as the tokenizer's mask).
        attention_mask = (torch.arange(ids.shape[1], device=model.device) < chunk.length + 2).long()[None, :]
    need_hidden = penultimate or clip_skip > 1
    with torch.no_grad(), _embedding_vectors(model, ids, [chunk], vectors):
        out = model(ids, attention_mask=attention_mask, output_hidden_states=need_hidden)
        if penultimate:
            z = out.hidden_states[-(clip_skip + 1)]
        elif clip_skip > 1:
            # transformers 5: CLIPTextModel is the text transformer itself; the projection model wraps one.
            transformer = getattr(model, "text_model", model)
            z = transformer.final_layer_norm(out.hidden_states[-clip_skip])
        else:
            z = out.last_hidden_state
    return z, getattr(out, "text_embeds", None)


@contextmanager
def _embedding_vectors(
    model: torch.nn.Module, ids: torch.Tensor, chunks: Sequence[PromptChunk], vectors: Mapping[str, torch.Tensor]
) -> Iterator[None]:
    """While inside, the model's token-embedding output for ``ids`` carries the embeddings' vectors."""
    slots = [(row, slot) for row, chunk in enumerate(chunks) for slot in chunk.embeddings]
    if not slots:
        yield
        return

    def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        given = args[0] if args else None
        # Only our own call: the model views our ids tensor, so the storage is the same.
        if not isinstance(given, torch.Tensor) or given.data_ptr() != ids.data_ptr() or given.shape != ids.shape:
            return None
        output = output.clone()
        for row, slot in slots:
            vector = vectors[slot.name]
            output[row, slot.position : slot.position + slot.length] = vector.to(output.device, output.dtype)
        return output

    handle = model.get_input_embeddings().register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _apply_emphasis(z: torch.Tensor, chunks: Sequence[PromptChunk], emphasis: str) -> torch.Tensor:
    """Weights per token, per chunk; "Original" restores each chunk's mean."""
    if emphasis not in ("Original", "No norm"):
        return z
    rows = []
    for row, chunk in zip(z, chunks, strict=True):
        if all(weight == 1.0 for weight in chunk.weights):
            rows.append(row)  # untouched: bit-identical to the unweighted encoder output
            continue
        weights = torch.tensor(chunk.weights, dtype=torch.float32, device=row.device)
        weighted = row * weights[:, None]
        if emphasis == "Original":
            weighted = _restore_mean(row, weighted)
        rows.append(weighted.to(row.dtype))
    return torch.stack(rows)


# A weighted chunk whose mean is this close to zero (relative to its values) cannot have its mean
# restored: the factor would blow the embeddings up (or divide by zero). Real CLIP outputs are far
# from it; a degenerate encoder (e.g. a random test model) keeps the plain weighting instead.
_MIN_RELATIVE_MEAN = 1e-3


def _restore_mean(row: torch.Tensor, weighted: torch.Tensor) -> torch.Tensor:
    """``weighted`` scaled so its mean is ``row``'s again (A1111's "Original" emphasis)."""
    old, new = row.float().mean(), weighted.float().mean()
    if not torch.isfinite(new) or new.abs() <= _MIN_RELATIVE_MEAN * weighted.float().abs().mean():
        return weighted
    return weighted * (old / new)
