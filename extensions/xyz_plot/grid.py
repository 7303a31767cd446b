"""Drawing the X/Y/Z grid with Pillow: cells in rows and columns, X labels above, Y labels on the left, one
block per Z value side by side under its own label. Missing cells (an interrupted run) stay blank."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)


def _font(cell_height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(10, min(cell_height // 8, 28)))


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    """``text`` cut into lines no wider than ``width`` (at spaces; a long word stays whole)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and _text_size(draw, f"{lines[-1]} {word}", font)[0] <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def _label(image: Image.Image, box: tuple[int, int, int, int], text: str, font) -> None:
    """Centre ``text`` (wrapped) in ``box`` = (left, top, width, height)."""
    draw = ImageDraw.Draw(image)
    left, top, width, height = box
    lines = _fit(draw, text, font, width - 4)
    line_height = _text_size(draw, "Ag", font)[1] + 4
    y = top + max(0, (height - line_height * len(lines)) // 2)
    for line in lines:
        line_width = _text_size(draw, line, font)[0]
        draw.text((left + max(0, (width - line_width) // 2), y), line, fill=INK, font=font)
        y += line_height


def draw_grid(cells: dict[tuple[int, int, int], Image.Image], x_labels: list[str], y_labels: list[str],
              z_labels: list[str], *, legend: bool = True, margin: int = 0) -> Image.Image:
    """One image holding every cell; ``cells[(x, y, z)]`` is the first image of that cell's job."""
    any_cell = next(iter(cells.values()))
    cw, ch = any_cell.size
    font = _font(ch)
    top = (ch // 4 + 24) if legend and any(x_labels) else 0
    left = (cw // 2 + 40) if legend and any(y_labels) else 0
    title = (ch // 5 + 20) if legend and any(z_labels) else 0
    block_w = left + len(x_labels) * cw + (len(x_labels) - 1) * margin
    block_h = title + top + len(y_labels) * ch + (len(y_labels) - 1) * margin
    gap = max(margin, cw // 8) if len(z_labels) > 1 else 0
    grid = Image.new("RGB", (len(z_labels) * block_w + (len(z_labels) - 1) * gap, block_h), BACKGROUND)
    for z, z_label in enumerate(z_labels):
        origin = z * (block_w + gap)
        if title:
            _label(grid, (origin, 0, block_w, title), z_label, font)
        for x, x_label in enumerate(x_labels):
            if top:
                _label(grid, (origin + left + x * (cw + margin), title, cw, top), x_label, font)
        for y, y_label in enumerate(y_labels):
            row_top = title + top + y * (ch + margin)
            if left:
                _label(grid, (origin, row_top, left, ch), y_label, font)
            for x in range(len(x_labels)):
                cell = cells.get((x, y, z))
                if cell is not None:
                    grid.paste(cell.convert("RGB").resize((cw, ch)), (origin + left + x * (cw + margin), row_top))
    return grid
