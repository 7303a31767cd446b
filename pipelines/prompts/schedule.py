"""A1111's prompt editing ``[from:to:when]`` and alternation ``[a|b|c]``: the prompt per step.

Syntax (AUTOMATIC1111 webui 1.10, written from its documented behaviour):

* ``[from:to:when]`` reads ``from`` until step ``when``, then ``to``; ``[to:when]`` adds ``to``
  after it and ``[from::when]`` removes ``from`` after it. Constructs nest.
* ``when`` follows A1111's default timeline ("new" timelines): a number with a decimal point is a
  fraction of the steps (``0.25`` of 100 steps is step 25; ``int()`` truncates, so ``0.29`` of
  100 is step 28, as in A1111), a number without one is a step number. With
  ``old_timelines=True`` (A1111's "Use old prompt editing timelines" setting), a number below 1
  is a fraction and anything else a step number. The two agree on every usual prompt and differ
  on numbers such as ``1.0`` or ``1.5`` (new: 100 % / 150 % of the steps; old: step 1).
* ``[a|b|c]`` alternates every step: a, b, c, a, ...; empty options are allowed (``[fe|]male``).
* Everything else passes through unchanged (emphasis brackets, escapes such as ``\\[``, stray
  brackets and colons) for the emphasis parser. A bracket only forms prompt editing or
  alternation when everything inside it is well formed; otherwise it is plain text
  (``a [unbalanced`` stays as it is).
* When the prompt cannot be read at all -- a ``|`` outside any ``[...]`` alternation, or a
  backslash at the very end -- the whole prompt is used unchanged for every step, as A1111 does.
* One known difference: A1111's general-purpose (Earley) parser leaves some degenerate prompts,
  where a prompt-editing bracket is directly followed by stray bracket or colon characters
  (``[a:b:2]::``, ``[a:b:2](]``), as plain text; here such a bracket is always prompt editing.

Steps are numbered as A1111 lists them: a schedule is a list of ``(last_step, prompt)`` with
1-based step numbers, the last entry ending at ``steps``. The sampler picks an entry with
:meth:`PromptSchedule.index_at`, which takes the 0-based index of the denoising step.

The parser is two linear, non-recursive passes over the text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.errors import ValidationError
from pipelines.prompts.limits import MAX_PROMPT_CHARS, check_prompt_length

_SPECIAL = re.compile(r"[\\\[\]():|]")
_NUMBER = re.compile(r"\s*([+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*")


@dataclass(frozen=True)
class PromptSchedule:
    """The prompt text for each step of one denoising pass.

    ``distinct`` holds every different prompt text once, in order of first use (encode each one
    once per job); ``entries`` is A1111's schedule, ``(last_step, index into distinct)`` with
    1-based, increasing ``last_step`` values ending at ``steps``.
    """

    steps: int
    distinct: tuple[str, ...]
    entries: tuple[tuple[int, int], ...]

    def index_at(self, step: int) -> int:
        """Index into ``distinct`` for the denoising step with 0-based index ``step``.

        This reproduces A1111's sampler, which compares its 0-based step counter with the
        1-based ``last_step`` values: the first entry with ``step <= last_step`` is used, so
        ``index_at(0) == index_at(1)`` and ``a [b:3]`` reads ``a `` for indices 0-3. Indices past
        the last step use the last entry.
        """
        if step < 0:
            raise ValueError(f"step index must be >= 0, got {step}")
        for last_step, index in self.entries:
            if step <= last_step:
                return index
        return self.entries[-1][1]

    def prompt_at(self, step: int) -> str:
        """The prompt text for the denoising step with 0-based index ``step`` (see ``index_at``)."""
        return self.distinct[self.index_at(step)]

    def as_list(self) -> list[tuple[int, str]]:
        """A1111's form: ``[(last_step, prompt), ...]``."""
        return [(last_step, self.distinct[index]) for last_step, index in self.entries]

    @property
    def is_static(self) -> bool:
        """True when every step uses the same prompt."""
        return len(self.distinct) == 1


