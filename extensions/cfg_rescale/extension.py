"""CFG rescale through the step hook: pulls over-guided latents back to the spread a latent should have.

High CFG scales push the latents' spread (standard deviation) beyond what the VAE's latent space holds,
which shows as burnt, over-saturated images. Lin et al. ("Common Diffusion Noise Schedules and Sample
Steps are Flawed", 2023, section 3.4) fix it on the noise prediction: rescale the guided prediction to
the standard deviation of the conditional one, then mix with weight phi. The step hook sees latents,
not predictions, so this extension applies the same rescale-and-mix to the latents after each step,
with the spread a well-formed latent has at that noise level as the reference:

    s_ref = sqrt(1 + sigma^2)   when the scheduler has sigmas (latents = x0 + sigma * noise; SD's latents
                                are scaled to unit variance by the VAE's scaling factor, so std(x0) ~ 1)
    s_ref = 1                   otherwise (DDIM-style schedules keep unit variance at every step)
    x <- phi * x * s_ref / std(x) + (1 - phi) * x        (per image, over channels and pixels)

phi = 0 leaves every step untouched; 0.7 is the paper's suggestion. Written as "CFG Rescale phi" in the
infotext, the key A1111's CFG-rescale extension uses.
"""

from __future__ import annotations

import math

from pipelines.extension_api import (
    API_VERSION,
    BeforeJob,
    ExtensionContext,
    Field,
    HookPoint,
    JobChange,
    Section,
    StepChange,
    StepEnd,
)

api_version = API_VERSION
INFOTEXT_KEY = "CFG Rescale \u03c6"


def rescaled(latents, sigma: float | None, phi: float):
    """The latents rescaled towards the reference spread (see the module docstring)."""
    reference = math.sqrt(1.0 + sigma * sigma) if sigma is not None else 1.0
    dims = tuple(range(1, latents.ndim))
    spread = latents.float().std(dim=dims, keepdim=True).clamp_min(1e-6)
    mixed = phi * latents.float() * (reference / spread) + (1.0 - phi) * latents.float()
    return mixed.to(latents.dtype)


def on_step_end(event: StepEnd) -> StepChange | None:
    phi = float(event.args.get("phi", 0.0))
    if phi <= 0:
        return None
    return StepChange(latents=rescaled(event.latents, event.sigma, phi))


def before_job(event: BeforeJob) -> JobChange | None:
    phi = float(event.args.get("phi", 0.0))
    return JobChange(infotext={INFOTEXT_KEY: phi}) if phi > 0 else None


def register(ctx: ExtensionContext) -> None:
    ctx.add_section(Section("CFG Rescale", (Field("phi", "CFG Rescale \u03c6", "slider", 0.0, 0.0, 1.0, 0.05),)))
    ctx.on(HookPoint.BEFORE_JOB, before_job)
    ctx.on(HookPoint.STEP_END, on_step_end)
