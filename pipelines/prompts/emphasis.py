"""A1111's emphasis (attention) syntax: a prompt split into (text, weight) pieces.

Behaviour (AUTOMATIC1111 webui 1.10, written from its documented behaviour):

* ``(text)`` multiplies the weight of ``text`` by 1.1, ``[text]`` by 1/1.1, ``(text:1.3)`` by 1.3;
  nesting multiplies. Multipliers are applied in the order the brackets close, unclosed ``(``
  (outermost first) and then unclosed ``[`` (outermost first) at the end of the prompt, so the
  float values are the ones A1111 computes (``a (((house:1.3))`` gives ``1.5730000000000004``).
* ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal characters. A backslash before any other
  character is dropped, as in A1111 (``a\\b`` reads ``ab``).
* An unclosed ``(`` or ``[`` applies to the end of the prompt. A closing bracket with nothing
  open is kept as literal text (A1111 does this; it is not removed).
* ``:<number>)`` is a weight only while a ``(`` is open; any other ``:`` is text.
* ``BREAK`` (upper case, as a whole word, with the white space around it) is a marker piece that
  ends the current 75-token chunk. A ``BREAK`` inside brackets is a marker too (A1111 instead
  turns it into the word "break" with a negative weight, which is a bug, not a feature).
* Neighbouring pieces of equal weight merge into one piece; empty pieces are dropped; a prompt
  with no text at all is the single piece ``("", 1.0)``.

Emphasis modes (A1111 setting "Emphasis"): ``Original`` (default) and ``No norm`` parse as above
and differ only in how the encoder applies the weights; ``Ignore`` parses as above and the encoder
ignores the weights; ``None`` reads the whole prompt as one plain piece of weight 1.0 (brackets,
backslashes and ``BREAK`` are plain text, exactly as A1111 does).

The scanner is a single left-to-right loop (no recursion), and weights are kept as runs of pieces
that share a value, so deep or unbalanced brackets stay cheap.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from typing import Literal, get_args

from pipelines.errors import ValidationError
from pipelines.prompts.limits import MAX_PROMPT_CHARS, check_prompt_length

EmphasisMode = Literal["Original", "No norm", "Ignore", "None"]
EMPHASIS_MODES: tuple[str, ...] = get_args(EmphasisMode)
DEFAULT_EMPHASIS: EmphasisMode = "Original"

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1

# A weight may only be updated this many times in total (one update = one run of equal-weight
# pieces times one bracket). Real prompts need a few hundred; the cap only stops prompts built to
# cost minutes (thousands of differently weighted pieces inside thousands of brackets).
MAX_WEIGHT_UPDATES = 1_000_000

_WEIGHT = re.compile(r":\s*([+-]?[.\d]+)\s*\)")
_TEXT = re.compile(r"[^\\()\[\]:]+")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
_ESCAPABLE = frozenset("()[]\\")


@dataclass(frozen=True, slots=True)
class PromptPiece:
    """A run of prompt text with one weight, or a ``BREAK`` marker (``is_break``)."""

    text: str
    weight: float = 1.0
    is_break: bool = False


BREAK_PIECE = PromptPiece("BREAK", 1.0, is_break=True)


def check_emphasis_mode(mode: str) -> EmphasisMode:
    """Return ``mode`` when it names an emphasis mode, else raise ``ValidationError("emphasis")``."""
    if mode not in EMPHASIS_MODES:
        raise ValidationError("emphasis", f"unknown mode {mode!r}; choose one of {', '.join(EMPHASIS_MODES)}")
    return mode  # type: ignore[return-value]


def parse_emphasis(
    prompt: str,
    *,
    mode: EmphasisMode = DEFAULT_EMPHASIS,
    field: str = "prompt",
    max_chars: int | None = MAX_PROMPT_CHARS,
) -> list[PromptPiece]:
    """Split ``prompt`` into weighted pieces and ``BREAK`` markers (see the module docstring).

    Raises ``ValidationError(field, ...)`` for a prompt over ``max_chars`` characters, a weight
    that is not a number (``(a:1.2.3)``) or weights that overflow.
    """
    check_emphasis_mode(mode)
    check_prompt_length(prompt, field=field, max_chars=max_chars)
    if mode == "None":
        return [PromptPiece(prompt, 1.0)]

    texts: list[str] = []
    breaks: list[bool] = []
    weights = _Weights(field)
    round_open: list[int] = []
    square_open: list[int] = []

    def add_text(text: str) -> None:
        for i, part in enumerate(_BREAK.split(text)):
            if i > 0:
                weights.add_piece(len(texts))
                texts.append(BREAK_PIECE.text)
                breaks.append(True)
            weights.add_piece(len(texts))
            texts.append(part)
            breaks.append(False)

    pos, end = 0, len(prompt)
    while pos < end:
        char = prompt[pos]
        if char == "\\":
            # An escaped bracket or backslash is literal; a lone backslash vanishes (A1111).
            nxt = prompt[pos + 1] if pos + 1 < end else ""
            literal = nxt if nxt in _ESCAPABLE else ""
            weights.add_piece(len(texts))
            texts.append(literal)
            breaks.append(False)
            pos += 1 + len(literal)
        elif char == "(" or char == "[":
            (round_open if char == "(" else square_open).append(len(texts))
            weights.open(len(texts))
            pos += 1
        elif char == ":":
            match = _WEIGHT.match(prompt, pos)
            if match is not None and round_open:
                weights.apply(round_open.pop(), _parse_weight(match.group(1), field))
            else:
                literal = match.group(0) if match is not None else ":"
                add_text(literal)
            pos += len(match.group(0)) if match is not None else 1
        elif char == ")" and round_open:
            weights.apply(round_open.pop(), ROUND_MULTIPLIER)
            pos += 1
        elif char == "]" and square_open:
            weights.apply(square_open.pop(), SQUARE_MULTIPLIER)
            pos += 1
        elif char == ")" or char == "]":
            add_text(char)  # nothing open: A1111 keeps the bracket as text
            pos += 1
        else:
            match = _TEXT.match(prompt, pos)
            assert match is not None  # every special character is handled above
            add_text(match.group(0))
            pos = match.end()

    for start in round_open:
        weights.apply(start, ROUND_MULTIPLIER)
    for start in square_open:
        weights.apply(start, SQUARE_MULTIPLIER)
    return _merge(texts, breaks, weights.expand(len(texts)), field)


def _parse_weight(text: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValidationError(field, f"emphasis weight {text!r} is not a number") from None


class _Weights:
    """Piece weights as runs ``[starts[i], starts[i+1])`` of pieces sharing one value.

    A bracket closing multiplies every piece from its opening position to the current end, which
    is a suffix of the runs. Runs whose values become equal merge unless a still-open bracket
    starts between them, so the work per bracket is the number of distinct weights it covers.
    """

    def __init__(self, field: str) -> None:
        self.field = field
        self.starts: list[int] = []
        self.values: list[float] = []
        self.open_at: Counter[int] = Counter()
        self.updates = 0

    def open(self, position: int) -> None:
        self.open_at[position] += 1

    def add_piece(self, index: int) -> None:
        if not self.values or self.values[-1] != 1.0 or self.open_at[index]:
            self.starts.append(index)
            self.values.append(1.0)

    def apply(self, start: int, multiplier: float) -> None:
        self.open_at[start] -= 1
        if not self.open_at[start]:
            del self.open_at[start]
        first = bisect_left(self.starts, start)
        if first == len(self.starts):
            return  # no text since the bracket opened
        self.updates += len(self.starts) - first
        if self.updates > MAX_WEIGHT_UPDATES:
            raise ValidationError(self.field, "too many differently weighted pieces inside nested brackets")
        for i in range(first, len(self.values)):
            self.values[i] *= multiplier
        self._merge_from(max(first, 1))

    def _merge_from(self, first: int) -> None:
        starts = self.starts[first - 1 :]
        values = self.values[first - 1 :]
        kept_starts, kept_values = [starts[0]], [values[0]]
        for start, value in zip(starts[1:], values[1:], strict=True):
            if value == kept_values[-1] and start not in self.open_at:
                continue
            kept_starts.append(start)
            kept_values.append(value)
        del self.starts[first - 1 :]
        del self.values[first - 1 :]
        self.starts.extend(kept_starts)
        self.values.extend(kept_values)

    def expand(self, count: int) -> list[float]:
        out: list[float] = []
        bounds = self.starts[1:] + [count] if self.starts else []
        for start, stop, value in zip(self.starts, bounds, self.values, strict=True):
            out.extend([value] * (stop - start))
        return out


def _merge(texts: list[str], breaks: list[bool], weights: list[float], field: str) -> list[PromptPiece]:
    """Join neighbours of equal weight (empty pieces included, as A1111 does), then drop empties."""
    merged: list[tuple[list[str], float, bool]] = []  # (text parts, weight, is_break)
    for text, weight, is_break in zip(texts, weights, breaks, strict=True):
        if merged and not is_break and not merged[-1][2] and merged[-1][1] == weight:
            merged[-1][0].append(text)
        else:
            merged.append(([text], weight, is_break))
    pieces = [PromptPiece("".join(parts), 1.0 if b else w, b) for parts, w, b in merged]
    pieces = [piece for piece in pieces if piece.is_break or piece.text]
    for piece in pieces:
        if not math.isfinite(piece.weight):
            raise ValidationError(field, f"the emphasis weight of {piece.text[:40]!r} overflows")
    return pieces or [PromptPiece("", 1.0)]
