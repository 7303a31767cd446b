"""Hires fix through the engine on the tiny real SD1 model: sizes, both passes, seeds, infotext, paste, interrupt."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.context import AppContext
from pipelines.errors import ValidationError
from pipelines.infotext.codec import format_infotext, format_value, parse_infotext
from pipelines.infotext.paste import paste_parameters, to_txt2img_request
from pipelines.modes.hires import schedule_length
from pipelines.outputs import read_infotext
from pipelines.requests import HiresFix, Txt2ImgRequest
from tests.support.apps import install_models, make_settings

BASE = dict(prompt="a red fox", negative_prompt="blurry", width=64, height=64, steps=4, model="tiny-sd15")


def hires_request(**hires) -> Txt2ImgRequest:
    return Txt2ImgRequest(**BASE, seed=11, hires=HiresFix(**hires))


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(int)


@pytest.fixture
def app_context(module_app_context):
    """The module's one context (its tests only run jobs and read their own results): tiny-sd15 loads once."""
    return module_app_context


def test_latent_hires_doubles_the_size_and_runs_both_passes_on_one_step_bar(app_context):
    updates = []
    result = app_context.engine.generate(hires_request(hr_second_pass_steps=3), on_progress=updates.append)
    assert result.images[0].image.size == (128, 128)
    steps = [u for u in updates if u.unit == "steps"]
    assert [(u.step, u.total) for u in steps] == [(i, 7) for i in range(1, 8)]  # 4 first-pass + 3 hires steps
    previews = {u.step: u.preview.size for u in steps if u.preview is not None}
    assert previews == {2: (64, 64), 4: (64, 64), 6: (128, 128)}  # each pass previewed at its own size
    assert "hires fix" in steps[-1].text


def test_hires_steps_zero_runs_the_first_pass_steps_again(app_context):
    updates = []
    app_context.engine.generate(hires_request(denoising_strength=0.3), on_progress=updates.append)
    assert [u.step for u in updates if u.unit == "steps"] == list(range(1, 9))  # 4 + 4, even at strength 0.3


def test_infotext_keys_in_a1111_order(app_context):
    result = app_context.engine.generate(hires_request(hr_second_pass_steps=3, denoising_strength=0.55,
                                                       hr_upscaler="Latent (bicubic antialiased)"))
    text = read_infotext(result.paths[0])
    assert text == result.images[0].infotext
    info = parse_infotext(text)
    assert (info["Size-1"], info["Size-2"]) == ("64", "64")  # Size stays the first pass's, as A1111
    assert info["Denoising strength"] == "0.55" and info["Hires upscale"] == "2" and info["Hires steps"] == "3"
    assert info["Hires upscaler"] == "Latent (bicubic antialiased)"
    keys = list(info)
    order = ["Model", "Denoising strength", "RNG", "Hires upscale", "Hires steps", "Hires upscaler", "Version"]
    assert [keys.index(k) for k in order] == sorted(keys.index(k) for k in order)
    assert not any(k in info for k in ("Hires sampler", "Hires prompt", "Hires resize", "Hires schedule type"))


def test_hires_sampler_and_prompt_are_written_only_when_they_differ(app_context):
    result = app_context.engine.generate(hires_request(hr_sampler_name="DPM++ 2M", hr_scheduler="Karras",
                                                       hr_prompt="a red fox, detailed", hr_negative_prompt="blurry"))
    info = parse_infotext(result.images[0].infotext)
    assert info["Hires sampler"] == "DPM++ 2M" and info["Hires schedule type"] == "Karras"
    assert info["Hires prompt"] == "a red fox, detailed"
    assert "Hires negative prompt" not in info  # same as the first pass's
    plain = app_context.engine.generate(hires_request(hr_sampler_name="Euler a", hr_scheduler="Use same scheduler"))
    assert "Hires sampler" not in plain.images[0].infotext and "Hires schedule" not in plain.images[0].infotext


def test_each_image_uses_its_own_seed_in_both_passes(app_context):
    hires = HiresFix(hr_second_pass_steps=2)
    batch = app_context.engine.generate(Txt2ImgRequest(**BASE, seed=40, batch_size=2, hires=hires))
    alone = app_context.engine.generate(Txt2ImgRequest(**BASE, seed=41, hires=hires))
    assert [img.seed for img in batch.images] == [40, 41] and batch.info["all_seeds"] == [40, 41]
    # the same image up to float rounding (batched 128x128 convolutions may sum in another order)
    assert np.abs(pixels(batch.images[1].image) - pixels(alone.images[0].image)).max() <= 1
    other = app_context.engine.generate(Txt2ImgRequest(**BASE, seed=42, hires=hires))
    assert np.abs(pixels(other.images[0].image) - pixels(alone.images[0].image)).mean() > 5


