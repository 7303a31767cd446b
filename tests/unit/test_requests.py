import pytest
from PIL import Image

from pipelines.errors import ValidationError
from pipelines.requests import ExtrasRequest, Img2ImgRequest, Txt2ImgRequest


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"width": 500}, "width", "multiple of 8"),
        ({"height": 32}, "height", "between 64"),
        ({"steps": 0}, "steps", "between 1"),
        ({"cfg_scale": 99}, "cfg_scale", "between 0"),
        ({"seed": -5}, "seed", "-1 (random)"),
        ({"batch_size": 9}, "batch_size", "between 1"),
        ({"sampler_name": "Bogus"}, "sampler_name", "unknown sampler"),
        ({"scheduler": "Sideways"}, "scheduler", "unknown schedule"),
    ],
)
def test_validate_names_the_bad_field(changes, field, text):
    with pytest.raises(ValidationError) as err:
        Txt2ImgRequest(**changes).validate()
    assert err.value.field == field and text in err.value.message


def test_defaults_are_valid():
    Txt2ImgRequest(prompt="x").validate()


def test_inpaint_fields_default_to_a1111_ui_values_and_to_dict_summarizes_the_mask():
    from PIL import Image

    from pipelines.requests import Img2ImgRequest

    mask = Image.new("L", (32, 32), 255)
    request = Img2ImgRequest(init_image=Image.new("RGB", (32, 32)), mask=mask)
    request.validate()
    assert (request.mask_blur, request.inpainting_fill, request.inpaint_full_res,
            request.inpaint_full_res_padding, request.inpainting_mask_invert) == (4, 1, False, 32, 0)
    assert request.to_dict()["mask"] == "L image of size (32, 32)"


def test_outpaint_canvas_size_and_mode():
    from PIL import Image

    from pipelines.requests import OutpaintRequest

    request = OutpaintRequest(init_image=Image.new("RGB", (32, 32)), width=64, height=64, expand_left=16,
                              expand_down=8)
    request.validate()
    assert request.canvas_size == (80, 72) and request.mode == "outpaint"


@pytest.mark.parametrize("make", [
    lambda big: Img2ImgRequest(init_image=big),
    lambda big: Img2ImgRequest(init_image=Image.new("RGB", (64, 64)), mask=big),
    lambda big: ExtrasRequest(images=(Image.new("RGB", (8, 8)), big)),
])
def test_images_over_the_decompression_bomb_threshold_are_refused_naming_the_field(make):
    big = Image.new("1", (20_000, 5_000))  # 100 megapixels, 12 MB in 1-bit mode
    with pytest.raises(ValidationError, match=r"too large \(20000x5000, 100 megapixels\); the limit is 89") as err:
        make(big).validate()
    assert err.value.field in ("init_image", "mask", "images.1")
