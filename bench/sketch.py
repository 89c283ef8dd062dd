"""Sketch colouring benchmark: plain ``stylize(sketch, style)`` against ``colorize(sketch, style)``.

    PAINTERLY_CACHE_DIR=/tmp/pcache python bench/sketch.py             # writes docs/sketch/ and docs/sketch.md

For each line drawing in shared/data/sketch (all five, with one artwork each) both methods run with the
same size, coarse-to-fine schedule, step budget and seed; everything else is each function's default.  A third
row per drawing, *plain + lines*, is the plain result with colorize()'s own last step (the line art multiplied
back on, :func:`_with_lines`) applied afterwards: colorize() gets that overlay and plain does not, so only this
row compares the two at equal treatment.
The table measures line preservation (:func:`painterly.sketch.colorize.line_f1`: thin dark lines found in the result
against those of the sketch, one pixel of tolerance) and colour (Hasler & Suesstrunk's colourfulness and
the mean HSV saturation where the sketch is white paper).  Two more pictures show the optional hints: a
colour-hint image and two region masks.  Results are cached in ``--cache`` (delete it to re-run).
"""

from __future__ import annotations

import argparse
import json
import time
from inspect import signature
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from painterly import colorize, stylize
from painterly.engine.precision import cpu_description
from painterly.io.images import load_image, resize_long_side
from painterly.plan.stages import CURRENT_REVISION
from painterly.sketch.colorize import colorfulness, composite_lines, line_f1, paper_saturation, prepare_line_art

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
DOCS = REPO / "docs"

#: (sketch, artwork); the sketches are Tux Paint colouring-book starters (see docs/sketch.md for licences).
PAIRS = (
    ("bald_eagle", "starry_night.jpg"),
    ("desert_tortoise", "great_wave_hokusai.jpg"),
    ("gecko", "composition_vii_kandinsky.jpg"),
    ("old_soviet_car", "the_scream.jpg"),
    ("street", "woman_with_hat_matisse.jpg"),
)

#: The plain run with colorize()'s line overlay put on afterwards (:func:`_with_lines`): the equal-treatment row.
PLAIN_LINES = "plain + lines"
#: The table's methods, in its order.
METHODS = ("plain", PLAIN_LINES, "colorize")

#: Colour hints for the car: (x, y) as fractions of the frame, RGB colour; each dot colours its whole region.
CAR_HINTS = (
    ((0.38, 0.55), (200, 30, 30)),  # front door
    ((0.15, 0.52), (200, 30, 30)),  # rear side
    ((0.53, 0.52), (200, 30, 30)),  # front wing
    ((0.70, 0.36), (200, 30, 30)),  # bonnet
    ((0.78, 0.50), (200, 30, 30)),  # nose
    ((0.35, 0.13), (200, 30, 30)),  # roof
    ((0.20, 0.28), (120, 190, 230)),  # rear window
    ((0.33, 0.28), (120, 190, 230)),  # door window
    ((0.43, 0.28), (120, 190, 230)),  # quarter light
    ((0.58, 0.22), (120, 190, 230)),  # windscreen
)

