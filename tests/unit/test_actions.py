"""Building the requests of the one-click result actions (Vary, Reuse seed) from an image and its infotext."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from pipelines.actions import (
    VARY_DENOISING_STRENGTH,
    image_infotext,
    image_size_for_request,
    img2img_from_image,
    new_seed,
    seed_of,
    vary_request,
)
from pipelines.errors import ValidationError
from pipelines.infotext.codec import format_infotext
from pipelines.infotext.paste import paste_img2img_parameters, to_img2img_request
from pipelines.outputs import png_info
from pipelines.requests import Img2ImgRequest

PARAMS = {"Steps": 12, "Sampler": "DPM++ 2M", "Schedule type": "Karras", "CFG scale": 6.5, "Seed": 4242,
          "Size": "96x64", "Model": "tiny-sd15-b", "RNG": "CPU", "Version": "Atelier 0.1.0"}
INFOTEXT = format_infotext("a red fox, snow", "blurry", PARAMS)


def saved_png(infotext: str | None, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """An image as it comes back from disk: a PNG with its ``parameters`` chunk."""
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, format="PNG", pnginfo=png_info(infotext) if infotext else None)
    buffer.seek(0)
    return Image.open(buffer)


def test_vary_strengths_are_fooocus_values():
    assert dict(VARY_DENOISING_STRENGTH) == {"subtle": 0.5, "strong": 0.85}
    with pytest.raises(TypeError):
        VARY_DENOISING_STRENGTH["subtle"] = 0.1  # type: ignore[index]


@pytest.mark.parametrize("strength", ["subtle", "strong"])
def test_vary_keeps_the_images_settings_with_a_new_seed(strength):
    image = saved_png(INFOTEXT)
    request = vary_request(image, strength, rng=random.Random(1))
    request.validate()
    assert request.init_image is image
    assert (request.prompt, request.negative_prompt) == ("a red fox, snow", "blurry")
    assert (request.sampler_name, request.scheduler, request.steps, request.cfg_scale) == ("DPM++ 2M", "Karras", 12,
                                                                                          6.5)
    assert (request.width, request.height) == (96, 64)
    assert request.denoising_strength == VARY_DENOISING_STRENGTH[strength]
    assert request.seed != 4242 and 0 <= request.seed
    assert request.n_iter == 1 and request.batch_size == 1
    assert request.model is None  # no store: the model is not looked up, the selected one is used


def test_vary_seed_is_random_per_click():
    image = saved_png(INFOTEXT)
    seeds = {vary_request(image, "subtle").seed for _ in range(5)}
    assert len(seeds) > 1


def test_new_seed_never_repeats_the_source_seed():
    class Stubborn(random.Random):
        """Draws the avoided seed twice before anything else."""

        def __init__(self) -> None:
            super().__init__(0)
            self.queue = [7, 7, 8]

        def randint(self, a: int, b: int) -> int:
            return self.queue.pop(0)

    assert new_seed(7, Stubborn()) == 8


def test_vary_uses_the_image_size_not_the_infotext_size():
    image = saved_png(INFOTEXT, size=(203, 130))  # e.g. an upscaled or cropped copy
    request = vary_request(image, "strong")
    assert (request.width, request.height) == (200, 128)
    request.validate()


def test_vary_of_an_image_without_parameters_uses_defaults():
    image = saved_png(None, size=(64, 64))
    assert image_infotext(image) == ""
    request = vary_request(image, "subtle")
    defaults = Img2ImgRequest()
    assert (request.prompt, request.steps, request.sampler_name) == ("", defaults.steps, defaults.sampler_name)
    assert request.denoising_strength == 0.5 and request.seed >= 0


def test_vary_keeps_a_batch_as_a_batch():
    text = format_infotext("p", "", {**PARAMS, "Batch size": 4, "Batch pos": 2})
    request = vary_request(saved_png(text), "subtle")
    assert request.batch_size == 4 and request.n_iter == 1


def test_vary_names_bad_input():
    with pytest.raises(ValidationError) as err:
        vary_request(saved_png(INFOTEXT), "medium")
    assert err.value.field == "strength" and "subtle" in err.value.message
    with pytest.raises(ValidationError) as err:
        vary_request(None, "subtle")
    assert err.value.field == "init_image"


def test_send_to_img2img_pastes_denoising_strength():
    text = format_infotext("a lake", "", {**PARAMS, "Denoising strength": 0.35})
    request, pasted = img2img_from_image(saved_png(text), text)
    assert request.denoising_strength == 0.35 and request.seed == 4242 and request.steps == 12
    assert not any("Denoising strength" in note for note in pasted.notes)


def test_img2img_paste_skips_a_bad_denoising_strength_with_a_note():
    text = format_infotext("a lake", "", {**PARAMS, "Denoising strength": 1.5})
    pasted = paste_img2img_parameters({"Prompt": "a lake", "Denoising strength": "1.5", "Steps": "3",
                                       "Seed": "1", "Sampler": "Euler"})
    assert "denoising_strength" not in pasted.fields
    assert any("Denoising strength '1.5' skipped" in note for note in pasted.notes)
    request, _ = img2img_from_image(saved_png(text), text, base=Img2ImgRequest(denoising_strength=0.6))
    assert request.denoising_strength == 0.6  # the current value kept


def test_to_img2img_request_keeps_the_image_and_unnamed_fields():
    image = saved_png(INFOTEXT)
    current = Img2ImgRequest(init_image=image, resize_mode=1, n_iter=3, denoising_strength=0.4)
    request = to_img2img_request(paste_img2img_parameters({"Prompt": "only a prompt"}), current)
    assert request.prompt == "only a prompt"
    assert (request.init_image, request.resize_mode, request.n_iter, request.denoising_strength) == (image, 1, 3, 0.4)


def test_image_size_for_request_rounds_down_to_multiples_of_8():
    assert image_size_for_request(Image.new("RGB", (513, 767))) == (512, 760)
    assert image_size_for_request(Image.new("RGB", (20, 70))) == (64, 64)


def test_seed_of_reads_the_infotext_seed():
    assert seed_of(INFOTEXT) == 4242
    assert seed_of("just a prompt") is None
    assert seed_of(format_infotext("p", "", {**PARAMS, "Seed": "abc"})) is None
