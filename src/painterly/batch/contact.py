"""The contact sheet: one labelled picture of a batch's grid, so a person picks the best at a glance.

Rows are the first label that varies (the contents, or, for one content, the styles or the first swept setting),
columns every combination of the other labels that vary (the styles by the sweep's values); when only one label
varies, the sheet is one row.  What is the same for every job is the sheet's title.  A job that failed shows its
cell greyed with the word "failed"; one not done yet is blank.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from painterly.io.atomic import atomic_write_bytes

__all__ = ["Cell", "contact_sheet", "write_contact_sheet"]

#: (label, picture file or None, failure reason or None)
Cell = tuple[Mapping[str, str], Path | None, str | None]

PAD = 6
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> tuple[
    int, int
]:  # fmt: skip
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def contact_sheet(cells: Sequence[Cell], *, cell: int = 256, title: str | None = None) -> Image.Image:
    """The sheet of ``cells`` (see the module); each picture fitted into ``cell`` × ``cell`` pixels."""
    names = list(dict.fromkeys(name for label, _, _ in cells for name in label))
    varying = [name for name in names if len({label.get(name, "") for label, _, _ in cells}) > 1]
    fixed = [name for name in names if name not in varying]
    row_name = varying[0] if len(varying) > 1 else None  # one varying label: one row of columns
    column_names = varying[1:] if row_name else varying

    def column_of(label: Mapping[str, str]) -> str:
        return "\n".join(_fit(f"{name}: {label.get(name, '')}", 28) for name in column_names)

    rows = list(dict.fromkeys(label.get(row_name, "") if row_name else "" for label, _, _ in cells))
    columns = list(dict.fromkeys(column_of(label) for label, _, _ in cells))
    font, small = _font(14), _font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    header = max([_text_size(probe, column, small)[1] for column in columns] + [0]) + 2 * PAD
    left = max([_text_size(probe, _fit(row, 24), font)[0] for row in rows] + [0]) + 2 * PAD if row_name else PAD
    heading = title if title is not None else "  ".join(f"{n}: {cells[0][0].get(n, '')}" for n in fixed)
    top = (_text_size(probe, heading, font)[1] + 2 * PAD) if heading else 0
    width = left + len(columns) * (cell + PAD) + PAD
    height = top + header + len(rows) * (cell + PAD) + PAD
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if heading:
        draw.text((PAD, PAD), heading, fill=INK, font=font)
    for index, column in enumerate(columns):
        draw.multiline_text((left + index * (cell + PAD), top + PAD), column, fill=INK, font=small)
    for index, row in enumerate(rows):
        if row_name:
            draw.text((PAD, top + header + index * (cell + PAD) + cell // 2), _fit(row, 24), fill=INK, font=font)
    for label, picture, failure in cells:
        x = left + columns.index(column_of(label)) * (cell + PAD)
        y = top + header + rows.index(label.get(row_name, "") if row_name else "") * (cell + PAD)
        if picture is not None:
            with Image.open(picture) as image:
                # contain, not thumbnail: small results (a quick low-resolution sweep) are enlarged to fill the cell
                thumb = ImageOps.contain(image.convert("RGB"), (cell, cell), Image.Resampling.LANCZOS)
            sheet.paste(thumb, (x + (cell - thumb.width) // 2, y + (cell - thumb.height) // 2))
        elif failure is not None:
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=(225, 225, 225))
            draw.text((x + PAD, y + cell // 2 - 8), "failed", fill=(150, 0, 0), font=font)
    return sheet


def write_contact_sheet(path: Path, cells: Sequence[Cell], *, cell: int = 256) -> Path | None:
    """Write the sheet atomically as PNG (nothing when there are no cells); returns the path written."""
    if not cells:
        return None
    sheet = contact_sheet(cells, cell=cell)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path
