"""pipelines.imaging.masks: reading, inverting and blurring masks, the "Only masked" region, fill, paste-back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import ValidationError
from pipelines.imaging import masks


def noise_image(size=(96, 64), seed=0) -> Image.Image:
    w, h = size
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def box_mask(size=(96, 64), box=(30, 20, 60, 44)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def values(image) -> np.ndarray:
    return np.asarray(image).astype(int)


def test_to_mask_thresholds_grey_and_reads_alpha_of_a_painted_layer():
    grey = Image.fromarray(np.array([[0, 127, 128, 255]], dtype=np.uint8), "L")
    assert values(masks.to_mask(grey)).tolist() == [[0, 0, 255, 255]]
    layer = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    layer.putpixel((2, 0), (10, 10, 10, 255))  # a dark stroke: its alpha, not its colour, is the mask
    assert values(masks.to_mask(layer)).tolist() == [[0, 0, 255, 0]]
    opaque = Image.new("RGBA", (2, 1), (255, 255, 255, 255))  # no transparency: brightness counts
    assert values(masks.to_mask(opaque)).tolist() == [[255, 255]]
    deep = Image.fromarray(np.array([[0, 30000, 40000, 65535]], dtype=np.uint16))  # 16-bit grey
    assert values(masks.to_mask(deep)).tolist() == [[0, 0, 255, 255]]
    assert values(masks.to_mask(Image.fromarray(np.zeros((1, 3), dtype=np.uint16)))).max() == 0


def test_prepare_mask_resizes_to_the_image_and_inverts():
    small = box_mask((48, 32), (15, 10, 30, 22))
    mask = masks.prepare_mask(small, (96, 64), invert=False)
    assert mask.size == (96, 64) and mask.getbbox() == (30, 20, 60, 44)
    inverted = masks.prepare_mask(small, (96, 64), invert=True)
    assert values(inverted)[0, 0] == 255 and values(inverted)[30, 40] == 0


@pytest.mark.parametrize(("mask", "invert", "message"), [
    (Image.new("L", (96, 64), 0), False, "entirely black"),
    (Image.new("L", (96, 64), 255), True, "entirely white"),
    (Image.new("L", (64, 64), 255), False, "must have the image's shape"),
    ("not an image", False, "must be an image"),
])
def test_check_mask_names_the_field(mask, invert, message):
    with pytest.raises(ValidationError) as err:
        masks.check_mask(mask, (96, 64), invert=invert)
    assert err.value.field == "mask" and message in str(err.value)


def test_blur_softens_only_near_the_edge():
    mask = box_mask()
    blurred = values(masks.blur(mask, 4))
    assert blurred[32, 45] == 255 and blurred[2, 2] == 0  # the middle and far away are untouched
    assert 0 < blurred[32, 30] < 255  # the edge is soft
    assert values(masks.blur(mask, 0)).tolist() == values(mask).tolist()


def test_overlay_mask_doubles_and_keeps_zero():
    mask = Image.fromarray(np.array([[0, 1, 100, 128, 200]], dtype=np.uint8), "L")
    assert values(masks.overlay_mask(mask)).tolist() == [[0, 2, 200, 255, 255]]


def test_crop_region_pads_then_matches_the_aspect_within_the_image():
    mask = box_mask((200, 100), (90, 40, 110, 60))  # a 20x20 box in the middle
    assert masks.crop_region(mask, 10, 64, 64) == (80, 30, 120, 70)  # 40x40, already square
    assert masks.crop_region(mask, 10, 128, 64) == (60, 30, 140, 70)  # widened evenly to 2:1
    left, top, right, bottom = masks.crop_region(mask, 10, 64, 128)  # 1:2 needs 80 high; the image has 100
    assert (right - left, bottom - top) == (40, 80) and 0 <= top and bottom <= 100
    corner = box_mask((200, 100), (0, 0, 10, 10))
    assert masks.crop_region(corner, 8, 64, 64) == (0, 0, 18, 18)  # clamped at the image's corner
    assert masks.crop_region(Image.new("L", (20, 20), 0), 8, 64, 64) is None


def test_expand_to_aspect_shifts_back_inside_the_image():
    assert masks.expand_to_aspect((0, 10, 20, 30), 2.0, (100, 100)) == (0, 10, 40, 30)
    assert masks.expand_to_aspect((90, 10, 100, 30), 2.0, (100, 100)) == (60, 10, 100, 30)
    assert masks.expand_to_aspect((0, 0, 100, 10), 1.0, (100, 50)) == (0, 0, 100, 50)  # as near as it can


def test_paste_back_leaves_unmasked_pixels_exactly_the_original():
    original = noise_image((96, 64), seed=1)
    mask = masks.overlay_mask(masks.blur(box_mask(), 4))
    box = masks.crop_region(mask, 8, 64, 64)
    generated = Image.new("RGB", (64, 64), (255, 0, 0))
    result = values(masks.paste_back(original, generated, box, mask))
    keep = values(mask) == 0
    assert keep.sum() > 1000
    assert np.array_equal(result[keep], values(original)[keep])
    assert (result[32, 45] == [255, 0, 0]).all()  # the mask's middle is the generated crop
    assert masks.paste_back(original, generated, box, mask).size == original.size


def test_composite_blends_by_mask():
    a, b = Image.new("RGB", (3, 1), (200, 0, 0)), Image.new("RGB", (3, 1), (0, 0, 200))
    mask = Image.fromarray(np.array([[0, 128, 255]], dtype=np.uint8), "L")
    out = values(masks.composite(a, b, mask))
    assert out[0, 0].tolist() == [0, 0, 200] and out[0, 2].tolist() == [200, 0, 0] and 90 < out[0, 1, 0] < 110


def test_fill_masked_paints_the_surrounding_colours_and_keeps_the_rest():
    left_red = Image.new("RGB", (64, 32), (250, 10, 10))
    left_red.paste((10, 10, 250), (32, 0, 64, 32))  # left half red, right half blue
    mask = box_mask((64, 32), (24, 8, 40, 24))  # straddles the border
    filled = values(masks.fill_masked(left_red, mask))
    assert np.array_equal(filled[values(mask) == 0], values(left_red)[values(mask) == 0])
    assert filled[16, 25, 0] > filled[16, 25, 2]  # near the red side: reddish
    assert filled[16, 38, 2] > filled[16, 38, 0]  # near the blue side: bluish
    assert not np.array_equal(filled, values(left_red))
