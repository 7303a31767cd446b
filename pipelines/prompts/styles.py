"""A1111 prompt styles: ``styles.csv`` (``name,prompt,negative_prompt``) and applying them.

Applying a style (A1111 behaviour): when the style's text holds ``{prompt}``, every ``{prompt}``
is replaced by the user's prompt; otherwise the user's prompt and the style's text, each
stripped, are joined with ``", "`` (an empty side is left out). The negative prompt gets the
style's negative text the same way. Several styles apply in the order given, each to the result
of the one before.

The CSV file is read like A1111 reads it (UTF-8 with or without BOM, spaces after commas
skipped, rows whose name starts with ``#`` ignored, the old ``name,text`` layout accepted) and
written as A1111 writes it (UTF-8 with BOM, header ``name,prompt,negative_prompt``), atomically:
a temporary file in the same folder replaces the old one, so a crash never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import ValidationError
from pipelines.files import write_text_atomically

PROMPT_PLACEHOLDER = "{prompt}"
CSV_FIELDS = ("name", "prompt", "negative_prompt")


@dataclass(frozen=True)
class PromptStyle:
    """One saved style."""

    name: str
    prompt: str = ""
    negative_prompt: str = ""


def merge_style(style_text: str, prompt: str) -> str:
    """Apply one style text to a prompt (``{prompt}`` substitution, else ``prompt, style``)."""
    if PROMPT_PLACEHOLDER in style_text:
        return style_text.replace(PROMPT_PLACEHOLDER, prompt)
    return ", ".join(part for part in (prompt.strip(), style_text.strip()) if part)


def apply_styles(
    prompt: str, negative_prompt: str, names: Sequence[str], styles: Mapping[str, PromptStyle]
) -> tuple[str, str]:
    """``(prompt, negative_prompt)`` with the named styles applied in order.

    An unknown name raises ``ValidationError("styles", ...)`` (A1111 silently skips it).
    """
    unknown = [name for name in names if name not in styles]
    if unknown:
        raise ValidationError("styles", f"unknown style {', '.join(map(repr, unknown))}")
    for name in names:
        style = styles[name]
        prompt = merge_style(style.prompt, prompt)
        negative_prompt = merge_style(style.negative_prompt, negative_prompt)
    return prompt, negative_prompt


def _unmerge(style_text: str, prompt: str) -> str | None:
    """The prompt before ``style_text`` was applied, or None when it cannot have been applied."""
    prompt, style_text = prompt.strip(), style_text.strip()
    if PROMPT_PLACEHOLDER in style_text:
        left, right = style_text.split(PROMPT_PLACEHOLDER, 1)
        if PROMPT_PLACEHOLDER in right or len(left) + len(right) > len(prompt):
            return None
        if prompt.startswith(left) and prompt.endswith(right):
            return prompt[len(left) : len(prompt) - len(right)]
        return None
    if not prompt.endswith(style_text):
        return None
    rest = prompt[: len(prompt) - len(style_text)]
    if not style_text:
        return rest
    if not rest:
        return ""
    return rest[:-2] if rest.endswith(", ") else None


def extract_styles(
    prompt: str, negative_prompt: str, styles: Mapping[str, PromptStyle]
) -> tuple[list[str], str, str]:
    """Which styles a prompt pair carries: ``(names in applied order, prompt, negative)`` with
    those styles' text removed.

    Repeatedly takes off the first style (in ``styles`` order) whose prompt and negative text
    both sit where applying it would have put them, as A1111's "styles from prompt" does. Styles
    without any text never match.
    """
    found: list[str] = []
    remaining = dict(styles)
    while True:
        for name, style in remaining.items():
            if not style.prompt and not style.negative_prompt:
                continue
            new_prompt = _unmerge(style.prompt, prompt)
            new_negative = _unmerge(style.negative_prompt, negative_prompt)
            if new_prompt is not None and new_negative is not None:
                prompt, negative_prompt = new_prompt, new_negative
                found.append(name)
                del remaining[name]
                break
        else:
            return list(reversed(found)), prompt, negative_prompt


# --- styles.csv --------------------------------------------------------------------------------


def read_styles_csv(path: Path) -> dict[str, PromptStyle]:
    """Styles in file order (a later row with the same name wins); a missing file is empty."""
    path = Path(path)
    if not path.exists():
        return {}
    with open(path, encoding="utf-8-sig", newline="") as file:
        reader = csv.DictReader(file, skipinitialspace=True)
        if reader.fieldnames is None:
            return {}
        if "name" not in reader.fieldnames:
            raise ValidationError("styles", f"{path} has no 'name' column")
        styles: dict[str, PromptStyle] = {}
        for row in reader:
            name = row.get("name") or ""
            if not name or name.startswith("#"):
                continue
            prompt = row.get("prompt") if "prompt" in row else row.get("text")
            styles[name] = PromptStyle(name, prompt or "", row.get("negative_prompt") or "")
        return styles


def write_styles_csv(path: Path, styles: Iterable[PromptStyle]) -> None:
    """Write ``styles`` to ``path`` atomically (temporary file + rename in the same folder)."""
    path = Path(path)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for style in styles:
        writer.writerow({"name": style.name, "prompt": style.prompt, "negative_prompt": style.negative_prompt})
    write_text_atomically(path, buffer.getvalue(), encoding="utf-8-sig")


class StyleStore:
    """The styles of one ``styles.csv``: read on every call, changed by read-modify-write.

    Reading each time keeps edits made by hand (or by A1111 sharing the file) visible; the lock
    keeps two changes from this process from overwriting each other.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def all(self) -> dict[str, PromptStyle]:
        """Every style, by name, in file order."""
        return read_styles_csv(self.path)

    def get(self, name: str) -> PromptStyle:
        styles = self.all()
        if name not in styles:
            raise ValidationError("styles", f"unknown style {name!r}")
        return styles[name]

    def add(self, style: PromptStyle) -> None:
        """Append a new style; its name must be new."""
        _check_name(style.name)
        with self._lock:
            styles = self.all()
            if style.name in styles:
                raise ValidationError("name", f"a style named {style.name!r} already exists")
            styles[style.name] = style
            write_styles_csv(self.path, styles.values())

    def update(self, name: str, style: PromptStyle) -> None:
        """Replace style ``name`` with ``style`` in place (``style.name`` may rename it)."""
        _check_name(style.name)
        with self._lock:
            styles = self.all()
            if name not in styles:
                raise ValidationError("styles", f"unknown style {name!r}")
            if style.name != name and style.name in styles:
                raise ValidationError("name", f"a style named {style.name!r} already exists")
            updated = [style if key == name else value for key, value in styles.items()]
            write_styles_csv(self.path, updated)

    def delete(self, name: str) -> None:
        with self._lock:
            styles = self.all()
            if name not in styles:
                raise ValidationError("styles", f"unknown style {name!r}")
            del styles[name]
            write_styles_csv(self.path, styles.values())

    def apply(self, prompt: str, negative_prompt: str, names: Sequence[str]) -> tuple[str, str]:
        """:func:`apply_styles` with this file's styles."""
        return apply_styles(prompt, negative_prompt, names, self.all())

    def extract(self, prompt: str, negative_prompt: str) -> tuple[list[str], str, str]:
        """:func:`extract_styles` with this file's styles."""
        return extract_styles(prompt, negative_prompt, self.all())


def _check_name(name: str) -> None:
    if not name or not name.strip():
        raise ValidationError("name", "a style needs a name")
    if name.startswith("#"):
        raise ValidationError("name", "a style name cannot start with '#' (styles.csv treats it as a comment)")
