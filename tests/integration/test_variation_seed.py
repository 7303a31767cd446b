"""A1111's variation seed and "resize seed from" in txt2img, through the engine on the tiny model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from pipelines.errors import ValidationError
from pipelines.imaging.noise import Variation, initial_noise, seed_noise
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.paste import paste_parameters, to_txt2img_request
from pipelines.requests import Img2ImgRequest, Txt2ImgRequest

BASE = Txt2ImgRequest(prompt="a lighthouse", width=64, height=64, steps=3, seed=5, sampler_name="Euler",
                      save_images=False)


def image(ctx, request) -> np.ndarray:
    return np.asarray(ctx.engine.generate(request).images[0].image)


def test_strength_zero_is_the_plain_image_and_strength_changes_it_deterministically(app_context):
    plain = image(app_context, BASE)
    assert np.array_equal(image(app_context, replace(BASE, subseed=9, subseed_strength=0.0)), plain)
    varied = image(app_context, replace(BASE, subseed=9, subseed_strength=0.4))
    assert not np.array_equal(varied, plain)
    assert np.array_equal(image(app_context, replace(BASE, subseed=9, subseed_strength=0.4)), varied)
    assert not np.array_equal(image(app_context, replace(BASE, subseed=10, subseed_strength=0.4)), varied)
    full = image(app_context, replace(BASE, subseed=9, subseed_strength=1.0))
    other_seed = image(app_context, replace(BASE, seed=9))
    assert np.abs(full.astype(int) - other_seed.astype(int)).max() <= 2  # strength 1: the variation seed's noise


def test_batch_images_step_both_seeds_and_the_infotext_reproduces_them(app_context):
    result = app_context.engine.generate(replace(BASE, subseed=100, subseed_strength=0.3, batch_size=2,
                                                 seed_resize_from_w=48, seed_resize_from_h=40))
    texts = [img.infotext for img in result.images]
    assert "Variation seed: 100, Variation seed strength: 0.3, Seed resize from: 48x40" in texts[0]
    assert "Seed: 6" in texts[1] and "Variation seed: 101" in texts[1]
    pasted = paste_parameters(parse_infotext(texts[1]))
    assert not any("Variation" in note for note in pasted.notes)
    again = to_txt2img_request(pasted, replace(BASE, prompt=""))
    assert np.array_equal(image(app_context, again), np.asarray(result.images[1].image))


def test_resize_seed_from_keeps_the_middle_of_the_smaller_noise():
    variation = Variation(resize_from=(32, 48))
    noise = initial_noise([3], [0], variation, channels=4, size=(64, 64), scale=8)
    small = seed_noise(3, (1, 4, 6, 4))[0]
    assert torch.equal(noise[0, :, 1:7, 2:6], small)
    assert torch.equal(noise[0, :, 0], seed_noise(3, (1, 4, 8, 8))[0][:, 0])  # the rest: the seed's full-size noise


def test_bad_values_and_other_modes_are_refused_naming_the_field(app_context):
    for field, value in (("subseed_strength", 1.5), ("subseed", -2), ("seed_resize_from_w", 50)):
        with pytest.raises(ValidationError) as err:
            replace(BASE, **{field: value}).validate()
        assert err.value.field == field
    with pytest.raises(ValidationError, match="txt2img") as err:
        Img2ImgRequest(init_image=app_context.engine.generate(BASE).images[0].image, subseed_strength=0.5).validate()
    assert err.value.field == "subseed_strength"
