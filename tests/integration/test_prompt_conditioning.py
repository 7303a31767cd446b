"""A1111's prompt language through the engine: tiny real pipelines, asserted on what the UNet sees and on images.

What the UNet receives is recorded with a forward pre-hook on the loaded UNet (PyTorch's public hook API),
removed after each job.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest
import torch

from pipelines import samplers
from pipelines.models.kinds import ModelType
from pipelines.prompts.conditioning import build_conditioning
from pipelines.prompts.schedule import build_schedule
from pipelines.requests import HiresFix, Img2ImgRequest, Txt2ImgRequest
from tests.support.apps import install_models, make_settings
from tests.support.tiny_networks import save_embedding

BASE = Txt2ImgRequest(prompt="a red fox in the snow", width=64, height=64, steps=4, seed=21, sampler_name="Euler",
                      save_images=False)


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image)


def generate(ctx, **changes) -> np.ndarray:
    return pixels(ctx.engine.generate(replace(BASE, **changes)))


@contextmanager
def unet_inputs(ctx, model: str = "tiny-sd15") -> Iterator[list[torch.Tensor]]:
    """The conditional half of ``encoder_hidden_states`` of every UNet call while inside."""
    seen: list[torch.Tensor] = []
    unet = ctx.selection.select(model).pipeline.unet

    def record(_module, _args, kwargs):
        states = kwargs["encoder_hidden_states"]
        seen.append(states[states.shape[0] // 2:].clone())  # CFG batches are [negative, positive]

    handle = unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def embeds_of(ctx, text: str) -> torch.Tensor:
    pipe = ctx.selection.select("tiny-sd15").pipeline
    cond = build_conditioning(pipe, prompt=text, negative_prompt="", steps=1)
    return cond.positive[0].embeds


@pytest.fixture
def app_context(module_app_context):
    """The module's one context (its tests run jobs, hook the UNet only inside ``unet_inputs`` and add one style of
    their own): tiny-sd15 loads once."""
    return module_app_context


def test_a_plain_prompt_gives_the_image_of_diffusers_own_encoding(app_context):
    ours = generate(app_context)
    pipe = app_context.selection.select("tiny-sd15").pipeline
    spec, schedule = samplers.resolve("Euler", "Automatic")
    raw = type(pipe)(**{**pipe.components, "scheduler": samplers.build_scheduler(pipe.scheduler.config, spec,
                                                                                  schedule)})
    raw.set_progress_bar_config(disable=True)
    image = raw(prompt=BASE.prompt, negative_prompt="", num_inference_steps=4, guidance_scale=BASE.cfg_scale,
                width=64, height=64, generator=torch.Generator("cpu").manual_seed(21)).images[0]
    assert np.array_equal(ours, np.asarray(image))


def test_a_weight_of_one_changes_nothing_and_other_weights_do(app_context):
    # A trained CLIP's output has a clear mean; the random tiny one's is ~0 (zero layer-norm bias),
    # which would leave "Original" and "No norm" alike. Give this job's copy a bias as training would.
    encoder = app_context.selection.select("tiny-sd15").pipeline.text_encoder
    with torch.no_grad():
        encoder.final_layer_norm.bias.copy_(torch.randn(encoder.config.hidden_size,
                                                                   generator=torch.Generator().manual_seed(3)))
    plain = generate(app_context)
    assert np.array_equal(generate(app_context, prompt="a (red:1.0) fox in the snow"), plain)
    assert not np.array_equal(generate(app_context, prompt="a (red:1.5) fox in the snow"), plain)
    assert not np.array_equal(generate(app_context, prompt="a (red:1.5) fox in the snow", emphasis="No norm"),
                              generate(app_context, prompt="a (red:1.5) fox in the snow"))
    original = generate(app_context, prompt="a (red:1.5) fox in the snow")
    assert original.std() > 5  # a real picture, not a blown-up flat one
    assert np.array_equal(generate(app_context, prompt="a (red:1.5) fox in the snow", emphasis="None"),
                          generate(app_context, prompt="a \\(red:1.5\\) fox in the snow"))  # brackets as text


def test_a_long_prompt_is_read_past_75_tokens(app_context):
    words = [f"w{i % 9}" for i in range(150)]  # the tiny vocabulary splits each into a few tokens
    long_prompt = " ".join(words)
    with unet_inputs(app_context) as seen:
        first = generate(app_context, prompt=long_prompt)
    assert seen[0].shape[1] > 77 and seen[0].shape[1] % 77 == 0  # several 77-token chunks
    changed = words[:]
    changed[-10] = "zebra"  # far past the first chunk
    assert not np.array_equal(generate(app_context, prompt=" ".join(changed)), first)


def test_break_starts_a_new_chunk(app_context):
    with unet_inputs(app_context) as seen:
        broken = generate(app_context, prompt="a red fox BREAK in the snow")
    assert seen[0].shape[1] == 2 * 77
    assert not np.array_equal(broken, generate(app_context))


def test_prompt_editing_switches_the_embeddings_the_unet_sees(app_context):
    steps = 10
    a, b = embeds_of(app_context, "a cat"), embeds_of(app_context, "a dog")
    with unet_inputs(app_context) as seen:
        generate(app_context, prompt="a [cat:dog:0.5]", steps=steps)
    assert len(seen) == steps
    expected = build_schedule("a [cat:dog:0.5]", steps)
    for step, states in enumerate(seen):
        want = a if expected.prompt_at(step) == "a cat" else b
        assert torch.equal(states[0], want[0]), step
    which = ["cat" if torch.equal(s[0], a[0]) else "dog" for s in seen]
    # A1111's sampler compares its 0-based step counter with the 1-based switch step, so a switch
    # "at 5 of 10" shows the first prompt for 6 UNet steps
    assert which == ["cat"] * 6 + ["dog"] * 4


def test_alternation_cycles_every_step(app_context):
    a, b = embeds_of(app_context, "a cat"), embeds_of(app_context, "a dog")
    with unet_inputs(app_context) as seen:
        generate(app_context, prompt="a [cat|dog]", steps=6)
    which = ["cat" if torch.equal(s[0], a[0]) else "dog" if torch.equal(s[0], b[0]) else "?" for s in seen]
    assert which == ["cat", "cat", "dog", "cat", "dog", "cat"]  # A1111's counting, see above


def test_hires_fix_reads_prompt_editing_on_its_own_pass(app_context):
    hires = HiresFix(hr_scale=1.25, hr_upscaler="Latent", hr_second_pass_steps=4, denoising_strength=0.6)
    a, b = embeds_of(app_context, "a cat"), embeds_of(app_context, "a dog")
    with unet_inputs(app_context) as seen:
        generate(app_context, prompt="a [cat:dog:1.5]", steps=4, hires=hires)
    which = ["cat" if torch.equal(s[0], a[0]) else "dog" if torch.equal(s[0], b[0]) else "?" for s in seen]
    first, second = which[:4], which[4:]
    assert first == ["cat"] * 4  # 1.5: half way through the second pass, on A1111's one timeline
    expected = build_schedule("a [cat:dog:1.5]", 4, first_pass_steps=4)
    assert second == [expected.prompt_at(i).split()[-1] for i in range(len(second))] and set(second) == {"cat", "dog"}


def test_clip_skip_changes_the_image_and_is_written(app_context):
    result = app_context.engine.generate(replace(BASE, clip_skip=2))
    assert "Clip skip: 2" in result.images[0].infotext
    assert not np.array_equal(pixels(result), generate(app_context))
    with pytest.raises(Exception, match="clip_skip"):
        app_context.engine.generate(replace(BASE, clip_skip=13))


def test_every_mode_reads_the_prompt_language(app_context):
    init = app_context.engine.generate(BASE).images[0].image
    img2img = Img2ImgRequest(prompt="a fox", init_image=init, width=64, height=64, steps=4, seed=3,
                             denoising_strength=0.6, save_images=False)
    weighted = replace(img2img, prompt="a (fox:1.6)")
    assert not np.array_equal(pixels(app_context.engine.generate(img2img)),
                              pixels(app_context.engine.generate(weighted)))
    mask = init.convert("L").point(lambda _: 255)
    inpaint = replace(img2img, mask=mask)
    assert not np.array_equal(pixels(app_context.engine.generate(inpaint)),
                              pixels(app_context.engine.generate(replace(inpaint, prompt="a (fox:1.6)"))))


@pytest.fixture
def with_embeddings(tmp_path, model_store):
    from pipelines.context import AppContext

    install_models(model_store, tmp_path, ["tiny-sd15"])
    save_embedding(tmp_path / "embeddings" / "glowstyle.safetensors", width=32, vectors=2, seed=4)
    save_embedding(tmp_path / "embeddings" / "xlstyle.safetensors", sdxl=True)
    return AppContext.build(make_settings(tmp_path))


def test_an_embedding_changes_the_image_when_named(with_embeddings, caplog):
    ctx = with_embeddings
    plain = ctx.engine.generate(replace(BASE, prompt="a fox, glowstyle"))
    record = ctx.store.find("glowstyle", ModelType.EMBEDDING)
    assert "TI hashes" in plain.images[0].infotext
    assert f'glowstyle: {ctx.store.hashed(record).sha256[:12]}' in plain.images[0].infotext
    without = ctx.engine.generate(replace(BASE, prompt="a fox, glowing"))
    assert "TI hashes" not in without.images[0].infotext
    assert not np.array_equal(pixels(plain), pixels(without))
    with caplog.at_level("WARNING"):
        skipped = ctx.engine.generate(replace(BASE, prompt="a fox, xlstyle"))  # SDXL file on an SD1 model
    assert "TI hashes" not in skipped.images[0].infotext
    assert any("xlstyle" in r.message and "SDXL" in r.message for r in caplog.records)


def test_styles_are_applied_before_everything_else(app_context):
    from pipelines.prompts.styles import PromptStyle

    app_context.styles.add(PromptStyle("snowy", "{prompt}, (snow:1.2)", "blurry"))
    styled = app_context.engine.generate(replace(BASE, prompt="a fox", styles=("snowy",)))
    assert styled.images[0].infotext.startswith("a fox, (snow:1.2)\nNegative prompt: blurry\n")
    same = app_context.engine.generate(replace(BASE, prompt="a fox, (snow:1.2)", negative_prompt="blurry"))
    assert np.array_equal(pixels(styled), pixels(same))
    with pytest.raises(Exception, match="styles"):
        app_context.engine.generate(replace(BASE, styles=("nope",)))


def test_sdxl_uses_both_encoders_and_an_empty_negative_is_zero(tmp_path, model_store):
    from pipelines.context import AppContext

    install_models(model_store, tmp_path, ["tiny-sdxl"])
    ctx = AppContext.build(make_settings(tmp_path))
    pipe = ctx.selection.select("tiny-sdxl").pipeline
    cond = build_conditioning(pipe, prompt="a (fox:1.3)", negative_prompt="", steps=2)
    widths = pipe.text_encoder.config.hidden_size + pipe.text_encoder_2.config.hidden_size
    assert cond.sdxl and cond.positive[0].embeds.shape[-1] == widths and cond.positive[0].pooled is not None
    assert not cond.negative[0].embeds.any() and not cond.negative[0].pooled.any()
    result = ctx.engine.generate(replace(BASE, prompt="a (fox:1.3) [cat|dog]", model="tiny-sdxl"))
    assert result.images[0].image.size == (64, 64)