#: What the committed pictures show (written by looking at them; update it when the settings change).
OBSERVATIONS = """\
What the pictures show:

- **plain transfer** paints the artwork's texture straight across page and drawing: the paper is covered with
  fine multicoloured speckle and short strokes, the densest parts of the drawing become dark masses in the
  artwork's darkest colour (the eagle's body a blue block, the street's figures blue smears), and the lines
  that survive (re-drawn by the content detail each stage puts back) are grey, doubled or broken by strokes;
  the drawing is readable but noisy. The speckle is why its colourfulness is the highest in the table: the
  measure is the spread of colour over the whole image, and per-pixel colour noise counts as colour.
- **plain + lines**: the overlay makes every drawn line black and whole again (line recall 0.98 on average),
  so the drawing reads better, but the strokes and speckle stay, and many of them are dark and thin enough to
  count as lines the sketch does not have: line precision stays where plain's is, and that, not lost lines,
  is the gap that remains to colorize at equal treatment. Its colour is still texture, not regions.
- **colorize** keeps every line where and as dark as it was drawn, and the regions the lines enclose are
  coloured with the artwork's own colours, with its brush work over them but weaker. Small regions get one
  clear colour each: the gecko's spots in Kandinsky's reds, yellows and blues, the eagle's feathers in blues
  and yellow, the street's sweeper (red hair, blue trousers), shop window and kerb stones. Large regions show
  the artwork's colours in its own layout: van Gogh's night sky, stars and moon behind the eagle, Matisse's
  pinks, blues and greens on the street's wall and pavement.
- Where it is weaker: the tortoise gets Hokusai's pale beige and blue (the print itself is barely colourful),
  so it is the least colourful result; the car's panels are large regions, so the Scream's orange and
  blue-green bands run across the car instead of one colour per panel. Hints fix that:
- With **hints** (ten dots) the car's body is orange-red and its windows light blue, each dot colouring the
  whole region it falls in; unmarked regions keep the artwork's colours. With **masks** (left half / right
  half) the eagle gets Starry Night on the left and The Scream on the right, in colour and in texture.
"""


