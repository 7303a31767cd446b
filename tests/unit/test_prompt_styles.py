"""Prompt styles (reference section 6): applying, finding applied styles, styles.csv I/O."""

from __future__ import annotations

import os

import pytest

from pipelines.errors import ValidationError
from pipelines.prompts.styles import (
    PromptStyle,
    StyleStore,
    apply_styles,
    extract_styles,
    merge_style,
    read_styles_csv,
    write_styles_csv,
)

STYLES = {
    "quality": PromptStyle("quality", "masterpiece, best quality", "lowres, blurry"),
    "frame": PromptStyle("frame", "a photo of {prompt}, film grain", "cartoon, {prompt}"),
    "neg only": PromptStyle("neg only", "", "watermark"),
}


def test_merge_appends_with_comma():
    assert merge_style("masterpiece", "a cat") == "a cat, masterpiece"
    assert merge_style("  masterpiece ", " a cat  ") == "a cat, masterpiece"
    assert merge_style("masterpiece", "") == "masterpiece"
    assert merge_style("", " a cat ") == "a cat"


def test_merge_substitutes_prompt_placeholder():
    assert merge_style("a photo of {prompt}, film grain", "a cat") == "a photo of a cat, film grain"
    assert merge_style("{prompt} and {prompt}", "x") == "x and x"
    assert merge_style("a photo of {prompt}", "") == "a photo of "
    assert merge_style("{prompt}", " spaced ") == " spaced "


def test_apply_styles_in_order():
    prompt, negative = apply_styles("a cat", "ugly", ["quality", "frame"], STYLES)
    assert prompt == "a photo of a cat, masterpiece, best quality, film grain"
    assert negative == "cartoon, ugly, lowres, blurry"
    assert apply_styles("a cat", "", ["neg only"], STYLES) == ("a cat", "watermark")
    assert apply_styles("a cat", "ugly", [], STYLES) == ("a cat", "ugly")


def test_unknown_style_is_refused():
    with pytest.raises(ValidationError) as err:
        apply_styles("a", "", ["quality", "nope"], STYLES)
    assert err.value.field == "styles"
    assert "nope" in err.value.message


def test_extract_finds_applied_styles():
    for names in (["quality"], ["frame"], ["quality", "frame"], ["neg only", "quality"]):
        prompt, negative = apply_styles("a cat", "ugly", names, STYLES)
        assert extract_styles(prompt, negative, STYLES) == (names, "a cat", "ugly")


def test_extract_needs_the_style_where_applying_puts_it():
    assert extract_styles("masterpiece, best quality, a cat", "lowres, blurry", STYLES) == (
        [],
        "masterpiece, best quality, a cat",
        "lowres, blurry",
    )
    # Prompt part present but the negative part missing: not applied.
    assert extract_styles("a cat, masterpiece, best quality", "", STYLES)[0] == []
    # Only a whole ", "-separated tail counts ("bobcat" does not end with the style "cat").
    assert extract_styles("bobcat", "", {"cat": PromptStyle("cat", "cat")})[0] == []
    assert extract_styles("bob, cat", "", {"cat": PromptStyle("cat", "cat")}) == (["cat"], "bob", "")
    assert extract_styles("a", "b", {"empty": PromptStyle("empty")}) == ([], "a", "b")


def test_csv_round_trip(tmp_path):
    path = tmp_path / "styles.csv"
    styles = [
        PromptStyle("plain", "a, b", "c"),
        PromptStyle("quoted", 'say "hi", {prompt}', "line one\nline two"),
        PromptStyle("unicode ✓", "日本語", ""),
    ]
    write_styles_csv(path, styles)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfname,prompt,negative_prompt\r\n")
    assert list(read_styles_csv(path).values()) == styles


def test_reads_a1111_files(tmp_path):
    path = tmp_path / "styles.csv"
    path.write_text(
        "\ufeffname, prompt, negative_prompt\n"
        'Cinematic, "cinematic still, {prompt}, bokeh", "anime, cartoon"\n'
        "# comment,ignored,row\n"
        "\n"
        "No negative,simple\n",
        encoding="utf-8",
    )
    assert read_styles_csv(path) == {
        "Cinematic": PromptStyle("Cinematic", "cinematic still, {prompt}, bokeh", "anime, cartoon"),
        "No negative": PromptStyle("No negative", "simple", ""),
    }
    old = tmp_path / "old.csv"
    old.write_text("name,text\nx,some text\n", encoding="utf-8")
    assert read_styles_csv(old) == {"x": PromptStyle("x", "some text", "")}
    assert read_styles_csv(tmp_path / "missing.csv") == {}
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    assert read_styles_csv(tmp_path / "empty.csv") == {}


def test_store_add_update_delete(tmp_path):
    store = StyleStore(tmp_path / "data" / "styles.csv")
    assert store.all() == {}
    store.add(PromptStyle("a", "one", "neg one"))
    store.add(PromptStyle("b", "two"))
    store.add(PromptStyle("c", "three"))
    assert list(store.all()) == ["a", "b", "c"]
    store.update("b", PromptStyle("b", "TWO", "neg two"))
    assert store.get("b") == PromptStyle("b", "TWO", "neg two")
    store.update("b", PromptStyle("renamed", "TWO"))
    assert list(store.all()) == ["a", "renamed", "c"]  # renamed in place
    store.delete("a")
    assert list(store.all()) == ["renamed", "c"]
    assert store.apply("x", "", ["renamed", "c"]) == ("x, TWO, three", "")
    assert store.extract("x, TWO, three", "") == (["renamed", "c"], "x", "")
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["styles.csv"]  # no temp files left


def test_store_refuses_bad_changes(tmp_path):
    store = StyleStore(tmp_path / "styles.csv")
    store.add(PromptStyle("a", "one"))
    store.add(PromptStyle("b", "two"))
    with pytest.raises(ValidationError):
        store.add(PromptStyle("a", "again"))
    with pytest.raises(ValidationError):
        store.update("a", PromptStyle("b", "clash"))
    with pytest.raises(ValidationError):
        store.update("missing", PromptStyle("missing"))
    with pytest.raises(ValidationError):
        store.delete("missing")
    with pytest.raises(ValidationError):
        store.get("missing")
    for name in ("", "   ", "#comment"):
        with pytest.raises(ValidationError) as err:
            store.add(PromptStyle(name, "x"))
        assert err.value.field == "name"
    assert list(store.all()) == ["a", "b"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "styles.csv"
    write_styles_csv(path, [PromptStyle("kept", "x")])
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        StyleStore(path).add(PromptStyle("new", "y"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["styles.csv"]


def test_store_sees_edits_made_by_hand(tmp_path):
    path = tmp_path / "styles.csv"
    store = StyleStore(path)
    store.add(PromptStyle("a", "one"))
    path.write_text(path.read_text(encoding="utf-8-sig") + "hand,made,\n", encoding="utf-8")
    assert store.get("hand") == PromptStyle("hand", "made", "")
