"""The prompt tools of the UI over real HTTP (gradio_client) on the live app's tiny models: quick settings
(Clip skip, Emphasis), styles (selection, 📋, editor), token counters, and pasting Clip skip back.

``live_app`` is shared by the session: every test puts back the options and styles it changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import handle_file
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines.context import AppContext
from pipelines.infotext.codec import parse_infotext
from pipelines.prompts.styles import PromptStyle
from tests.support.apps import make_settings
from tests.support.ui_client import Client
from webui.components.quick_settings import QUICK_NAMES
from webui.components.token_counter import UNKNOWN, TokenizerCache, counter_text, tokenizer_folder
from webui.tabs.txt2img import PASTE_NAMES

FORM = dict(checkpoint="tiny-sd15", prompt="a fox", negative_prompt="", sampler_name="Euler",
            scheduler="Automatic", steps=3, cfg_scale=7, width=64, height=64, seed=5, batch_size=1, n_iter=1)
STYLE = "test-watercolor"


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


@pytest.fixture
def ctx(live_app) -> Iterator:
    """The live app's context; Clip skip, Emphasis and the test style are put back afterwards."""
    context = live_app["ctx"]
    before = context.options.prompt_settings()
    try:
        yield context
    finally:
        context.options.update({"CLIP_stop_at_last_layers": before["clip_skip"], "emphasis": before["emphasis"]})
        if STYLE in context.styles.all():
            context.styles.delete(STYLE)


def saved_options(live_app) -> dict:
    return json.loads(Path(live_app["data_dir"], "config.json").read_text(encoding="utf-8"))


def test_quick_settings_are_saved_and_used_by_the_next_generation(client, ctx, live_app):
    client.predict(clip_skip=2, api_name="/set_clip_skip")
    client.predict(emphasis="No norm", api_name="/set_emphasis")
    assert saved_options(live_app)["CLIP_stop_at_last_layers"] == 2
    assert saved_options(live_app)["emphasis"] == "No norm"
    _, info = client.predict(**FORM, api_name="/txt2img")
    params = parse_infotext(info)
    assert params["Clip skip"] == "2" and params["Emphasis"] == "No norm"

    client.predict(clip_skip=1, api_name="/set_clip_skip")
    client.predict(emphasis="Original", api_name="/set_emphasis")
    assert saved_options(live_app)["CLIP_stop_at_last_layers"] == 1
    _, info = client.predict(**FORM, api_name="/txt2img")
    assert "Clip skip" not in info and "Emphasis" not in info  # A1111 leaves the defaults out


def test_a_bad_quick_setting_is_refused_and_nothing_changes(client, ctx):
    with pytest.raises(Exception, match="maximum value 12"):  # the slider's own range
        client.predict(clip_skip=13, api_name="/set_clip_skip")
    with pytest.raises(Exception, match="Ignore"):  # not one of the dropdown's choices
        client.predict(emphasis="Ignore", api_name="/set_emphasis")
    assert ctx.options.prompt_settings() == {"clip_skip": 1, "emphasis": "Original"}


def test_vary_uses_the_quick_settings(client, ctx):
    gallery, _ = client.predict(**FORM, api_name="/txt2img")
    client.predict(clip_skip=3, api_name="/set_clip_skip")
    _, info = client.predict([{"image": handle_file(gallery[0]["image"]), "caption": None}],
                             api_name="/txt2img_vary_subtle")
    assert parse_infotext(info)["Clip skip"] == "3"


def test_a_style_is_saved_applied_edited_and_deleted(client, ctx):
    # Outputs: the editor's two boxes, then each tab's Styles selection and editor name.
    outputs = client.predict(name=f" {STYLE}", prompt="watercolor, soft", negative_prompt="photo",
                             api_name="/txt2img_style_save_prompts")
    assert outputs[:2] == ("watercolor, soft", "photo")
    for selection, editor_name in (outputs[2:4], outputs[4:6]):  # every tab lists the new style
        assert STYLE in [v for _, v in selection["choices"]] and STYLE in [v for _, v in editor_name["choices"]]
    assert outputs[3]["value"] == STYLE  # the editor shows the style it saved
    assert ctx.styles.get(STYLE) == PromptStyle(STYLE, "watercolor, soft", "photo")
    assert client.predict(name=STYLE, api_name="/img2img_style_load") == ("watercolor, soft", "photo")
    with pytest.raises(Exception, match="already exists"):
        client.predict(name=STYLE, prompt="x", negative_prompt="", api_name="/img2img_style_save_prompts")

    # Selected, the style goes with the request and the engine applies it: the infotext has the result.
    _, info = client.predict(**{**FORM, "negative_prompt": "blurry", "styles": [STYLE]}, api_name="/txt2img")
    params = parse_infotext(info)
    assert params["Prompt"] == "a fox, watercolor, soft" and params["Negative prompt"] == "blurry, photo"

    # 📋 writes the selection into the prompt boxes and clears it.
    assert client.predict(prompt="a fox", negative_prompt="", styles=[STYLE], api_name="/txt2img_apply_styles") == (
        "a fox, watercolor, soft", "photo", [])

    # The editor: {prompt} puts the prompt inside the style.
    client.predict(name=STYLE, style_prompt="a painting of {prompt}", style_negative_prompt="",
                   api_name="/img2img_style_save")
    assert ctx.styles.get(STYLE) == PromptStyle(STYLE, "a painting of {prompt}", "")
    _, info = client.predict(**{**FORM, "styles": [STYLE]}, api_name="/txt2img")
    assert parse_infotext(info)["Prompt"] == "a painting of a fox"

    outputs = client.predict(name=STYLE, img2img_styles=[STYLE], api_name="/txt2img_style_delete")
    assert STYLE not in ctx.styles.all() and outputs[:2] == ("", "")
    assert all(STYLE not in [v for _, v in output["choices"]] for output in outputs[2:])
    assert outputs[3]["value"] is None and outputs[4]["value"] == []  # img2img's selection lost the style
    with pytest.raises(Exception, match="unknown style"):
        client.predict(**{**FORM, "styles": [STYLE]}, api_name="/txt2img")


