"""Emphasis parsing: every example of the reference page (section 1), escapes, unbalanced and
stray brackets, BREAK, modes, and size/abuse limits."""

from __future__ import annotations

import time

import pytest

from pipelines.errors import ValidationError
from pipelines.prompts.emphasis import (
    EMPHASIS_MODES,
    MAX_WEIGHT_UPDATES,
    PromptPiece,
    check_emphasis_mode,
    parse_emphasis,
)
from pipelines.prompts.limits import MAX_PROMPT_CHARS


def pairs(prompt: str, **kwargs) -> list[tuple[str, float]]:
    return [(piece.text, piece.weight) for piece in parse_emphasis(prompt, **kwargs)]


# Exact float values: multipliers are applied in the order A1111 applies them, so the results are
# A1111's own numbers (e.g. 1.3 * 1.1 * 1.1 = 1.5730000000000004), not merely close to them.
REFERENCE_EXAMPLES = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.5730000000000004),
            (" ", 1.1),
            ("on", 1.0),
            (" a ", 1.1),
            ("hill", 0.55),
            (", sun, ", 1.1),
            ("sky", 1.4641000000000006),
            (".", 1.1),
        ],
    ),
]


@pytest.mark.parametrize(("prompt", "expected"), REFERENCE_EXAMPLES)
def test_reference_examples(prompt, expected):
    assert pairs(prompt) == expected


def test_multipliers():
    assert pairs("(a)") == [("a", 1.1)]
    assert pairs("[a]") == [("a", 1 / 1.1)]
    assert pairs("(a:1.3)") == [("a", 1.3)]
    assert pairs("((a))") == [("a", 1.1 * 1.1)]
    assert pairs("[[a]]") == [("a", (1 / 1.1) * (1 / 1.1))]
    assert pairs("([a])") == [("a", (1 / 1.1) * 1.1)]
    assert pairs("((a:1.5))") == [("a", 1.5 * 1.1)]


def test_weight_syntax_variants():
    assert pairs("(a : 1.5 )") == [("a ", 1.5)]  # the space before the colon is text
    assert pairs("(a:-1)") == [("a", -1.0)]
    assert pairs("(a:.5)") == [("a", 0.5)]
    assert pairs("(a:+2)") == [("a", 2.0)]
    assert pairs("(a:0)") == [("a", 0.0)]


def test_colon_is_a_weight_only_inside_round_brackets():
    assert pairs("a:1.2) b") == [("a:1.2) b", 1.0)]
    assert pairs("[a:1.2]") == [("a:1.2", 1 / 1.1)]
    assert pairs("(a:b)") == [("a:b", 1.1)]
    assert pairs("time: 12:30") == [("time: 12:30", 1.0)]
    assert pairs("(a:1e3)") == [("a:1e3", 1.1)]  # not a number A1111 accepts: the colon is text


def test_weight_that_is_not_a_number_is_refused():
    with pytest.raises(ValidationError) as err:
        parse_emphasis("x (a:1.2.3)")
    assert err.value.field == "prompt"
    assert "1.2.3" in err.value.message
    with pytest.raises(ValidationError):
        parse_emphasis("(a:.)", field="negative_prompt")


def test_escapes():
    assert pairs("\\(a\\)") == [("(a)", 1.0)]
    assert pairs("\\[a\\]") == [("[a]", 1.0)]
    assert pairs("a\\\\b") == [("a\\b", 1.0)]
    assert pairs("(\\(x\\))") == [("(x)", 1.1)]
    assert pairs("\\(a:1.5\\)") == [("(a:1.5)", 1.0)]


def test_backslash_before_other_characters_is_dropped_like_a1111():
    assert pairs("a\\b") == [("ab", 1.0)]
    assert pairs("end\\") == [("end", 1.0)]
    assert pairs("(a\\:1.2)") == [("a", 1.2)]


def test_unclosed_brackets_apply_to_the_end():
    assert pairs("a (b c") == [("a ", 1.0), ("b c", 1.1)]
    assert pairs("a [b c") == [("a ", 1.0), ("b c", 1 / 1.1)]
    assert pairs("((a)") == [("a", 1.1 * 1.1)]
    assert pairs("(a (b") == [("a ", 1.1), ("b", 1.1 * 1.1)]
    # Unclosed round brackets apply first (outermost first), then unclosed square ones.
    assert pairs("[a (b") == [("a ", 1 / 1.1), ("b", 1.1 * (1 / 1.1))]


def test_stray_closing_brackets_are_kept_as_text_like_a1111():
    # The reference page says "ignored"; A1111 1.10 keeps them as literal text.
    assert pairs("a) b]") == [("a) b]", 1.0)]
    assert pairs("(a)) b") == [("a", 1.1), (") b", 1.0)]


def test_interleaved_brackets_follow_closing_order():
    assert pairs("(a [b) c]") == [("a ", 1.1), ("b", 1.1 * (1 / 1.1)), (" c", 1 / 1.1)]


def test_equal_weight_neighbours_merge():
    assert pairs("(a)(b)") == [("ab", 1.1)]
    assert pairs("((a))((b)) c") == [("ab", 1.1 * 1.1), (" c", 1.0)]
    assert pairs("(a:1.2)(b:1.2)") == [("ab", 1.2)]
    assert pairs("(a:1.2)(b:1.3)") == [("a", 1.2), ("b", 1.3)]


def test_empty_and_bracket_only_prompts():
    assert pairs("") == [("", 1.0)]
    assert pairs("()") == [("", 1.0)]
    assert pairs("[[]]") == [("", 1.0)]
    assert pairs("   ") == [("   ", 1.0)]


