"""One pass's text conditioning: the embeddings the UNet sees at each step, and switching them.

``build_conditioning`` expands prompt editing and alternation over the pass's steps, encodes every
distinct prompt text once (A1111's chunked, weighted encoding, :mod:`pipelines.prompts.encode`),
pads them all to the same number of chunks and hands diffusers ``prompt_embeds`` (and SDXL's
pooled embeddings) for the first step. When a schedule changes, :meth:`Conditioning.step_tensors`
replaces the pipeline's ``prompt_embeds`` (and ``add_text_embeds``) through diffusers'
documented ``callback_on_step_end`` tensors, for the step that follows.

Steps are counted as A1111's sampler counts them: every UNet evaluation advances the counter, so
the schedule index for the next evaluation is the callback's step index + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pipelines.prompts.encode import EmbeddingVectors, PromptEmbeds, PromptEncoder, encode_prompts
from pipelines.prompts.schedule import PromptSchedule, build_schedule


@dataclass(frozen=True)
class Conditioning:
    """Per-step embeddings of one pass: ``positive[i]`` / ``negative[j]`` for the schedules' distinct texts."""

    positive_schedule: PromptSchedule
    negative_schedule: PromptSchedule
    positive: tuple[PromptEmbeds, ...]
    negative: tuple[PromptEmbeds, ...]
    sdxl: bool
    start: int = 0  # the schedule step of the pass's first step (an SDXL refiner taking over mid-schedule)

    @property
    def changes(self) -> bool:
        """True when some step sees other embeddings than the first."""
        return not (self.positive_schedule.is_static and self.negative_schedule.is_static)

    @property
    def tensor_inputs(self) -> list[str]:
        """The ``callback_on_step_end_tensor_inputs`` the step callback needs."""
        if not self.changes:
            return []
        return ["prompt_embeds", "add_text_embeds"] if self.sdxl else ["prompt_embeds"]

    def _indices(self, step: int) -> tuple[int, int]:
        return self.positive_schedule.index_at(step + self.start), self.negative_schedule.index_at(step + self.start)

    def _at(self, step: int) -> tuple[PromptEmbeds, PromptEmbeds]:
        positive, negative = self._indices(step)
        return self.positive[positive], self.negative[negative]

    def call_kwargs(self, batch_size: int) -> dict[str, torch.Tensor]:
        """diffusers' call arguments for the first step, one row per image of the batch."""
        positive, negative = self._at(0)
        kwargs = {"prompt_embeds": positive.embeds.repeat(batch_size, 1, 1),
                  "negative_prompt_embeds": negative.embeds.repeat(batch_size, 1, 1)}
        if self.sdxl:
            kwargs["pooled_prompt_embeds"] = positive.pooled.repeat(batch_size, 1)
            kwargs["negative_pooled_prompt_embeds"] = negative.pooled.repeat(batch_size, 1)
        return kwargs

    def step_tensors(self, pipe: Any, step: int, tensors: dict[str, Any]) -> dict[str, Any]:
        """After step ``step`` (0-based), the tensors for step ``step + 1`` when its embeddings differ."""
        if not self.changes or self._indices(step + 1) == self._indices(step):
            return tensors
        positive, negative = self._at(step + 1)
        current = tensors["prompt_embeds"]
        guided = getattr(pipe, "do_classifier_free_guidance", False)
        batch = current.shape[0] // 2 if guided else current.shape[0]
        embeds = positive.embeds.repeat(batch, 1, 1)
        if guided:
            embeds = torch.cat([negative.embeds.repeat(batch, 1, 1), embeds])
        tensors["prompt_embeds"] = embeds.to(current.device, current.dtype)
        if self.sdxl:
            pooled = positive.pooled.repeat(batch, 1)
            if guided:
                pooled = torch.cat([negative.pooled.repeat(batch, 1), pooled])
            tensors["add_text_embeds"] = pooled.to(tensors["add_text_embeds"].device, tensors["add_text_embeds"].dtype)
        return tensors


@torch.inference_mode()
def build_conditioning(pipe: Any, *, prompt: str, negative_prompt: str, steps: int, clip_skip: int = 1,
                       emphasis: str = "Original", embeddings: EmbeddingVectors | None = None,
                       first_pass_steps: int | None = None) -> Conditioning:
    """The conditioning of one pass of ``steps`` UNet steps on ``pipe``'s text encoders.

    ``first_pass_steps``: for hires fix's second pass, the first pass's steps (A1111 reads prompt
    editing on one timeline across both passes). SDXL ignores ``clip_skip``, as A1111 1.10 does by
    default, and an empty negative prompt is all zeros there (A1111, diffusers'
    ``force_zeros_for_empty_prompt``).
    """
    encoder = PromptEncoder.from_pipeline(pipe)
    sdxl = encoder.penultimate
    positive = build_schedule(prompt, steps, first_pass_steps=first_pass_steps, field="prompt")
    negative = build_schedule(negative_prompt, steps, first_pass_steps=first_pass_steps, field="negative_prompt")
    texts = [*positive.distinct, *negative.distinct]
    fields = ["prompt"] * len(positive.distinct) + ["negative_prompt"] * len(negative.distinct)
    encoded = encode_prompts(texts, encoder, clip_skip=1 if sdxl else clip_skip, emphasis=emphasis,
                             embeddings=embeddings, fields=fields)
    split = len(positive.distinct)
    negatives = encoded[split:]
    if sdxl and getattr(pipe.config, "force_zeros_for_empty_prompt", False):
        negatives = [e.zeroed() if text == "" else e for e, text in zip(negatives, negative.distinct, strict=True)]
    return Conditioning(positive, negative, tuple(encoded[:split]), tuple(negatives), sdxl)