def test_pasting_an_image_made_with_a_style_selects_it_again(client, ctx):
    ctx.styles.add(PromptStyle(STYLE, "watercolor", "photo"))
    _, info = client.predict(**{**FORM, "styles": [STYLE]}, api_name="/txt2img")
    pasted = dict(zip(PASTE_NAMES, client.predict(prompt=info, styles=[], api_name="/txt2img_read_parameters"),
                      strict=True))
    assert (pasted["prompt"], pasted["negative_prompt"], pasted["styles"]) == ("a fox", "", [STYLE])
    # A prompt no style fits clears the selection, so the pasted image is made again as it was.
    plain = "a teapot\nSteps: 3, Sampler: Euler, Seed: 5, Size: 64x64"
    pasted = dict(zip(PASTE_NAMES, client.predict(prompt=plain, styles=[STYLE], api_name="/txt2img_read_parameters"),
                      strict=True))
    assert (pasted["prompt"], pasted["styles"]) == ("a teapot", [])


def count(client, box: str, prompt: str, steps: int = 20, emphasis: str = "Original") -> str:
    """A counter's answer; its event is left out of the API docs, so it takes (prompt, steps, emphasis) by position."""
    return client.predict(prompt, steps, emphasis, api_name=f"/{box}_tokens")


def test_token_counters_count_as_the_user_types(client):
    assert count(client, "txt2img_prompt", "") == "0/75"
    # The tiny tokenizer reads "a" as one token and "fox" as three; weights and brackets are not tokens.
    assert count(client, "txt2img_prompt", "a fox") == "4/75"
    assert count(client, "img2img_prompt", "a (fox:1.3)") == "4/75"
    assert count(client, "img2img_prompt", "a (fox:1.3)", emphasis="None") == "10/75"  # brackets read as text
    long = " ".join(["a"] * 80)
    assert count(client, "txt2img_negative_prompt", long) == "80/150"
    assert count(client, "img2img_negative_prompt", long) == "80/150"
    # Prompt editing: the longest prompt over the steps counts; LoRA tags never reach the encoder.
    assert count(client, "txt2img_prompt", "[a:a a a:0.5] <lora:x:1>") == "3/75"


def test_the_tokenizer_is_read_once_per_model_folder(live_app):
    cache = TokenizerCache(live_app["ctx"].selection)
    tokenizer = cache.current()
    assert tokenizer is not None and cache.current() is tokenizer
    assert counter_text("a fox", tokenizer) == "4/75"


def test_the_counter_says_so_without_a_tokenizer_on_disk(tmp_path):
    ctx = AppContext.build(make_settings(tmp_path))  # no models: the default Hub model, not downloaded
    assert not ctx.selection.record().installed and tokenizer_folder(ctx.selection.record()) is None
    assert TokenizerCache(ctx.selection).current() is None
    assert tokenizer_folder(None) is None and counter_text("a fox", None) == UNKNOWN == "?/75"


def test_read_parameters_sets_the_quick_settings_from_the_infotext(client, ctx, live_app):
    text = "a castle\nSteps: 3, Sampler: Euler, Seed: 3, Size: 64x64, Clip skip: 2, Emphasis: No norm"
    values = dict(zip(PASTE_NAMES, client.predict(**{**FORM, "prompt": text}, api_name="/txt2img_read_parameters"),
                      strict=True))
    assert (values["prompt"], values["clip_skip"], values["emphasis"]) == ("a castle", 2, "No norm")
    assert ctx.options.prompt_settings() == {"clip_skip": 2, "emphasis": "No norm"}
    assert saved_options(live_app)["CLIP_stop_at_last_layers"] == 2

    # Without the keys, A1111's defaults: Clip skip 1, Emphasis Original.
    values = dict(zip(PASTE_NAMES, client.predict(infotext="a castle\nSteps: 3, Sampler: Euler, Seed: 3",
                                                  api_name="/paste_to_txt2img"), strict=True))
    assert {k: values[k] for k in QUICK_NAMES[:2]} == {"clip_skip": 1, "emphasis": "Original"}  # SD VAE kept
    assert ctx.options.prompt_settings() == {"clip_skip": 1, "emphasis": "Original"}

    # A plain prompt is no infotext: the settings stay.
    client.predict(clip_skip=4, api_name="/set_clip_skip")
    client.predict(**{**FORM, "prompt": "just words"}, api_name="/txt2img_read_parameters")
    assert ctx.options.prompt_settings()["clip_skip"] == 4


def test_png_info_send_to_img2img_sets_the_quick_settings(client, ctx, tmp_path):
    info = PngInfo()
    info.add_text("parameters", "a lake\nSteps: 3, Sampler: Euler, Seed: 3, Size: 64x64, Clip skip: 2")
    path = tmp_path / "clip-skip.png"
    Image.new("RGB", (64, 64), "gray").save(path, pnginfo=info)
    values = client.predict(handle_file(str(path)), api_name="/png_info_send_to_img2img")
    assert list(values[-3:-1]) == [2, "Original"] and values[1] == "a lake"  # then the SD VAE, kept
    assert ctx.options.prompt_settings() == {"clip_skip": 2, "emphasis": "Original"}
