"""Render the figures of docs/perceptual_control.md: colour, spatial and scale control side by side.

    PAINTERLY_CACHE_DIR=/tmp/pcache python docs/make_perceptual_figures.py [--only color spatial scale]
        [--size 256] [--iterations 150] [--cache /tmp/perceptual]

Every panel of a figure is one ``stylize()`` run on the same content, with the same size, step budget
and seed; only the control option named under the panel changes.  With ``--cache`` each run's result
is kept as a PNG there and reused, so a figure can be re-laid out without re-running.  Only public-domain
or CC0 pictures are used (see /work/shared/data/SOURCES.md), so the figures may ship with the docs.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from painterly import stylize
from painterly.images import resize_long_side

DOCS = Path(__file__).resolve().parent
DATA = DOCS.parents[1] / "shared" / "data"
COFFEE = DATA / "content" / "coffee.jpg"  # CC0, Rachel Michetti (scikit-image)
ASTRONAUT = DATA / "content" / "astronaut.jpg"  # public domain, NASA (scikit-image)
CHELSEA = DATA / "content" / "chelsea_cat.jpg"  # CC0, Stefan van der Walt (scikit-image)
WAVE = DATA / "style" / "great_wave_hokusai.jpg"  # public domain
STARRY = DATA / "style" / "starry_night.jpg"  # public domain
KANDINSKY = DATA / "style" / "composition_vii_kandinsky.jpg"  # public domain

Panel = tuple[str, Image.Image]


def _font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def sheet(rows: list[list[Panel]], height: int) -> Image.Image:
    """Panels scaled to one height, in rows, each with its caption underneath."""
    caption, gap = 20, 4
    scaled = [[(label, image.resize((round(image.width * height / image.height), height))) for label, image in row]
              for row in rows]  # fmt: skip
    width = max(sum(image.width for _, image in row) + gap * (len(row) - 1) for row in scaled)
    canvas = Image.new("RGB", (width, len(rows) * (height + caption) + gap * (len(rows) - 1)), "white")
    draw, font = ImageDraw.Draw(canvas), _font()
    for r, row in enumerate(scaled):
        x, y = 0, r * (height + caption + gap)
        for label, image in row:
            canvas.paste(image, (x, y))
            draw.text((x + 3, y + height + 3), label, fill="black", font=font)
            x += image.width + gap
    return canvas


def save_small(image: Image.Image, path: Path, limit: int = 400_000) -> None:
    """PNG under ``limit`` bytes: full colour if it fits, else an adaptive 256-colour palette."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    if buffer.tell() > limit:
        buffer = io.BytesIO()
        image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
            buffer, "PNG", optimize=True
        )
    path.write_bytes(buffer.getvalue())
    print(f"wrote {path} ({buffer.tell() / 1000:.0f} kB, {image.width}x{image.height})")


class Runner:
    """``run(name, content, styles, **options)``: stylize once, or reuse ``cache/name.png``."""

    def __init__(self, size: int, iterations: int, cache: Path | None) -> None:
        self.base = {"size": size, "start_size": size // 2, "iterations": iterations, "seed": 0}
        self.cache = cache
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)

    def run(self, name: str, content: Path, styles: list[Path | Image.Image], **options) -> Image.Image:
        cached = self.cache / f"{name}.png" if self.cache is not None else None
        if cached is not None and cached.exists():
            return Image.open(cached).convert("RGB")
        started = time.perf_counter()
        result = stylize(content, styles, **(self.base | options))
        print(f"  {name}: {time.perf_counter() - started:.0f} s")
        if cached is not None:
            result.save(cached)
        return result


def thumb(path: Path | Image.Image, size: int) -> Image.Image:
    image = path if isinstance(path, Image.Image) else Image.open(path).convert("RGB")
    return resize_long_side(image, size)


def color_figure(runner: Runner, size: int) -> Image.Image:
    panels: list[Panel] = [("content", thumb(COFFEE, size)), ("style", thumb(WAVE, size))]
    for mode in ("none", "luminance", "linear", "match-histograms", "original-colors"):
        panels.append((mode, runner.run(f"color_{mode}", COFFEE, [WAVE], color_control=mode)))
    return sheet([panels[:4], panels[4:]], round(size * 400 / 600))


