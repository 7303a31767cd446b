"""Prompt editing and alternation: every example of the reference page (section 4), nesting,
pass-through of emphasis syntax, unreadable prompts, timelines, step lookup and size limits."""

from __future__ import annotations

import time

import pytest

from pipelines.errors import ValidationError
from pipelines.prompts.limits import MAX_PROMPT_CHARS
from pipelines.prompts.schedule import PromptSchedule, build_schedule


def schedule(prompt: str, steps: int = 10, **kwargs) -> list[tuple[int, str]]:
    return build_schedule(prompt, steps, **kwargs).as_list()


REFERENCE_EXAMPLES = [
    ("a [b:3]", [(3, "a "), (10, "a b")]),
    ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
    ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
    ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
    ("a [unbalanced", [(10, "a [unbalanced")]),
]


@pytest.mark.parametrize(("prompt", "expected"), REFERENCE_EXAMPLES)
def test_reference_examples(prompt, expected):
    assert schedule(prompt) == expected


def test_reference_example_with_spaces_around_colons():
    # The reference page lists (1, "a  b  d"); A1111 1.10 gives "a b  d": the text before the
    # first colon is "b " (no leading space), the text before the second is " c ".
    assert schedule("a [b : c : 1] d") == [(1, "a b  d"), (10, "a  c  d")]


def test_alternation_one_per_step():
    assert schedule("[fe|]male") == [(step, "female" if step % 2 else "male") for step in range(1, 11)]
    result = build_schedule("[fe|]male", 10)
    assert result.distinct == ("female", "male")


def test_hundred_step_example():
    prompt = (
        "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
        "[ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]"
    )
    assert schedule(prompt, 100) == [
        (25, "fantasy landscape with a mountain and an oak in foreground shoddy"),
        (50, "fantasy landscape with a lake and an oak in foreground in background shoddy"),
        (60, "fantasy landscape with a lake and an oak in foreground in background masterful"),
        (75, "fantasy landscape with a lake and an oak in background masterful"),
        (100, "fantasy landscape with a lake and a christmas tree in background masterful"),
    ]


def test_more_a1111_examples():
    assert schedule("test") == [(10, "test")]
    assert schedule("a [b: 3]") == [(3, "a "), (10, "a b")]
    assert schedule("a [[[b]]:2]") == [(2, "a "), (10, "a [[b]]")]
    assert schedule("((a][:b:c [d:3]") == [(3, "((a][:b:c "), (10, "((a][:b:c d")]
    assert schedule("[a|(b:1.1)]", 4) == [(1, "a"), (2, "(b:1.1)"), (3, "a"), (4, "(b:1.1)")]
    assert schedule("[fe|||]male", 5) == [(1, "female"), (2, "male"), (3, "male"), (4, "male"), (5, "female")]


def test_remove_and_add_forms():
    assert schedule("a [b::4] c") == [(4, "a b c"), (10, "a  c")]
    assert schedule("a [:b:4] c") == [(4, "a  c"), (10, "a b c")]
    assert schedule("[::4]") == [(4, ""), (10, "")]


def test_nesting():
    assert schedule("[[a:b:2]:c:5]") == [(2, "a"), (5, "b"), (10, "c")]
    assert schedule("[a:[b|c]:3]", 5) == [(1, "a"), (2, "a"), (3, "a"), (4, "c"), (5, "b")]
    assert schedule("[[a:b:2]|c]", 4) == [(1, "a"), (2, "c"), (3, "b"), (4, "c")]
    assert schedule("(x [a:b:2])") == [(2, "(x a)"), (10, "(x b)")]


def test_emphasis_syntax_passes_through_untouched():
    for prompt in ["[word]", "(word:1.2)", "[a:b]", "(a:b:c)", "a: b", "[[x]] (y) \\[z\\]", "[a:b:c:3]", "x)y]"]:
        assert schedule(prompt) == [(10, prompt)], prompt


def test_escapes_pass_through_verbatim():
    assert schedule("\\[a:b:3\\]") == [(10, "\\[a:b:3\\]")]
    assert schedule("[\\(a\\):b:3]") == [(3, "\\(a\\)"), (10, "b")]
    assert schedule("[a\\|b|c]", 2) == [(1, "a\\|b"), (2, "c")]


def test_unreadable_prompts_are_used_verbatim_for_every_step():
    # A1111's parser has no reading for these, so it keeps the whole prompt (editing included).
    for prompt in ["a | b [c:2]", "(a|b) [c:d:2]", "[a:b|c]", "[a|b", "x [c:2] \\"]:
        assert schedule(prompt) == [(10, prompt)], prompt


def test_broken_brackets_leave_valid_ones_working():
    assert schedule("[a (b] c) [d:3]") == [(3, "[a (b] c) "), (10, "[a (b] c) d")]
    assert schedule("(a [b:3]") == [(3, "(a "), (10, "(a b")]
    assert schedule("[a:[b:2]") == [(2, "[a:"), (10, "[a:b")]
    assert schedule("[a [b:c:2]:x]") == [(2, "[a b:x]"), (10, "[a c:x]")]


