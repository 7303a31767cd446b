"""Prompt suffix: a before_job example. Text added to the end of the prompt and of the negative prompt
for this job only (the form keeps what you typed; the image's infotext has the prompts the model saw)."""

from __future__ import annotations

from dataclasses import replace

from pipelines.extension_api import API_VERSION, BeforeJob, ExtensionContext, Field, HookPoint, Section

api_version = API_VERSION


def _joined(text: str, suffix: str) -> str:
    return f"{text}, {suffix}" if text.strip() else suffix


def before_job(event: BeforeJob):
    suffix, negative = (event.args.get(k, "").strip() for k in ("suffix", "negative_suffix"))
    if not suffix and not negative:
        return None
    request = event.request
    return replace(request, prompt=_joined(request.prompt, suffix) if suffix else request.prompt,
                   negative_prompt=_joined(request.negative_prompt, negative) if negative else request.negative_prompt)


def register(ctx: ExtensionContext) -> None:
    ctx.add_section(Section("Prompt suffix", (
        Field("suffix", "Add to the prompt", "text", ""),
        Field("negative_suffix", "Add to the negative prompt", "text", ""),
    )))
    ctx.on(HookPoint.BEFORE_JOB, before_job)
