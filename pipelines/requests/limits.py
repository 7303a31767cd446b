"""How many output pixels one job may make: checked in ``validate()``, before any work, naming the field and the limit.

Every image a job returns is held in memory (3 bytes a pixel as RGB, more while it is encoded), so a job
is refused up front when one of its images, or all of them together, would pass these limits:

- :data:`MAX_OUTPUT_IMAGE_PIXELS`, one image: 8192 x 8192 (67 megapixels, ~200 MB as RGB). Generation
  sizes are at most 4096 a side anyway; this bounds upscaling (a 2000 x 2000 image upscaled 8x, 16000 x 16000,
  is refused; a 2048 x 2048 one upscaled 4x is fine).
- :data:`MAX_JOB_PIXELS`, all images of a job together: 256 megapixels (~768 MB as RGB). A1111's largest
  UI batch at its default size (batch size 8 x batch count 100 at 512 x 512, 210 megapixels) still fits;
  4096 x 4096 x 16 (268 megapixels) does not.

Prompts are capped too (:data:`MAX_PROMPT_CHARS`): the text encoder runs once per 75 tokens, so a 1 MB
prompt would hold the device for thousands of passes. A1111 has no cap; 65,536 characters is ~50 times
the longest prompts in common use.
"""

from __future__ import annotations

from pipelines.errors import ValidationError

MAX_OUTPUT_IMAGE_PIXELS = 8192 * 8192
MAX_JOB_PIXELS = 256_000_000
MAX_PROMPT_CHARS = 65_536


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def check_output_pixels(field: str, size: tuple[int, int], count: int = 1, *, total_before: int = 0) -> int:
    """Raise :class:`ValidationError` on ``field`` when one ``size`` image, or ``count`` of them (after
    ``total_before`` pixels of other images of the same job), pass a limit; return the job's total so far."""
    width, height = size
    pixels = width * height
    if pixels > MAX_OUTPUT_IMAGE_PIXELS:
        raise ValidationError(field, f"would make a {width}x{height} image ({_megapixels(pixels)}); the limit is "
                              f"{_megapixels(MAX_OUTPUT_IMAGE_PIXELS)} per image (8192x8192)")
    total = total_before + pixels * count
    if total > MAX_JOB_PIXELS:
        raise ValidationError(field, f"would make {_megapixels(total)} of images in one job ({count} of "
                              f"{width}x{height}); the limit is {_megapixels(MAX_JOB_PIXELS)} per job; "
                              "make fewer or smaller images per job")
    return total


def check_prompt_length(field: str, text: str) -> None:
    if len(text) > MAX_PROMPT_CHARS:
        raise ValidationError(field, f"is {len(text):,} characters long; the limit is {MAX_PROMPT_CHARS:,}")