def _run(method: str, sketch: Path, style: Path, args: argparse.Namespace, **extra) -> tuple[Image.Image, float]:
    common = {"size": args.size, "start_size": args.size // 2, "iterations": args.iterations, "seed": 0}
    started = time.process_time()
    function = stylize if method == "plain" else colorize
    result = function(sketch, [style] if not isinstance(style, list) else style, **common, **extra)
    return result.convert("RGB"), time.process_time() - started


def _with_lines(painted: Image.Image, sketch: Path) -> Image.Image:
    """``painted`` with colorize()'s last step (lines back) applied, at colorize()'s own defaults.

    colorize() multiplies the line art onto its result, so its line F1 is partly the overlay's; the plain run
    with the same overlay (the same two functions, the same settings) is the comparison at equal treatment,
    which leaves only what the colour fill and the fill-as-content run add.
    """
    defaults = {name: parameter.default for name, parameter in signature(colorize).parameters.items()}
    drawing = load_image(sketch, role="sketch").rgb  # as colorize() loads it
    lines = prepare_line_art(drawing, max(painted.size), despeckle=defaults["despeckle"],
                             line_width=defaults["line_width"])  # fmt: skip
    return composite_lines(painted, lines, min_lightness=defaults["min_lightness"], opacity=defaults["line_opacity"],
                           saturation=defaults["saturation"])  # fmt: skip


def _cached(key: str, args: argparse.Namespace, make) -> tuple[Image.Image, float]:
    image_path, info_path = args.cache / f"{key}.png", args.cache / f"{key}.json"
    if image_path.exists() and info_path.exists():
        return Image.open(image_path).convert("RGB"), json.loads(info_path.read_text())["cpu_seconds"]
    image, seconds = make()
    image.save(image_path)
    info_path.write_text(json.dumps({"cpu_seconds": seconds}))
    return image, seconds


def _sheet(columns: list[tuple[str, Image.Image]], height: int) -> Image.Image:
    """Pictures side by side at one height, each with its title above."""
    title = 18
    tiles = [(label, image.resize((round(image.width * height / image.height), height), Image.Resampling.LANCZOS))
             for label, image in columns]  # fmt: skip
    width = sum(tile.width for _, tile in tiles) + 6 * (len(tiles) - 1)
    sheet = Image.new("RGB", (width, height + title), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for label, tile in tiles:
        sheet.paste(tile, (x, title))
        draw.rectangle((x, title, x + tile.width - 1, title + height - 1), outline=(190, 190, 190))
        draw.text((x + 4, 3), label, fill=(0, 0, 0))
        x += tile.width + 6
    return sheet


def _hint_image(size: tuple[int, int]) -> Image.Image:
    hint = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(hint)
    radius = max(2, round(0.012 * max(size)))
    for (fx, fy), color in CAR_HINTS:
        x, y = fx * size[0], fy * size[1]
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)
    return hint


def _half_masks(size: tuple[int, int]) -> list[Image.Image]:
    left = Image.new("L", size, 0)
    left.paste(255, (0, 0, size[0] // 2, size[1]))
    right = Image.eval(left, lambda value: 255 - value)
    return [left, right]


def _measure(result: Image.Image, sketch: Image.Image) -> dict[str, float]:
    lines = line_f1(result, sketch)
    return {**lines, "colorfulness": colorfulness(result), "paper_saturation": paper_saturation(result, sketch)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/painterly-sketch-bench"))
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    figures = args.out / "sketch"
    figures.mkdir(parents=True, exist_ok=True)

    rows = []
    sheets = []
    for name, style_file in PAIRS:
        sketch_path, style_path = DATA / "sketch" / f"{name}.png", DATA / "style" / style_file
        sketch = Image.open(sketch_path).convert("RGB")
        results = {}
        for method in ("plain", "colorize"):
            image, seconds = _cached(f"{name}_{method}_{args.size}_{args.iterations}", args,
                                     lambda m=method, k=sketch_path, s=style_path: _run(m, k, s, args))  # fmt: skip
            results[method] = image
            rows.append({"sketch": name, "style": style_path.stem, "method": method, "cpu_seconds": seconds,
                         **_measure(image, sketch)})  # fmt: skip
            print(json.dumps(rows[-1]))
            if method == "plain":  # equal treatment: the plain run with colorize()'s line overlay (CPU s: the run's)
                results[PLAIN_LINES] = _with_lines(image, sketch_path)
                rows.append({**rows[-1], "method": PLAIN_LINES, **_measure(results[PLAIN_LINES], sketch)})
                print(json.dumps(rows[-1]))
        style = resize_long_side(Image.open(style_path).convert("RGB"), args.size)
        sheet = _sheet([("sketch", resize_long_side(sketch, args.size)), ("style", style),
                        ("plain stylize()", results["plain"]), ("plain + lines", results[PLAIN_LINES]),
                        ("colorize()", results["colorize"])], 200)  # fmt: skip
        sheet.save(figures / f"{name}.jpg", quality=88)
        sheets.append(name)

    car = DATA / "sketch" / "old_soviet_car.png"
    scream = DATA / "style" / "the_scream.jpg"
    hint = _hint_image(Image.open(car).size)
    hinted, _ = _cached(f"old_soviet_car_hints_{args.size}_{args.iterations}", args,
                        lambda: _run("colorize", car, scream, args, hints=hint))  # fmt: skip
    eagle = DATA / "sketch" / "bald_eagle.png"
    pair = [DATA / "style" / "starry_night.jpg", DATA / "style" / "the_scream.jpg"]
    masks = _half_masks(Image.open(eagle).size)
    masked, _ = _cached(f"bald_eagle_masks_{args.size}_{args.iterations}", args,
                        lambda: _run("colorize", eagle, pair, args, masks=masks))  # fmt: skip
    _sheet([("hint dots", resize_long_side(hint, args.size)), ("colorize(hints=...)", hinted),
            ("masks: left / right", resize_long_side(masks[0], args.size)),
            ("colorize(masks=...)", masked)], 180).save(figures / "hints.jpg", quality=88)  # fmt: skip
    _write_doc(rows, sheets, args)


def _write_doc(rows: list[dict], sheets: list[str], args: argparse.Namespace) -> None:
    table = ["| sketch | style | method | line precision | line recall | line F1 | ink luminance | colourfulness "
             "| paper saturation | CPU s |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for row in rows:
        table.append(
            f"| {row['sketch']} | {row['style']} | {row['method']} | {row['precision']:.3f} | {row['recall']:.3f} "
            f"| **{row['f1']:.3f}** | {row['ink_luminance']:.3f} | **{row['colorfulness']:.1f}** "
            f"| **{row['paper_saturation']:.3f}** | {row['cpu_seconds']:.0f} |"
        )
    means = []
    mean_f1 = {}
    for method in METHODS:
        mine = [row for row in rows if row["method"] == method]
        keys = ("precision", "recall", "f1", "ink_luminance", "colorfulness", "paper_saturation", "cpu_seconds")
        avg = {key: sum(row[key] for row in mine) / len(mine) for key in keys}
        mean_f1[method] = avg["f1"]
        means.append(
            f"| mean | | {method} | {avg['precision']:.3f} | {avg['recall']:.3f} | **{avg['f1']:.3f}** "
            f"| {avg['ink_luminance']:.3f} | **{avg['colorfulness']:.1f}** | **{avg['paper_saturation']:.3f}** "
            f"| {avg['cpu_seconds']:.0f} |"
        )
    plain, lined, ours = (mean_f1[method] for method in METHODS)
    summary = (
        f"Mean line F1: **as is**, plain {plain:.3f} against colorize {ours:.3f} (gap {ours - plain:.3f});\n"
        f"**at equal treatment**, plain + lines {lined:.3f} against colorize {ours:.3f} (gap {ours - lined:.3f})."
    )
    text = TEMPLATE.format(
        size=args.size, start=args.size // 2, iterations=args.iterations, threads=args.threads,
        revision=CURRENT_REVISION, cpu=cpu_description(), summary=summary,
        table="\n".join([*table, *means]), sheets="\n\n".join(f"![{n}](sketch/{n}.jpg)" for n in sheets),
        observations=OBSERVATIONS,
    )  # fmt: skip
    (args.out / "sketch.md").write_text(text)


TEMPLATE = """\
# Sketch colouring

`painterly colorize SKETCH STYLE [STYLE ...] -o OUT`, or `painterly.colorize(sketch, styles, ...)`, colours a
line drawing with the colours and brush work of one or more artworks and keeps the lines as drawn.

## Why a plain transfer does badly

`stylize(sketch, style)` treats the drawing like a photo: the optimisation starts from the drawing (a white
page) and the content loss at relu4_2 asks for the white page's features wherever there is no line. The
style loss has no idea where the lines are, so it paints the artwork's texture across them and across the
paper alike. Each coarse-to-fine stage starts with the content's finer detail put back (theory.md §8.3), which
here re-draws the lines, so most of them survive, but greyed, broken by strokes, and amid strokes and fine
multicoloured speckle that the drawing does not have; the paper gets no colours of its own, only texture.

## What colorize does (`painterly/sketch/colorize.py`)

1. **Line art** (`prepare_line_art`): grayscale at the output size; a light-on-dark drawing is inverted;
   levels map the 0.5th percentile to black and 92 % of the way to the 90th percentile to white, so the
   paper is exactly white and paper noise vanishes; optional speck removal (`despeckle`, dark blobs under N
   pixels) and thicker lines (`line_width`).
2. **Colour fill** (`color_fill`): the page is cut into the regions the lines enclose (connected
   components of the pure-white paper, so even a faint grey line separates two regions; the lines are
   first thickened by a pixel to close small gaps). Each artwork is
   cropped to the page's aspect and laid over it. A small region (under 4 % of the page) is filled flat
   with the artwork's main colour (k-means palette of 8) nearest to the artwork's mean over the region;
   a large region (background, sky) gets the artwork blurred by 3 % of the page, i.e. its colours in its
   own layout. Colours are made 1.3 times as chromatic (means are greyer than the colours they average).
   Optional **hints**, a colour image, override the colour of every region they mark; optional **masks**,
   one per artwork, say which artwork colours (and later paints) which part.
3. **Texture**: `stylize()` runs with the fill, lines multiplied in, as its *content* and starting
   image (`init="content"`), at a lower style weight (10 instead of 50) so the fill stays readable, and
   with the masks as `style_masks` (spatial control). The content loss now keeps the colours and lines
   instead of a white page.
4. **Lines back** (`composite_lines`): chroma times 1.2 (`saturation`), brightness (HSV value) mapped into
   [0.3, 1] by scaling each pixel, which keeps hue and saturation (`min_lightness`; adding white would wash
   the colours out), and finally a multiply with the line art: the lines come back exactly as dark and
   crisp as drawn, the paint stays lighter than the ink.

Every `stylize()` option that matters here is an explicit keyword of `colorize()` (size, start_size,
iterations, style_weight, content_weight, tv_weight, style_blend, style_scale, seed, device, weights,
max_pixels, check_memory, progress, on_step, should_stop); any other `stylize()` keyword can be passed through
`**stylize_options` (not on the command line). Ctrl-C in `painterly colorize` writes `OUT_partial.EXT`, lines
put back; a colorize run has no checkpoint to resume from (its content is the computed fill, not a file).

## Measured

Generated by `bench/sketch.py` (`python bench/sketch.py --size {size} --iterations {iterations} --threads {threads}`,
which writes docs/sketch/ and this page): all five drawings in shared/data/sketch, each with one artwork,
{size} px long side, coarse-to-fine from {start} px, {iterations} L-BFGS steps, seed 0, real VGG-19, run revision
{revision}, mixed precision left to its automatic choice, with {threads} torch thread(s) on
{cpu};
plain = `stylize()` with all its other defaults, colorize = `colorize()` with all its other defaults.

**Two comparisons.** colorize() ends by multiplying the line art onto its result (step 4), which by itself
puts every drawn line back, dark; plain does not, so *plain against colorize* (as is) builds part of the
line-F1 gap in. **plain + lines** is the same plain result with colorize()'s own last step applied
afterwards (`prepare_line_art` and `composite_lines` at colorize()'s defaults: chroma times 1.2, brightness
into [0.3, 1], lines multiplied in at full opacity; no new run): *plain + lines against colorize* is the
comparison at equal treatment, and what gap remains is what the colour fill and the fill-as-content run add.

- **line precision / recall / F1** (`painterly.sketch.colorize.line_f1`): line pixels are those darker by 0.25 (in
  luminance) than the lightest pixel within 3 pixels (a morphological black-hat: thin dark strokes on any
  ground, not dark flat colour); the same detector runs on the sketch (resized to the result). Precision =
  share of the result's line pixels within 1 pixel of a sketch line (low: strokes the sketch does not
  have), recall = share of the sketch's line pixels within 1 pixel of a result line (low: lines lost or
  smeared). *Ink luminance*: the result's mean luminance where the sketch is ink (0 = black lines).
- **colourfulness**: Hasler & Suesstrunk (2003) on 0..255 RGB, whole image (about 33 "moderately", 59 "quite",
  82 "highly" colourful). **paper saturation**: mean HSV saturation where the sketch is white paper (at least
  2 pixels away from any line).
- *CPU s*: process CPU time of the call (plain + lines: the plain run's; the overlay takes milliseconds), on a
  2-core machine shared with other jobs, so a rough figure only.

{table}

{summary}

One sheet per drawing: sketch, artwork, plain transfer, plain + lines, colorize.

{sheets}

Hints and masks (`old_soviet_car` with The Scream and ten colour dots; `bald_eagle` with Starry Night on the
left half and The Scream on the right):

![hints and masks](sketch/hints.jpg)

{observations}
## Pictures and licences

The drawings are Tux Paint colouring-book starters (Debian package tuxpaint-data, tuxpaint.org):
`bald_eagle`, `desert_tortoise`, `gecko` and `old_soviet_car` are public domain (Open Clip Art; the car is
"zaz 965" by momo). `street` is by Ingrid Illa Terrier, licensed GPL-2+ as part of Tux Paint; the small copies
of it and of its colourings in `docs/sketch/street.jpg` are distributed under the same licence, with this
attribution. The artworks are public domain: van Gogh, *The Starry Night*; Hokusai, *The Great Wave off
Kanagawa*; Kandinsky, *Composition VII*; Munch, *The Scream*; Matisse, *Woman with a Hat*.
"""


if __name__ == "__main__":
    main()
