"""The extra-networks cards' pure parts: what a click writes or takes out, preview lookup, sizes."""

from __future__ import annotations

import pytest

from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord, ModelRef, SourceKind
from pipelines.networks.cards import NetworkTab, preview_path, prompt_text, size_text, toggle_in_prompt

LORA, TI = NetworkTab.LORA, NetworkTab.TEXTUAL_INVERSION


@pytest.mark.parametrize(("prompt", "tab", "name", "expected"), [
    ("", LORA, "ink", "<lora:ink:1>"),
    ("a fox", LORA, "ink", "a fox <lora:ink:1>"),
    ("a fox, ", LORA, "ink", "a fox, <lora:ink:1>"),  # no second space
    ("a fox <lora:ink:0.3>", LORA, "ink", "a fox"),  # the second click takes it out, at any weight
    ("<lyco:ink:1:0.5> a fox", LORA, "ink", "a fox"),
    ("a <lora:ink2:1> fox", LORA, "ink", "a <lora:ink2:1> fox <lora:ink:1>"),  # another LoRA's tag
    ("a fox", TI, "badhands", "a fox badhands"),
    ("a fox badhands, snow", TI, "badhands", "a fox, snow"),
    ("a fox badhands2", TI, "badhands", "a fox badhands2 badhands"),  # a longer word is not the embedding
])
def test_toggle_in_prompt(prompt, tab, name, expected):
    assert toggle_in_prompt(prompt, tab, name) == expected


def test_checkpoint_and_vae_cards_write_nothing():
    assert prompt_text(LORA, "x", 0.5) == "<lora:x:0.5>"
    with pytest.raises(ValueError, match="selects a model"):
        prompt_text(NetworkTab.CHECKPOINTS, "x")


def test_preview_beside_the_file_png_first_then_preview_png(tmp_path):
    model = tmp_path / "ink.safetensors"
    model.write_bytes(b"x")
    record = ModelRecord(ModelRef(SourceKind.SINGLE_FILE, str(model), ModelType.LORA), "ink", path=model)
    assert preview_path(record) is None
    (tmp_path / "ink.preview.png").write_bytes(b"p")
    assert preview_path(record) == tmp_path / "ink.preview.png"
    (tmp_path / "ink.jpg").write_bytes(b"p")
    assert preview_path(record) == tmp_path / "ink.jpg"
    hub = ModelRecord(ModelRef(SourceKind.HUB, "org/model"), "org/model", path=tmp_path)
    assert preview_path(hub) is None


def test_size_text():
    assert [size_text(n) for n in (0, 300, 150 * 1024, 3 << 20, 5 << 30)] == ["", "1 KiB", "150 KiB", "3.0 MiB",
                                                                               "5.00 GiB"]
