"""A1111 "infotext": generation parameters as text in the PNG ``parameters`` chunk.

Format (see the project's compatibility notes)::

    <prompt, may span lines>
    Negative prompt: <negative prompt, may span lines>
    Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 512x512, ...

Values holding ``,``, ``:`` or a newline are written JSON-quoted. The reader
keeps every value as a string, splits ``WxH`` values into ``Key-1``/``Key-2``
and returns the prompts under ``"Prompt"`` and ``"Negative prompt"``.

The reader takes what A1111 (every version), Forge, SD.Next and Fooocus write:
Windows line ends, keys it does not know, bare words, unterminated quotes and
Civitai's unquoted JSON values (``Hashes: {"model": "..."}``). It inserts no
defaults; what a missing key means for a request is decided in
:mod:`pipelines.infotext.paste`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

NEGATIVE_PREFIX = "Negative prompt:"
_KEY = re.compile(r"\w[\w \-/]*")
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_DECODER = json.JSONDecoder()


def quote(value: Any) -> str:
    """Render one value, JSON-quoting it when it would not read back as itself.

    A1111 quotes values holding ``,``, ``:`` or a newline; a value that starts with a
    quote, a brace or a bracket, or has spaces at either end, is quoted too, so the
    reader never mistakes it for a quoted or JSON value, or strips it.
    """
    text = format_value(value)
    if any(ch in text for ch in ",:\n\r") or text[:1] in ('"', "{", "[") or text != text.strip():
        return json.dumps(text, ensure_ascii=False)
    return text


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else str(int(value))
    return str(value)


def format_infotext(prompt: str, negative_prompt: str, params: Mapping[str, Any]) -> str:
    """Write the infotext for one image; ``None`` values are left out."""
    line = ", ".join(
        key if format_value(value) == key else f"{key}: {quote(value)}"
        for key, value in params.items()
        if value is not None
    )
    negative = f"\n{NEGATIVE_PREFIX} {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{line}".strip()


def _read_quoted(text: str, pos: int) -> tuple[str, int] | None:
    """A JSON string starting at ``pos`` (A1111's quoted values), or None if unterminated."""
    end = pos + 1
    while end < len(text):
        if text[end] == "\\":
            end += 2
            continue
        if text[end] == '"':
            raw = text[pos : end + 1]
            try:
                return json.loads(raw), end + 1
            except json.JSONDecodeError:
                return raw[1:-1], end + 1
        end += 1
    return None


def _read_json(text: str, pos: int) -> tuple[str, int] | None:
    """An unquoted JSON object or list (Civitai's ``Hashes: {...}``), kept as its text."""
    try:
        _, end = _DECODER.raw_decode(text, pos)
    except ValueError:
        return None
    return text[pos:end], end


def _read_value(text: str, pos: int) -> tuple[str, int]:
    """Read one value starting at ``pos``; return it and the index after it."""
    first = text[pos : pos + 1]
    found = _read_quoted(text, pos) if first == '"' else _read_json(text, pos) if first in ("{", "[") else None
    if found is not None:
        return found
    end = text.find(",", pos)  # A1111's unquoted value: everything up to the next comma
    end = len(text) if end < 0 else end
    return text[pos:end].strip(), end


def parse_params_line(line: str) -> dict[str, str]:
    """Parse ``Key: value, Key: "quoted, value", ...``; unparsable pieces are skipped.

    Bare words (``Tiling`` in old infotexts) and keys A1111 would not accept are
    dropped; a repeated key keeps its last value, as A1111's dict does.
    """
    out: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        while pos < len(line) and line[pos] in " ,":
            pos += 1
        colon = line.find(":", pos)
        comma = line.find(",", pos)
        if colon < 0 or (0 <= comma < colon):
            if comma < 0:
                break
            pos = comma + 1  # a bare word such as "Tiling"
            continue
        key = line[pos:colon].strip()
        start = colon + 1
        while start < len(line) and line[start] == " ":
            start += 1
        value, pos = _read_value(line, start)
        if _KEY.fullmatch(key):
            out[key] = value
    return out


def parse_infotext(text: str) -> dict[str, str]:
    """Read an infotext into a flat dict of strings (``Prompt``, ``Negative prompt``, params)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = text.strip().split("\n")
    params: dict[str, str] = {}
    if lines and len(parse_params_line(lines[-1])) >= 3:
        params = parse_params_line(lines.pop())
    prompt_lines: list[str] = []
    negative_lines: list[str] | None = None
    for line in lines:
        if negative_lines is None and line.startswith(NEGATIVE_PREFIX):
            rest = line[len(NEGATIVE_PREFIX) :]
            negative_lines = [rest[1:] if rest.startswith(" ") else rest]  # the one space the writer adds
        elif negative_lines is not None:
            negative_lines.append(line)
        else:
            prompt_lines.append(line)
    result = {"Prompt": "\n".join(prompt_lines), "Negative prompt": "\n".join(negative_lines or [])}
    for key, value in params.items():
        result[key] = value
        size = _SIZE.match(value)
        if size:
            result[f"{key}-1"], result[f"{key}-2"] = size.group(1), size.group(2)
    return result
