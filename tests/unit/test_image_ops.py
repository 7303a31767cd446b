"""Init-image preparation: any Pillow mode to RGB, and A1111's resize modes 0, 1 and 2."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import ValidationError
from pipelines.imaging.image_ops import prepare_init_image, resize_image, to_rgb


def halves(size=(80, 40)) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return image


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "PA", "L", "1", "CMYK", "YCbCr", "I;16", "I", "F"])
@pytest.mark.parametrize("resize_mode", [0, 1, 2])
def test_every_mode_comes_out_rgb_at_the_size(mode, resize_mode):
    out = prepare_init_image(Image.new(mode, (50, 30)), 64, 48, resize_mode)
    assert out.mode == "RGB" and out.size == (64, 48)


def test_alpha_is_flattened_onto_white_and_16_bit_is_scaled():
    assert to_rgb(Image.new("RGBA", (2, 2), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    sixteen = Image.fromarray(np.full((2, 2), 65535, np.uint16))
    assert sixteen.mode == "I;16" and to_rgb(sixteen).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.fromarray(np.full((2, 2), 32896, np.uint16))).getpixel((0, 0)) == (128, 128, 128)


def test_crop_and_resize_keeps_the_centre():
    out = np.asarray(resize_image(halves((80, 40)), 40, 40, 1))  # a square cut from the middle
    assert tuple(out[20, 2]) == (255, 0, 0) and tuple(out[20, 37]) == (0, 0, 255)


def test_resize_and_fill_stretches_the_edges_into_the_bands():
    out = np.asarray(resize_image(halves((80, 40)), 80, 80, 2))  # bands above and below
    assert tuple(out[0, 5]) == tuple(out[20, 5]) == (255, 0, 0)
    assert tuple(out[79, 75]) == (0, 0, 255)


def test_just_resize_stretches_and_mode_3_is_refused():
    assert resize_image(halves(), 64, 64, 0).size == (64, 64)
    with pytest.raises(ValidationError) as err:
        resize_image(halves(), 64, 64, 3)
    assert err.value.field == "resize_mode"
