"""A job's decoders: the TAESD a request asks for (:mod:`pipelines.networks.taesd`) put in place on its
:class:`~pipelines.modes.common.JobContext`.

- decode with TAESD: the job's pipeline view holds the TAESD as its ``vae`` (the cached checkpoint is untouched);
- encode with another VAE than the one that decodes (img2img): ``ctx.encode_vae``, which img2img encodes its
  init image with before handing the pipeline ready latents;
- live previews decoded by TAESD or by the full VAE: ``ctx.previewer``.
"""

from __future__ import annotations

from pipelines.imaging.vae_io import DecodedPreviewer
from pipelines.modes.common import JobContext, with_vae
from pipelines.networks.taesd import FULL, TAESD, JobTaesd


def with_taesd(ctx: JobContext, tiny: JobTaesd, mode: str) -> JobContext:
    """``ctx`` (whose pipeline already holds the job's SD VAE) set up for ``tiny``'s decode, encode and previews."""
    assert ctx.loaded is not None
    full = ctx.loaded.pipeline.vae
    if tiny.decode:
        ctx.loaded = with_vae(ctx.loaded, tiny.vae)
    if tiny.decode != tiny.encode:  # img2img encodes with the other one (inpaint with the decoder, see README)
        ctx.encode_vae = full if tiny.decode else tiny.vae
    if tiny.preview == TAESD:
        ctx.previewer = DecodedPreviewer(tiny.vae)
    elif tiny.preview == FULL:
        ctx.previewer = DecodedPreviewer(full)
    ctx.vae_params.update(tiny.infotext(mode))
    return ctx