def build_schedule(
    prompt: str,
    steps: int,
    *,
    first_pass_steps: int | None = None,
    old_timelines: bool = False,
    field: str = "prompt",
    max_chars: int | None = MAX_PROMPT_CHARS,
) -> PromptSchedule:
    """Expand prompt editing and alternation in ``prompt`` over ``steps`` steps.

    For the second (hires-fix) pass, pass that pass's step count as ``steps`` and the first
    pass's as ``first_pass_steps``: A1111 then reads ``when`` on one timeline across both passes
    (an integer counts steps from the start of the first pass, a decimal between 1 and 2 is a
    fraction of the second pass). With ``old_timelines`` the second pass gets its own schedule
    over its own steps and ``first_pass_steps`` is ignored.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValidationError("steps", f"must be a whole number >= 1, got {steps!r}")
    if first_pass_steps is not None and (
        isinstance(first_pass_steps, bool) or not isinstance(first_pass_steps, int) or first_pass_steps < 1
    ):
        raise ValidationError("steps", f"first-pass steps must be a whole number >= 1, got {first_pass_steps!r}")
    check_prompt_length(prompt, field=field, max_chars=max_chars)

    tree = _parse(prompt)
    if tree is None:
        return PromptSchedule(steps, (prompt,), ((steps, 0),))
    timeline = _Timeline(steps, None if old_timelines else first_pass_steps, old_timelines, field)
    boundaries = _collect_steps(tree, timeline)

    distinct: list[str] = []
    seen: dict[str, int] = {}
    entries: list[tuple[int, int]] = []
    for step in boundaries:
        text = _render(tree, step)
        if text not in seen:
            seen[text] = len(distinct)
            distinct.append(text)
        entries.append((step, seen[text]))
    return PromptSchedule(steps, tuple(distinct), tuple(entries))


# --- tree --------------------------------------------------------------------------------------

Seq = list  # list[str | _Scheduled | _Alternate]


@dataclass
class _Scheduled:
    before: Seq | None
    after: Seq
    when_text: str
    when: int = 0


@dataclass
class _Alternate:
    options: list[Seq]


@dataclass(frozen=True)
class _Construct:
    """A well-formed prompt-editing or alternation bracket: ``[`` at ``start``, ``]`` at ``end``."""

    start: int
    end: int
    separators: tuple[int, ...]
    scheduled: bool


def _parse(prompt: str) -> Seq | None:
    """The prompt as a tree, or None when A1111 could not read it (then it is used verbatim)."""
    constructs = _find_constructs(prompt)
    if constructs is None:
        return None
    return _build_tree(prompt, constructs)


def _find_constructs(prompt: str) -> dict[int, _Construct] | None:
    """First pass: which brackets are well formed, and which of those edit or alternate.

    A bracket is well formed when everything inside it is (no stray bracket, no stray ``|``).
    A stray character inside open brackets makes all of them plain text at once, which is why a
    failure clears the whole stack. A ``|`` that ends up outside a well-formed ``[...]`` makes
    the prompt unreadable (None).
    """
    constructs: dict[int, _Construct] = {}
    # Open brackets as plain ints (their positions), so 100 000 of them stay cheap; their
    # separators are kept by opening position, only for brackets that have any.
    stack: list[int] = []
    colons: dict[int, list[int]] = {}
    pipes: dict[int, list[int]] = {}

    def give_up_open_groups() -> bool:
        """Turn every open bracket into text; False when that leaves a ``|`` outside brackets."""
        stray_pipe = any(start in pipes for start in stack)
        stack.clear()
        colons.clear()
        pipes.clear()
        return not stray_pipe

    escaped_until = -1
    for match in _SPECIAL.finditer(prompt):
        i = match.start()
        if i <= escaped_until:
            continue
        char = prompt[i]
        if char == "\\":
            if i + 1 >= len(prompt) or prompt[i + 1] == "\n":
                return None  # A1111's grammar has no reading for a trailing backslash
            escaped_until = i + 1
        elif char == "(" or char == "[":
            stack.append(i)
        elif char == ":":
            if stack:
                colons.setdefault(stack[-1], []).append(i)
        elif char == "|":
            if not stack:
                return None
            pipes.setdefault(stack[-1], []).append(i)
        elif stack and prompt[stack[-1]] == ("(" if char == ")" else "["):
            start = stack[-1]
            group_colons, group_pipes = colons.pop(start, []), pipes.pop(start, [])
            kind = _classify(prompt, prompt[start], group_colons, group_pipes, i)
            if kind is None:
                if group_pipes:
                    pipes[start] = group_pipes
                if not give_up_open_groups():
                    return None
            else:
                stack.pop()
                if kind != "emphasis":
                    separators = tuple(group_colons if kind == "scheduled" else group_pipes)
                    constructs[start] = _Construct(start, i, separators, kind == "scheduled")
        elif stack and not give_up_open_groups():
            return None
    if stack and not give_up_open_groups():
        return None
    return constructs


def _classify(prompt: str, kind: str, colons: list[int], pipes: list[int], end: int) -> str | None:
    """``"emphasis"``, ``"scheduled"``, ``"alternate"`` or None (not well formed)."""
    if kind == "(":
        return "emphasis" if not pipes and len(colons) <= 1 else None
    if not colons:
        return "alternate" if pipes else "emphasis"
    # The text after the last colon must be a number alone (so it holds no nested bracket).
    if not pipes and len(colons) <= 2 and _NUMBER.fullmatch(prompt, colons[-1] + 1, end):
        return "scheduled"
    return None


def _build_tree(prompt: str, constructs: dict[int, _Construct]) -> Seq:
    """Second pass: text runs and nested editing/alternation nodes, built with an explicit stack."""
    root: Seq = []
    # Each frame: (construct, finished segments, current segment).
    frames: list[tuple[_Construct, list[Seq], Seq]] = []
    events: list[tuple[int, str, _Construct | None]] = []
    for construct in constructs.values():
        events.append((construct.start, "open", construct))
        events.extend((pos, "sep", None) for pos in construct.separators)
        events.append((construct.end, "close", None))
    events.sort(key=lambda event: event[0])

    def current() -> Seq:
        return frames[-1][2] if frames else root

    pos = 0
    for at, kind, construct in events:
        if at > pos:
            current().append(prompt[pos:at])
        pos = at + 1
        if kind == "open":
            assert construct is not None
            frames.append((construct, [], []))
        elif kind == "sep":
            done, segment = frames[-1][1], frames[-1][2]
            done.append(segment)
            frames[-1] = (frames[-1][0], done, [])
        else:
            owner, done, segment = frames.pop()
            segments = [*done, segment]
            if owner.scheduled:
                when_text = "".join(part for part in segments[-1] if isinstance(part, str)).strip()
                before = segments[0] if len(segments) == 3 else None
                node: _Scheduled | _Alternate = _Scheduled(before, segments[-2], when_text)
            else:
                node = _Alternate(segments)
            current().append(node)
    if pos < len(prompt):
        root.append(prompt[pos:])
    return root


# --- steps and rendering -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Timeline:
    steps: int
    first_pass_steps: int | None
    old: bool
    field: str

    def step_of(self, text: str) -> int:
        """A1111's step for a ``when`` number (may be < 1: then it never switches)."""
        value = float(text)
        if self.old:
            value = value * self.steps if value < 1 else value
        elif "." in text:
            value = (value - (1.0 if self.first_pass_steps is not None else 0.0)) * self.steps
        else:
            value = value - (self.first_pass_steps or 0)
        if not math.isfinite(value):
            raise ValidationError(self.field, f"prompt-editing step {text!r} is out of range")
        return min(self.steps, int(value))