def test_hires_changes_the_image_and_latent_modes_differ(app_context):
    plain = app_context.engine.generate(Txt2ImgRequest(**BASE, seed=11))
    assert plain.images[0].image.size == (64, 64) and "Hires" not in plain.images[0].infotext
    a = app_context.engine.generate(hires_request(hr_upscaler="Latent", hr_second_pass_steps=2))
    b = app_context.engine.generate(hires_request(hr_upscaler="Latent (nearest)", hr_second_pass_steps=2))
    assert not np.array_equal(pixels(a.images[0].image), pixels(b.images[0].image))


@pytest.mark.parametrize(("size", "resize", "expected"), [
    ((96, 64), {"hr_resize_x": 144}, (144, 96)),  # height 0: keep the aspect ratio
    ((64, 96), {"hr_resize_y": 144}, (96, 144)),  # width 0: keep the aspect ratio
    ((64, 64), {"hr_resize_x": 128, "hr_resize_y": 96}, (128, 96)),  # both: cover, then cut the centre
    ((64, 64), {"hr_scale": 1.5}, (96, 96)),
    ((72, 64), {"hr_scale": 1.25}, (88, 80)),  # 90x80 rounded down to multiples of 8
])
def test_target_size(app_context, size, resize, expected):
    request = Txt2ImgRequest(**{**BASE, "width": size[0], "height": size[1]}, seed=3,
                             hires=HiresFix(hr_second_pass_steps=1, **resize))
    result = app_context.engine.generate(request)
    assert result.images[0].image.size == expected
    info = parse_infotext(result.images[0].infotext)
    if "hr_scale" in resize:
        assert "Hires resize" not in info
    else:
        assert info["Hires resize"] == f"{resize.get('hr_resize_x', 0)}x{resize.get('hr_resize_y', 0)}"


def test_lanczos_upscaler_decodes_upscales_and_reencodes(app_context):
    updates = []
    result = app_context.engine.generate(hires_request(hr_upscaler="Lanczos", hr_second_pass_steps=2,
                                                       hr_resize_x=128, hr_resize_y=96), on_progress=updates.append)
    assert result.images[0].image.size == (128, 96)
    assert [u.step for u in updates if u.unit == "steps"] == [1, 2, 3, 4, 5, 6]
    assert parse_infotext(result.images[0].infotext)["Hires upscaler"] == "Lanczos"
    latent = app_context.engine.generate(hires_request(hr_upscaler="Latent", hr_second_pass_steps=2,
                                                       hr_resize_x=128, hr_resize_y=96))
    assert not np.array_equal(pixels(latent.images[0].image), pixels(result.images[0].image))


def test_interrupt_in_the_second_pass_keeps_the_hires_image_so_far(app_context):
    engine = app_context.engine

    def interrupt_in_second_pass(update):
        if update.unit == "steps" and update.step == 5:
            engine.interrupt()

    result = engine.generate(Txt2ImgRequest(**BASE, seed=5, n_iter=3, hires=HiresFix(hr_second_pass_steps=4)),
                             on_progress=interrupt_in_second_pass)
    assert result.interrupted and len(result.images) == 1 and len(result.paths) == 1
    assert result.images[0].image.size == (128, 128)
    assert engine.state is None


def test_interrupt_in_the_first_pass_keeps_the_first_pass_image(app_context):
    engine = app_context.engine
    updates = []

    def interrupt_at_2(update):
        updates.append(update)
        if update.unit == "steps" and update.step == 2:
            engine.interrupt()

    result = engine.generate(Txt2ImgRequest(**BASE, seed=5, hires=HiresFix()), on_progress=interrupt_at_2)
    assert result.interrupted and result.images[0].image.size == (64, 64)  # as A1111: no second pass
    assert max(u.step for u in updates if u.unit == "steps") == 2
    assert np.asarray(result.images[0].image).std() > 0  # decoded, not a blank image


def test_skip_in_the_first_pass_skips_that_image_s_second_pass_only(app_context):
    engine = app_context.engine

    def skip_first_image(update):
        if update.unit == "steps" and engine.state.job_no == 0 and update.step == 2:
            engine.skip()

    result = engine.generate(Txt2ImgRequest(**BASE, seed=5, n_iter=2, hires=HiresFix(hr_second_pass_steps=2)),
                             on_progress=skip_first_image)
    assert not result.interrupted
    assert [img.image.size for img in result.images] == [(64, 64), (128, 128)]


def test_image_is_reproduced_from_its_own_infotext(app_context):
    original = app_context.engine.generate(hires_request(hr_resize_x=96, hr_second_pass_steps=2,
                                                         denoising_strength=0.6, hr_sampler_name="DPM++ 2M",
                                                         hr_upscaler="Latent (bicubic)", hr_prompt="a fox, sharp"))
    pasted = paste_parameters(parse_infotext(read_infotext(original.paths[0])), app_context.store)
    replay = to_txt2img_request(pasted, Txt2ImgRequest())
    # "Automatic" schedule for DPM++ 2M is Karras; the infotext names it, since the first pass's is Uniform
    assert replay.hires == HiresFix(hr_resize_x=96, hr_second_pass_steps=2, denoising_strength=0.6,
                                    hr_sampler_name="DPM++ 2M", hr_scheduler="Karras",
                                    hr_upscaler="Latent (bicubic)", hr_prompt="a fox, sharp")
    again = app_context.engine.generate(replay)
    assert np.array_equal(pixels(again.images[0].image), pixels(original.images[0].image))
    assert again.images[0].infotext == original.images[0].infotext


