"""A batch's images as one grid picture (A1111's ``<mode>-grids``), drawn with Pillow.

The layout follows A1111's documented ``n_rows`` option: -1 picks the rows automatically (the largest
divisor of the count not above its square root, so 4 images are 2x2 and 6 are 2x3), 0 uses the batch
size, any other number is the rows asked for. Cells are the first image's size, with no gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image

BACKGROUND = (0, 0, 0)


def grid_shape(count: int, n_rows: int = -1, batch_size: int = 1) -> tuple[int, int]:
    """(rows, cols) for ``count`` images under the ``n_rows`` option."""
    if count < 1:
        raise ValueError("a grid needs at least one image")
    if n_rows > 0:
        rows = n_rows
    elif n_rows == 0:
        rows = batch_size
    else:
        rows = max(1, math.isqrt(count))
        while count % rows:
            rows -= 1
    rows = max(1, min(rows, count))
    return rows, math.ceil(count / rows)


def image_grid(images: Sequence[Image.Image], n_rows: int = -1, batch_size: int = 1) -> Image.Image:
    """The images left to right, top to bottom, in cells the size of the first one."""
    rows, cols = grid_shape(len(images), n_rows, batch_size)
    width, height = images[0].size
    grid = Image.new("RGB", (cols * width, rows * height), BACKGROUND)
    for index, image in enumerate(images):
        cell = image.convert("RGB")
        if cell.size != (width, height):
            cell = cell.resize((width, height))
        grid.paste(cell, ((index % cols) * width, (index // cols) * height))
    return grid