def _walk(tree: Seq) -> Iterator[_Scheduled | _Alternate]:
    """Every editing/alternation node in the tree, chosen or not (iterative)."""
    pending: list[Seq] = [tree]
    while pending:
        for item in pending.pop():
            if isinstance(item, _Scheduled):
                yield item
                pending.append(item.after)
                if item.before is not None:
                    pending.append(item.before)
            elif isinstance(item, _Alternate):
                yield item
                pending.extend(item.options)


def _collect_steps(tree: Seq, timeline: _Timeline) -> list[int]:
    """The steps at which the prompt may change (A1111: every switch >= 1, every step if alternating)."""
    steps = {timeline.steps}
    for node in _walk(tree):
        if isinstance(node, _Scheduled):
            node.when = timeline.step_of(node.when_text)
            if node.when >= 1:
                steps.add(node.when)
        else:
            steps.update(range(1, timeline.steps + 1))
    return sorted(steps)


def _render(tree: Seq, step: int) -> str:
    """The prompt text at 1-based ``step``, with an explicit stack instead of recursion."""
    out: list[str] = []
    stack: list[Iterator] = [iter(tree)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, str):
            out.append(item)
        elif isinstance(item, _Scheduled):
            chosen = (item.before or []) if step <= item.when else item.after
            stack.append(iter(chosen))
        else:
            stack.append(iter(item.options[(step - 1) % len(item.options)]))
    return "".join(out)
