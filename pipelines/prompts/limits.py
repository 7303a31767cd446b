"""The size limit every prompt entry point enforces before any parsing.

The parsers are iterative and near-linear, but a prompt of megabytes is never a real prompt;
refusing it up front keeps a single request from tying up a worker.
"""

from __future__ import annotations

from pipelines.errors import ValidationError

MAX_PROMPT_CHARS = 100_000


def check_prompt_length(text: str, *, field: str = "prompt", max_chars: int | None = MAX_PROMPT_CHARS) -> None:
    """Raise ``ValidationError(field, ...)`` when ``text`` is longer than ``max_chars`` characters.

    ``max_chars=None`` turns the check off (tests of the parsers' own scaling use it).
    """
    if not isinstance(text, str):
        raise ValidationError(field, f"must be text, got {type(text).__name__}")
    if max_chars is not None and len(text) > max_chars:
        raise ValidationError(field, f"is {len(text):,} characters long; the limit is {max_chars:,}")