def breaks(prompt: str) -> list[str | tuple[str, float]]:
    return ["BREAK" if p.is_break else (p.text, p.weight) for p in parse_emphasis(prompt)]


def test_break_in_the_middle():
    assert breaks("a BREAK b") == [("a", 1.0), "BREAK", ("b", 1.0)]
    assert breaks("a,BREAK,b") == [("a,", 1.0), "BREAK", (",b", 1.0)]
    assert breaks("a\nBREAK\nb") == [("a", 1.0), "BREAK", ("b", 1.0)]


def test_break_at_start_and_end():
    assert breaks("BREAK a") == ["BREAK", ("a", 1.0)]
    assert breaks("a BREAK") == [("a", 1.0), "BREAK"]
    assert breaks("BREAK") == ["BREAK"]
    assert breaks("BREAK BREAK") == ["BREAK", "BREAK"]
    assert breaks("a BREAK BREAK b") == [("a", 1.0), "BREAK", "BREAK", ("b", 1.0)]


def test_break_only_as_an_upper_case_word():
    assert breaks("BREAKfast break Break") == [("BREAKfast break Break", 1.0)]
    assert breaks("a_BREAK") == [("a_BREAK", 1.0)]
    assert breaks("(a)BREAK(b)") == [("a", 1.1), "BREAK", ("b", 1.1)]


def test_break_inside_brackets_is_still_a_break():
    # A1111 turns this into the word "break" with weight -1.1 (a bug); we keep it a chunk break.
    assert breaks("(a BREAK b)") == [("a", 1.1), "BREAK", ("b", 1.1)]
    piece = parse_emphasis("(BREAK)")[0]
    assert piece == PromptPiece("BREAK", 1.0, is_break=True)


def test_escaped_break_neighbours_do_not_merge_across_it():
    assert breaks("a BREAK a") == [("a", 1.0), "BREAK", ("a", 1.0)]


def test_modes():
    assert EMPHASIS_MODES == ("Original", "No norm", "Ignore", "None")
    for mode in ("Original", "No norm", "Ignore"):
        assert pairs("a (b)", mode=mode) == [("a ", 1.0), ("b", 1.1)]
    # None: the whole prompt is one plain piece, brackets, escapes and BREAK included (as A1111).
    assert pairs("a (b:1.5) \\[c\\] BREAK d", mode="None") == [("a (b:1.5) \\[c\\] BREAK d", 1.0)]
    assert pairs("", mode="None") == [("", 1.0)]


def test_unknown_mode_is_refused():
    with pytest.raises(ValidationError) as err:
        parse_emphasis("a", mode="Loud")
    assert err.value.field == "emphasis"
    with pytest.raises(ValidationError):
        check_emphasis_mode("original")
    assert check_emphasis_mode("No norm") == "No norm"


def test_one_megabyte_of_brackets_is_refused_quickly():
    prompt = "(" * 1_000_000
    start = time.thread_time()  # this thread's CPU time: the parser's cost, not the machine's load
    with pytest.raises(ValidationError) as err:
        parse_emphasis(prompt)
    assert time.thread_time() - start < 0.5
    assert err.value.field == "prompt"
    assert f"{MAX_PROMPT_CHARS:,}" in err.value.message
    with pytest.raises(ValidationError) as err:
        parse_emphasis("[" * (MAX_PROMPT_CHARS + 1), field="negative_prompt")
    assert err.value.field == "negative_prompt"


@pytest.mark.parametrize(
    "prompt",
    [
        "(" * MAX_PROMPT_CHARS,
        "[" * MAX_PROMPT_CHARS,
        ")" * MAX_PROMPT_CHARS,
        "(" * 49_999 + "a" + ")" * 50_000,
        "([" * (MAX_PROMPT_CHARS // 2),
        "(a)" * (MAX_PROMPT_CHARS // 3),
        "\\(" * (MAX_PROMPT_CHARS // 2),
    ],
    ids=["open-round", "open-square", "close", "deep-nesting", "interleaved", "many-groups", "escapes"],
)
def test_prompts_at_the_limit_are_fast_and_iterative(prompt):
    start = time.thread_time()
    try:
        parse_emphasis(prompt)
    except ValidationError as err:  # the deep nesting overflows its weight: refused, not crashed
        assert "overflows" in err.message
    assert time.thread_time() - start < 2.0


def test_deep_nesting_keeps_exact_weights():
    assert pairs("(" * 30 + "a" + ")" * 30) == [("a", _repeat(1.1, 30))]
    assert pairs("(" * 30 + "a") == [("a", _repeat(1.1, 30))]


def _repeat(multiplier: float, times: int) -> float:
    value = 1.0
    for _ in range(times):
        value *= multiplier
    return value


def test_prompts_built_to_be_slow_are_refused():
    # Thousands of pieces with different weights, each inside thousands of brackets.
    prompt = "(a" * 3000
    start = time.thread_time()
    with pytest.raises(ValidationError) as err:
        parse_emphasis(prompt)
    assert "nested brackets" in err.value.message
    assert time.thread_time() - start < 2.0
    assert MAX_WEIGHT_UPDATES >= 1_000_000  # far above anything a real prompt needs
    assert len(parse_emphasis("(a" * 500)) == 500  # a few hundred unclosed groups still work


def test_not_text_is_refused():
    with pytest.raises(ValidationError):
        parse_emphasis(None)  # type: ignore[arg-type]
