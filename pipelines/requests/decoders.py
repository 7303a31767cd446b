"""A request's decoders: A1111's "VAE type for decode / encode" and "Live preview method" settings, and the
checks that name a bad value (used by :class:`~pipelines.requests.base.GenerationRequest`)."""

from __future__ import annotations

from typing import Any

from pipelines.errors import ValidationError

FULL = "Full"
TAESD = "TAESD"
APPROX_CHEAP = "Approx cheap"
DECODE_METHODS = (FULL, TAESD)  # sd_vae_decode_method, sd_vae_encode_method
PREVIEW_METHODS = (APPROX_CHEAP, TAESD, FULL)  # show_progress_type (A1111's "Approx NN" is not offered)


def check_decoder_fields(request: Any) -> None:
    """Each method is one Atelier knows, or a ValidationError naming the field."""
    for name, choices in (("sd_vae_decode_method", DECODE_METHODS), ("sd_vae_encode_method", DECODE_METHODS),
                          ("show_progress_type", PREVIEW_METHODS)):
        value = getattr(request, name, choices[0])
        if value not in choices:
            raise ValidationError(name, f"must be one of {list(choices)}, got {value!r}")