@pytest.mark.parametrize("hires", [
    HiresFix(),
    HiresFix(hr_scale=1.5, hr_second_pass_steps=7, hr_upscaler="Latent (nearest-exact)", denoising_strength=0.35),
    HiresFix(hr_resize_x=1024, hr_resize_y=0, hr_upscaler="Lanczos"),
    HiresFix(hr_resize_x=0, hr_resize_y=768, hr_sampler_name="DPM++ 2M", hr_scheduler="Karras"),
    HiresFix(hr_resize_x=640, hr_resize_y=512, hr_prompt="sharp, detailed: 8k", hr_negative_prompt="blur, noise"),
])
def test_hires_keys_round_trip_through_format_parse_paste(hires):
    request = Txt2ImgRequest(prompt="a castle", negative_prompt="fog", hires=hires)
    params = {"Steps": 20, "Sampler": "Euler a", "Seed": 1, "Size": "512x512",
              "Denoising strength": hires.denoising_strength, **request.hires.infotext_params(request)}
    parsed = parse_infotext(format_infotext(request.prompt, request.negative_prompt, params))
    written = {k: format_value(v) for k, v in params.items() if v is not None}
    assert {k: parsed[k] for k in written} == written
    pasted = paste_parameters(parsed)
    assert pasted.fields["hires"] == hires
    assert not any("Hires" in note for note in pasted.notes)


def test_pasting_an_infotext_without_hires_turns_it_off():
    current = Txt2ImgRequest(hires=HiresFix())
    pasted = paste_parameters(parse_infotext("a lake\nSteps: 5, Sampler: Euler, Seed: 3, Size: 64x64"))
    assert to_txt2img_request(pasted, current).hires is None


@pytest.mark.parametrize(("hires", "field"), [
    (HiresFix(hr_upscaler="Mystery 9x"), "hr_upscaler"),
    (HiresFix(hr_scale=100), "hr_scale"),
    (HiresFix(hr_scale=0.5), "hr_scale"),
    (HiresFix(hr_resize_x=32), "hr_resize_x"),
    (HiresFix(hr_resize_y=-8), "hr_resize_y"),
    (HiresFix(denoising_strength=0), "denoising_strength"),
    (HiresFix(denoising_strength=1.5), "denoising_strength"),
    (HiresFix(hr_second_pass_steps=2.5), "hr_second_pass_steps"),
    (HiresFix(hr_sampler_name="Nope"), "hr_sampler_name"),
    (HiresFix(hr_scheduler="Wobbly"), "hr_scheduler"),
])
def test_bad_hires_values_name_the_a1111_field(app_context, hires, field):
    with pytest.raises(ValidationError) as err:
        app_context.engine.generate(Txt2ImgRequest(**BASE, hires=hires))
    assert err.value.field == field
    assert app_context.engine.state is None


@pytest.mark.parametrize(("steps", "strength"), [(20, 0.7), (7, 0.7), (10, 0.3), (3, 1.0), (1, 0.05), (150, 0.999)])
def test_schedule_length_gives_exactly_the_hires_steps(steps, strength):
    total = schedule_length(steps, strength)
    assert min(int(total * strength), total) == steps  # diffusers' own count of the steps it runs
    assert total == steps or int((total - 1) * strength) < steps  # and no longer a schedule than needed


def test_sdxl_latent_hires_and_a_cut_short_first_pass(tmp_path, model_store):
    install_models(model_store, tmp_path, ["tiny-sdxl"])
    engine = AppContext.build(make_settings(tmp_path)).engine
    request = Txt2ImgRequest(prompt="a red fox", width=64, height=64, steps=3, seed=1, model="tiny-sdxl",
                             hires=HiresFix(hr_second_pass_steps=2))
    assert engine.generate(request).images[0].image.size == (128, 128)

    def interrupt_at_1(update):
        if update.unit == "steps" and update.step == 1:
            engine.interrupt()

    cut = engine.generate(request, on_progress=interrupt_at_1)  # SDXL's latents decoded by hand (mean/std aware)
    assert cut.interrupted and cut.images[0].image.size == (64, 64)
    assert np.asarray(cut.images[0].image).std() > 0


@pytest.mark.parametrize("sampler", ["Heun", "DPM2", "DPM++ SDE"])
def test_second_order_samplers_count_sampling_steps_on_the_bar(app_context, sampler):
    updates = []  # these samplers call back twice per step; the bar still counts 4 + 3 steps, never backwards
    app_context.engine.generate(Txt2ImgRequest(**BASE, seed=2, sampler_name=sampler,
                                               hires=HiresFix(hr_second_pass_steps=3)), on_progress=updates.append)
    assert [(u.step, u.total) for u in updates if u.unit == "steps"] == [(i, 7) for i in range(1, 8)]
