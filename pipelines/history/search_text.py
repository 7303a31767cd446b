"""The history's search box as SQLite FTS5 match expressions.

Syntax (every part must hold):

- ``word`` — in the prompt (or a LoRA name); a prefix is enough: ``cat`` finds ``cats``;
- ``"two words"`` — that phrase, in that order;
- ``-word`` / ``-"two words"`` — not in the prompt;
- ``neg:word`` / ``neg:"two words"`` — in the negative prompt (``-neg:word``: not in it).

Punctuation is not part of words and weights are dropped: ``(blue_hair:1.2)`` searches ``blue hair``.
The user's text never reaches FTS5 as syntax: every term is quoted, so no input can be a query error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TERM = re.compile(r'(-?)(neg:)?(?:"([^"]*)"?|(\S+))')
_WEIGHT = re.compile(r":\s*-?[0-9.]+")  # a prompt weight, as in (fox:1.2)
PROMPT_COLUMNS = "{prompt loras}"
NEGATIVE_COLUMNS = "{negative}"


@dataclass(frozen=True)
class Term:
    """One part of the search box: ``words`` in the prompt (or the negative prompt), or not in it."""

    words: str
    negative_prompt: bool = False
    excluded: bool = False
    phrase: bool = False  # quoted: exactly these words, no prefix matching


@dataclass(frozen=True)
class TextMatch:
    """FTS5 expressions: rows must match ``include`` (when not None) and must not match ``exclude``."""

    include: str | None
    exclude: str | None

    @property
    def empty(self) -> bool:
        return self.include is None and self.exclude is None


def _quoted(words: str) -> str:
    return '"' + words.replace('"', '""') + '"'


def parse_terms(text: str) -> list[Term]:
    """The parts of a search box's ``text`` (module docstring); parts without letters or digits are dropped."""
    terms = []
    for match in _TERM.finditer(text or ""):
        negated, negative_column, phrase, word = match.groups()
        words = phrase if phrase is not None else _WEIGHT.sub(" ", word)
        if re.search(r"\w", words or ""):  # else nothing FTS5 would index
            terms.append(Term(words, bool(negative_column), bool(negated), phrase is not None))
    return terms


def fts_query(text: str) -> TextMatch:
    """The FTS5 match expressions for a search box's ``text``."""
    include: list[str] = []
    exclude: list[str] = []
    for term in parse_terms(text):
        expression = f"{NEGATIVE_COLUMNS if term.negative_prompt else PROMPT_COLUMNS} : {_quoted(term.words)}"
        if term.excluded:
            exclude.append(expression)
        else:
            include.append(expression + ("" if term.phrase else "*"))
    return TextMatch(" AND ".join(include) or None, " OR ".join(exclude) or None)


def like_pattern(words: str) -> str:
    """A LIKE pattern for ``words`` anywhere (the fallback where SQLite has no FTS5)."""
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
