"""Pictures the sketch-colouring tests share: a small colouring-book page and style images of coloured blocks."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

RED = ((220, 30, 30), (250, 90, 60), (190, 20, 50))
BLUE = ((30, 40, 220), (60, 120, 250), (20, 30, 160))
RAINBOW = ((230, 40, 40), (40, 200, 60), (40, 70, 230), (240, 220, 40), (200, 60, 220), (40, 210, 220))


def drawing(size: tuple[int, int] = (72, 56)) -> Image.Image:
    """A colouring-book page: black outlines (2 px) of a rectangle on the left and an ellipse on the right."""
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    width, height = size
    draw.rectangle((5, 6, width * 0.42, height - 8), outline=0, width=2)
    draw.ellipse((width * 0.55, 8, width - 6, height - 10), outline=0, width=2)
    return page.convert("RGB")


def patches(
    colors: Sequence[tuple[int, int, int]], size: tuple[int, int] = (48, 48), block: int = 6, seed: int = 0
) -> Image.Image:
    """A style image of random blocks of the given colours."""
    rng = np.random.default_rng(seed)
    cells = np.array(colors, dtype=np.uint8)[rng.integers(len(colors), size=(size[1] // block, size[0] // block))]
    return Image.fromarray(cells, "RGB").resize(size, Image.Resampling.NEAREST)


def png(image: Image.Image) -> bytes:
    """A picture as PNG bytes (an upload)."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