def test_numbers():
    assert schedule("[a:b:0.29]", 100)[0] == (28, "a")  # int() truncates 28.999..., as in A1111
    assert schedule("[a:b:1e1]", 20)[0] == (10, "a")
    assert schedule("[a:b:0]") == [(10, "b")]  # switched before the first step
    assert schedule("[a:b:-3]") == [(10, "b")]
    assert schedule("[a:b:50]") == [(10, "a")]  # after the last step: never switches
    with pytest.raises(ValidationError) as err:
        build_schedule("[a:b:1e400]", 10)
    assert err.value.field == "prompt"


def test_new_and_old_timelines():
    # New (A1111's default): a decimal point makes a fraction, even above 1.
    assert schedule("[a:b:1.0]") == [(10, "a")]
    assert schedule("[a:b:1]") == [(1, "a"), (10, "b")]
    # Old: below 1 is a fraction, anything else a step number.
    assert schedule("[a:b:1.0]", old_timelines=True) == [(1, "a"), (10, "b")]
    assert schedule("[a:b:2.5]", old_timelines=True) == [(2, "a"), (10, "b")]
    assert schedule("[a:b:0.5]", old_timelines=True) == [(5, "a"), (10, "b")]


def test_hires_second_pass():
    # New timelines: one timeline over both passes (decimals 1..2 are the second pass).
    assert schedule("a [b:.5] c", 10, first_pass_steps=10) == [(10, "a b c")]
    assert schedule("a [b:1.5] c", 10, first_pass_steps=10) == [(5, "a  c"), (10, "a b c")]
    assert schedule("a [b:15] c", 10, first_pass_steps=10) == [(5, "a  c"), (10, "a b c")]
    # Old timelines: the second pass has its own schedule over its own steps.
    assert schedule("a [b:.5] c", 10, first_pass_steps=10, old_timelines=True) == [(5, "a  c"), (10, "a b c")]


def test_distinct_prompts_and_entries():
    result = build_schedule("[a|b] [c:d:4]", 6)
    assert result.distinct == ("a c", "b c", "a d", "b d")
    assert [last for last, _ in result.entries] == [1, 2, 3, 4, 5, 6]
    assert result.as_list()[3] == (4, "b c")
    same = build_schedule("[a:a:5]", 10)
    assert same.distinct == ("a",)
    assert same.entries == ((5, 0), (10, 0))
    assert same.is_static
    assert build_schedule("plain", 10) == PromptSchedule(10, ("plain",), ((10, 0),))


def test_index_at_uses_a1111_sampler_step_numbering():
    # A1111's sampler compares its 0-based step counter with the 1-based "last step" numbers.
    result = build_schedule("a [b:3]", 10)
    assert [result.prompt_at(i) for i in range(10)] == ["a "] * 4 + ["a b"] * 6
    alternating = build_schedule("[x|y]", 6)
    assert [alternating.prompt_at(i) for i in range(6)] == ["x", "x", "y", "x", "y", "x"]
    assert result.index_at(99) == result.entries[-1][1]  # past the end: the last prompt
    with pytest.raises(ValueError):
        result.index_at(-1)


def test_bad_steps_are_refused():
    for steps in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValidationError) as err:
            build_schedule("a", steps)  # type: ignore[arg-type]
        assert err.value.field == "steps"
    with pytest.raises(ValidationError):
        build_schedule("a", 10, first_pass_steps=0)


def test_one_megabyte_of_brackets_is_refused_quickly():
    start = time.thread_time()  # this thread's CPU time: the parser's cost, not the machine's load
    with pytest.raises(ValidationError) as err:
        build_schedule("[" * 1_000_000, 20)
    assert time.thread_time() - start < 0.5
    assert err.value.field == "prompt"


@pytest.mark.parametrize(
    "prompt",
    [
        "[" * MAX_PROMPT_CHARS,
        "[" * 30_000 + "a" + ":b:5]" * 13_000,
        "[a|" * 10_000 + "]" * 10_000,
        "[a:b:3]" * (MAX_PROMPT_CHARS // 7),
        "(" * 50_000 + ")" * 50_000,
    ],
    ids=["open", "deep-editing", "deep-alternation", "many-edits", "parens"],
)
def test_prompts_at_the_limit_are_fast_and_iterative(prompt):
    start = time.thread_time()
    result = build_schedule(prompt, 20)
    assert time.thread_time() - start < 2.0
    assert result.entries[-1][0] == 20


def test_deep_alternation_result():
    result = build_schedule("[a|" * 2_000 + "]" * 2_000, 3)
    assert result.prompt_at(0) == "a"
    assert result.as_list()[1] == (2, "")  # option 2 all the way down, the innermost is empty