def person_masks() -> tuple[Image.Image, Image.Image]:
    """Rough hand-made masks of astronaut.jpg (512 x 512): the person (head and suit) and the rest.

    Drawn from an ellipse and a polygon and blurred, so the edge is soft (grey = partly each style).
    """
    person = Image.new("L", (512, 512), 0)
    draw = ImageDraw.Draw(person)
    draw.ellipse((150, 20, 300, 200), fill=255)
    draw.polygon(
        [(110, 200), (300, 200), (345, 250), (372, 330), (330, 512), (20, 512), (25, 330), (60, 250)], fill=255
    )
    person = person.filter(ImageFilter.GaussianBlur(6))
    return person, Image.eval(person, lambda value: 255 - value)


def spatial_figure(runner: Runner, size: int, masks_dir: Path) -> Image.Image:
    person, background = person_masks()
    masks_dir.mkdir(parents=True, exist_ok=True)
    person_path, background_path = masks_dir / "astronaut_person.png", masks_dir / "astronaut_background.png"
    person.save(person_path)
    background.save(background_path)
    both = [STARRY, KANDINSKY]
    unmasked = runner.run("spatial_none", ASTRONAUT, both)
    two = runner.run("spatial_two", ASTRONAUT, both, style_masks=[background_path, person_path])
    one = runner.run("spatial_background_only", ASTRONAUT, [STARRY], style_masks=[background_path])
    content = Image.open(ASTRONAUT).convert("RGB")
    tint = Image.merge("RGB", (background, Image.new("L", person.size, 40), person))  # red: style 1, blue: style 2
    mask_view = Image.blend(content, tint, 0.6)
    top = [
        ("content", thumb(content, size)),
        ("masks: red style 1, blue style 2", thumb(mask_view, size)),
        ("style 1", thumb(STARRY, size)),
        ("style 2", thumb(KANDINSKY, size)),
    ]
    bottom = [
        ("both styles, no masks", unmasked),
        ("style 1 background, style 2 person", two),
        ("style 1 background, person unstyled", one),
    ]
    return sheet([top, bottom], size)


def scale_figure(runner: Runner, size: int) -> Image.Image:
    fine, coarse = "relu1_1,relu2_1", "relu3_1,relu4_1,relu5_1"
    both = [STARRY, KANDINSKY]
    panels = [
        ("content", thumb(CHELSEA, size)),
        ("style A", thumb(STARRY, size)),
        ("style B", thumb(KANDINSKY, size)),
        ("A, per_style_scale 0.5", runner.run("scale_a_half", CHELSEA, [STARRY], per_style_scale=[0.5])),
        ("A, per_style_scale 2", runner.run("scale_a_double", CHELSEA, [STARRY], per_style_scale=[2.0])),
        ("B", runner.run("scale_b", CHELSEA, [KANDINSKY])),
        ("A coarse + B fine", runner.run("scale_a_coarse", CHELSEA, both, per_style_layers=[coarse, fine])),
        ("A fine + B coarse", runner.run("scale_a_fine", CHELSEA, both, per_style_layers=[fine, coarse])),
    ]
    return sheet([panels[:3], panels[3:6], panels[6:]], round(size * 300 / 451))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only", nargs="+", choices=["color", "spatial", "scale"], default=["color", "spatial", "scale"]
    )
    parser.add_argument("--size", type=int, default=256, help="long side of every result (default: 256)")
    parser.add_argument("--iterations", type=int, default=150, help="steps per result (default: 150)")
    parser.add_argument("--cache", type=Path, default=None, help="keep and reuse each result here")
    parser.add_argument("--output", type=Path, default=DOCS, help="where the figures go (default: docs/)")
    args = parser.parse_args()
    runner = Runner(args.size, args.iterations, args.cache)
    figures: dict[str, Callable[[], Image.Image]] = {
        "color": lambda: color_figure(runner, args.size),
        "spatial": lambda: spatial_figure(runner, args.size, args.cache or Path(tempfile.mkdtemp())),
        "scale": lambda: scale_figure(runner, args.size),
    }
    names = {"color": "color_control.png", "spatial": "spatial_control.png", "scale": "scale_control.png"}
    for key in args.only:
        print(f"{key}:")
        save_small(figures[key](), args.output / names[key])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
