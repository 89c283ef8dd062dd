"""Sketch colouring: a line drawing as content, artworks as style, a coloured picture that keeps the lines.

A plain transfer of a white page with black lines keeps the white page (the content loss asks for it
and the optimisation starts from it) and paints style texture over the lines, so the colours come out
washed out and the lines smeared.  :func:`colorize` instead works in four steps (docs/sketch.md):

1. **Line art** (:func:`prepare_line_art`): grayscale, inverted if it is light-on-dark, levels so the
   paper is exactly white and the ink black, optional speck removal and line thickening.
2. **Colour fill** (:func:`color_fill`): the regions the lines enclose (:func:`label_regions`) are filled
   like a colouring book, with colours taken from the style artworks: each small region gets the
   artwork's main colour nearest to the artwork's mean over the same area of the frame, large regions
   the blurred artwork itself; a colour-hint image overrides the colour of the regions it touches, and region masks say
   which artwork colours which part.  The fill, with the lines multiplied in, is the *content* of the
   style transfer and its starting image, so the content loss keeps colours and lines instead of asking
   for a white page.
3. **Texture**: :func:`painterly.stylize` paints the artworks' texture over the fill (with the masks
   as spatial control, ``style_masks``).
4. **Lines back** (:func:`composite_lines`): the painting's chroma is raised a little (``saturation``),
   its brightness kept above the ink's (``min_lightness``, hue and saturation kept), and it is
   multiplied by the line art, so the lines come out as crisp and dark as drawn.

:func:`line_f1`, :func:`colorfulness` and :func:`paper_saturation` measure the result (bench/sketch.py).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter, ImageOps

from painterly.config import CONFIG_FIELDS, ImageInput, RunConfig, args_docstring
from painterly.errors import ImageError, OptionError
from painterly.events import Event, Failed, Finished, Sink, Stopped
from painterly.io.images import load_image, normalize_image, resize_long_side
from painterly.nets.weights import WeightsObject
from painterly.provenance import PROVENANCE_KEY, input_hashes_of, make_provenance, weights_sha256
from painterly.records import StepRecord
from painterly.run import Interrupted
from painterly.session import Session

__all__ = [
    "COLORIZE_DEFAULTS",
    "COLORIZE_OPTIONS",
    "COLORIZE_SETS",
    "FILL_MODES",
    "ColorizeOption",
    "FillMode",
    "check_colorize_options",
    "color_fill",
    "colorfulness",
    "colorize",
    "colorize_config",
    "colorize_keywords",
    "composite_lines",
    "label_regions",
    "line_f1",
    "line_map",
    "palette",
    "paper_saturation",
    "prepare_line_art",
]

log = logging.getLogger("painterly")


#: ``colorize(fill=...)``: how the page is coloured before the texture is painted (see :func:`color_fill`).
FillMode = Literal["regions", "blur", "white"]
FILL_MODES: tuple[str, ...] = get_args(FillMode)

#: RunConfig fields that colorize() sets itself and so refuses in ``**options`` (and the CLI does not offer).
COLORIZE_SETS = frozenset({"init", "style_masks", "checkpoint", "checkpoint_every"})
#: Where colorize's defaults differ from stylize's: the fill is already coloured, so less style and fewer steps.
COLORIZE_DEFAULTS: dict[str, Any] = {"iterations": 200, "style_weight": 10.0}


@dataclass(frozen=True)
class ColorizeOption:
    """One of colorize()'s own settings (not a RunConfig field): its type, default, bounds and help.

    :data:`COLORIZE_OPTIONS` is where they are written once: colorize's docstring shows the help (and so the
    command line's ``--help``), a web form draws its fields from it, and :meth:`check` is the check colorize()
    itself makes, so every front end refuses a bad value in the same sentence.  colorize's signature repeats the
    defaults and types; tests/test_sketch.py checks that the two agree.
    """

    name: str
    kind: Literal["choice", "float", "int"]
    default: str | float | int
    help: str
    low: float | None = None  #: the smallest value allowed (inclusive)
    high: float | None = None  #: the largest value allowed (inclusive; None: no limit)
    choices: tuple[str, ...] = ()

    @property
    def spoken(self) -> str:
        """The name as an error sentence says it (``line width``)."""
        return self.name.replace("_", " ")

    def check(self, value: object) -> str | float | int:
        """``value`` if it is allowed, else an :class:`OptionError` in one sentence (the API's and the CLI's)."""
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise OptionError(f"unknown {self.spoken} {value!r}; choose one of {', '.join(self.choices)}")
            return value
        if self.kind == "int":  # numbers.Integral: numpy's integers too; never a bool
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (self.low or 0):
                raise OptionError(f"{self.spoken} must be 0 (off) or a positive number of pixels, not {value}")
            return int(value)
        number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
        low, high = self.low if self.low is not None else -math.inf, self.high if self.high is not None else math.inf
        if not (math.isfinite(number) and low <= number <= high):
            raise OptionError(f"{self.spoken} must be between {low:g} and {high:g}, not {value}")
        return float(number)


#: colorize()'s own settings, in its signature's order (see :class:`ColorizeOption`); ``hints`` and ``masks`` name
#: files and are not among them.
COLORIZE_OPTIONS: tuple[ColorizeOption, ...] = (
    ColorizeOption(
        "fill", "choice", "regions", choices=FILL_MODES,
        help='the colours the texture is painted over: "regions" (each region the lines enclose is filled with the '
        "artwork's colours at that place, like a colouring book; large regions keep the artwork's smooth "
        'variation), "blur" (the blurred artwork, ignoring the lines), or "white" (the bare page, as a plain '
        "transfer; colour then comes from the style loss only).",
    ),
    ColorizeOption(
        "saturation", "float", 1.2, low=0.0, high=10.0,
        help="chroma factor applied to the finished painting before the lines go back (1 = as painted).",
    ),
    ColorizeOption(
        "min_lightness", "float", 0.3, low=0.0, high=0.95,
        help="the painting's brightness (HSV value) is mapped into [min_lightness, 1], hue and saturation kept, "
        "before the lines are put back, so no paint is as dark as the ink (0 = off).",
    ),
    ColorizeOption(
        "line_opacity", "float", 1.0, low=0.0, high=1.0,
        help="how dark the lines are put back over the painting (1 = as drawn, 0 = not at all).",
    ),
    ColorizeOption(
        "line_width", "int", 0, low=0,
        help="thicken every line by this many pixels on each side, at the output size (0 = as drawn).",
    ),
    ColorizeOption(
        "despeckle", "int", 0, low=0,
        help="remove dark specks (dust, scanner noise) smaller than this many pixels at the output size (0 = off).",
    ),
)  # fmt: skip


def check_colorize_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """colorize()'s own settings checked (each in :class:`ColorizeOption`'s sentence) and completed with their
    defaults, in :data:`COLORIZE_OPTIONS`' order: what a job that colours a sketch stores."""
    known = {option.name: option for option in COLORIZE_OPTIONS}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise OptionError(f"unknown colorize option(s) {', '.join(unknown)}; they are {', '.join(known)}")
    return {name: option.check(values.get(name, option.default)) for name, option in known.items()}


def colorize_keywords(config: RunConfig) -> dict[str, Any]:
    """A job's RunConfig as colorize() keywords: every field but those colorize sets itself (:data:`COLORIZE_SETS`),
    which must be at their defaults (a batch or web job's config; the fields colorize sets are refused, not dropped,
    so a job never silently runs without a setting it names)."""
    base = RunConfig()
    for name in sorted(COLORIZE_SETS):
        if getattr(config, name) != getattr(base, name):
            raise OptionError(f"colorize() sets the stylize option {name!r} itself; leave it out")
    return {name: getattr(config, name) for name in CONFIG_FIELDS if name not in COLORIZE_SETS}


def _options_docstring(indent: int) -> str:
    """The help of :data:`COLORIZE_OPTIONS` as lines of a Google-style ``Args:`` block (colorize's docstring)."""
    return args_docstring(((option.name, option.help) for option in COLORIZE_OPTIONS), indent)


# --- line art -----------------------------------------------------------------------------------------


def _as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


def _max_filter(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary or grey dilation (maximum over a (2r+1)^2 square)."""
    if radius <= 0:
        return mask
    tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    return F.max_pool2d(tensor, 2 * radius + 1, stride=1, padding=radius)[0, 0].numpy()


def _min_filter(values: np.ndarray, radius: int) -> np.ndarray:
    return -_max_filter(-values, radius)


def label_regions(mask: np.ndarray, *, diagonal: bool = False) -> tuple[np.ndarray, int]:
    """Connected components of a boolean ``mask``: labels ``0..n-1`` (``-1`` outside the mask) and ``n``.

    Four-connected unless ``diagonal`` (eight-connected).  Vectorised min-label propagation with
    pointer jumping: every pixel repeatedly takes the smallest label among its neighbours and then
    the label of that label's pixel, which converges in a few dozen passes even for long lines.
    """
    height, width = mask.shape
    big = height * width
    index = np.arange(big, dtype=np.int64).reshape(height, width)
    labels = np.where(mask, index, big)
    shifts = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if diagonal else [])
    while True:
        before = labels
        labels = labels.copy()
        for dy, dx in shifts:
            for sy, sx in ((dy, dx), (-dy, -dx)):
                target = labels[max(sy, 0) : height + min(sy, 0), max(sx, 0) : width + min(sx, 0)]
                source = before[max(-sy, 0) : height + min(-sy, 0), max(-sx, 0) : width + min(-sx, 0)]
                np.minimum(target, source, out=target)
        labels[~mask] = big
        inside = labels[mask]
        labels[mask] = labels.reshape(-1)[inside]  # pointer jumping: a label's own label is no larger
        labels[mask] = labels.reshape(-1)[labels[mask]]
        if np.array_equal(labels, before):
            break
    result = np.full((height, width), -1, dtype=np.int64)
    if not mask.any():
        return result, 0
    roots, compact = np.unique(labels[mask], return_inverse=True)
    result[mask] = compact
    return result, len(roots)


def prepare_line_art(
    sketch: Image.Image,
    size: int | None = None,
    *,
    despeckle: int = 0,
    line_width: int = 0,
    levels: tuple[float, float] = (0.5, 90.0),
) -> Image.Image:
    """The sketch as clean line art: a grayscale ``L`` image, paper exactly white (255), ink dark.

    ``size``: long side in pixels (default: unchanged).  Light-on-dark drawings (median darker than
    mid-grey) are inverted.  ``levels`` are the percentiles mapped to black and white (the 90th is still
    paper in any line drawing); greys within 8 % of the white point become white too, which removes
    scanner and JPEG noise from the paper.  ``despeckle`` removes dark specks (8-connected blobs) of fewer
    than that many pixels, ``line_width`` thickens every line by that many pixels on each side.
    """
    gray = sketch.convert("L")
    if size is not None:
        gray = resize_long_side(gray, size)
    values = _as_array(gray)
    if float(np.median(values)) < 0.5:
        log.warning("the sketch is light lines on a dark ground; it is inverted")
        values = 1.0 - values
    black, white = (float(v) for v in np.percentile(values, levels))
    if white - black < 0.1:
        raise ImageError("the sketch has no visible lines (it is nearly one flat colour)")
    values = np.clip((values - black) / (0.92 * (white - black)), 0.0, 1.0)
    if despeckle > 0:
        ink = values < 0.5
        labels, count = label_regions(ink, diagonal=True)
        if count:
            areas = np.bincount(labels[ink], minlength=count)
            specks = np.zeros_like(ink)
            specks[ink] = areas[labels[ink]] < despeckle
            kept = ink & ~specks
            clear = (_max_filter(specks, 1) > 0) & ~(_max_filter(kept, 1) > 0)
            values = np.where(clear, 1.0, values)
    if line_width > 0:
        values = _min_filter(values, line_width)
    return Image.fromarray((values * 255 + 0.5).astype(np.uint8), "L")


# --- colour fill --------------------------------------------------------------------------------------


def _rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    from painterly.control.color import rgb_to_yiq

    tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    return rgb_to_yiq(tensor)[0].numpy().transpose(1, 2, 0)


def _yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    from painterly.control.color import yiq_to_rgb

    tensor = torch.from_numpy(np.ascontiguousarray(yiq.transpose(2, 0, 1), dtype=np.float32))[None]
    return yiq_to_rgb(tensor)[0].clamp(0, 1).numpy().transpose(1, 2, 0)


def _boost_chroma(rgb: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1.0:
        return rgb
    yiq = _rgb_to_yiq(rgb)
    yiq[..., 1:] *= factor
    return _yiq_to_rgb(yiq)


def _style_field(style: Image.Image, width: int, height: int, blur: float) -> np.ndarray:
    """The artwork cropped to the page's aspect, resized to it and blurred: its colours by position."""
    fitted = ImageOps.fit(style.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
    radius = blur * max(width, height)
    if radius > 0:
        fitted = fitted.filter(ImageFilter.GaussianBlur(radius))
    return _as_array(fitted)


def _fill_gaps(colors: np.ndarray, known: np.ndarray, fallback: np.ndarray, rounds: int = 64) -> np.ndarray:
    """Spread ``colors`` from ``known`` pixels into the others (the lines), nearest first."""
    image = torch.from_numpy(np.ascontiguousarray((colors * known[..., None]).transpose(2, 0, 1)))[None]
    weight = torch.from_numpy(known.astype(np.float32))[None, None]
    for _ in range(rounds):
        if bool(weight.min() > 0):
            break
        total = F.avg_pool2d(image, 3, 1, 1, count_include_pad=False)
        count = F.avg_pool2d(weight, 3, 1, 1, count_include_pad=False)
        grow = (weight == 0) & (count > 0)
        image = torch.where(grow, total / count.clamp_min(1e-8), image)
        weight = torch.where(grow, torch.ones_like(weight), weight)
    spread = image[0].numpy().transpose(1, 2, 0)
    return np.where(weight[0, 0].numpy()[..., None] > 0, spread, fallback)


def palette(image: Image.Image, colors: int = 8, *, seed: int = 0, sample: int = 96) -> np.ndarray:
    """The ``colors`` main colours of ``image`` (k-means in RGB on a ``sample``-pixel thumbnail), ``k x 3`` in [0, 1].

    Ordered by how much of the image each covers, most first.
    """
    thumb = _as_array(resize_long_side(image.convert("RGB"), sample)).reshape(-1, 3).astype(np.float64)
    rng = np.random.default_rng(seed)
    k = min(colors, len(thumb))
    centres = [thumb[rng.integers(len(thumb))]]
    for _ in range(1, k):  # k-means++ seeding
        distance = np.min([((thumb - c) ** 2).sum(1) for c in centres], axis=0)
        total = distance.sum()
        pick = rng.choice(len(thumb), p=distance / total) if total > 0 else rng.integers(len(thumb))
        centres.append(thumb[pick])
    centre = np.array(centres)
    for _ in range(25):
        nearest = ((thumb[:, None] - centre[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            if (nearest == j).any():
                centre[j] = thumb[nearest == j].mean(0)
    counts = np.bincount(((thumb[:, None] - centre[None]) ** 2).sum(-1).argmin(1), minlength=k)
    return centre[np.argsort(-counts)].astype(np.float32)


def _snap(colors: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """Each row of ``colors`` replaced by the nearest of ``choices`` (in YIQ, luminance counted half)."""
    scale = np.array([0.5, 1.0, 1.0], dtype=np.float32)
    a, b = _rgb_to_yiq(colors[None].astype(np.float32))[0] * scale, _rgb_to_yiq(choices[None])[0] * scale
    return choices[((a[:, None] - b[None]) ** 2).sum(-1).argmin(1)]


def _region_sums(labels: np.ndarray, where: np.ndarray, rgb: np.ndarray, count: int) -> np.ndarray:
    """``count x 3``: the sum of ``rgb`` over the ``where`` pixels of each region."""
    return np.stack([np.bincount(labels[where], weights=rgb[..., c][where], minlength=count) for c in range(3)], 1)


def color_fill(
    lines: Image.Image,
    styles: Sequence[Image.Image],
    *,
    mode: FillMode = "regions",
    masks: Sequence[Image.Image] | None = None,
    hints: Image.Image | None = None,
    blend: Sequence[float] | None = None,
    saturation: float = 1.3,
    colors: int = 8,
    blur: float = 0.03,
    large_region: float = 0.04,
    gap: int = 1,
) -> np.ndarray:
    """Colour the page under the line art ``lines`` (an ``L`` image); returns ``H x W x 3`` floats in [0, 1].

    The colour source is each artwork cropped to the page's aspect and resized to it (its colours by
    position), averaged over the artworks with ``blend``, or, with ``masks`` (one grayscale image per
    artwork, white = there), each artwork's colours where its mask is white.  ``mode``:

    * ``"regions"``: a colouring book.  The page is cut into the regions the lines enclose (gaps of up to
      ``2 * gap`` pixels in the lines are closed first).  A region smaller than ``large_region`` of the
      page gets one flat colour: the mean of the source over it, replaced by the nearest of the artwork's
      ``colors`` main colours (:func:`palette`; 0 = keep the mean), so that it is a colour of the
      painting, not a muddy average.  Larger regions (the background, a sky) get the source blurred by
      ``blur`` times the page's long side: the painting's colours with their smooth variation.
    * ``"blur"``: the blurred source everywhere.
    * ``"white"``: the white page (what a plain transfer starts from; for comparison).

    The chroma of the artwork colours is then multiplied by ``saturation``.  ``hints`` (a colour image,
    stretched to the page) override: every region in which at least 0.5 % of the pixels (and at least 3)
    are clearly coloured takes the mean colour of those pixels; grey and black hint pixels (e.g. a copy of
    the lines) are ignored.
    """
    if mode not in FILL_MODES:
        raise OptionError(f"unknown fill {mode!r}; choose one of {', '.join(FILL_MODES)}")
    width, height = lines.size
    ink = _as_array(lines)
    weights = list(blend) if blend is not None else [1.0] * len(styles)
    maps = (
        None
        if masks is None
        else [_as_array(mask.convert("L").resize((width, height), Image.Resampling.LANCZOS)) for mask in masks]
    )

    def mix(fields: list[np.ndarray]) -> np.ndarray:
        plain = sum(w * f for w, f in zip(weights, fields, strict=True)) / sum(weights)
        if maps is None:
            return np.asarray(plain, dtype=np.float32)
        total = np.asarray(sum(maps))
        mixed = sum(m[..., None] * f for m, f in zip(maps, fields, strict=True)) / np.maximum(total, 1e-6)[..., None]
        return np.where((total > 1e-3)[..., None], mixed, plain).astype(np.float32)

    sharp = mix([_style_field(style, width, height, 0.0) for style in styles])
    smooth = mix([_style_field(style, width, height, blur) for style in styles])
    # Paper is what prepare_line_art made pure white; even a faint grey line (thin lines at a small size)
    # separates regions, and thickening the lines by ``gap`` closes small gaps between them.
    paper = _min_filter(ink, gap) > 0.9
    labels, count = label_regions(paper)
    inside = labels >= 0
    areas = np.bincount(labels[inside], minlength=count).astype(np.float64)
    if mode == "white":
        result = np.ones((height, width, 3), dtype=np.float32)
    elif mode == "blur":
        result = _boost_chroma(smooth, saturation)
    else:
        means = _region_sums(labels, inside, sharp, count) / np.maximum(areas, 1)[:, None]
        if colors > 0:
            palettes = [palette(style, colors) for style in styles]
            if maps is not None:  # a masked region takes the colours of the artwork that paints it
                owner = np.stack([np.bincount(labels[inside], weights=m[inside], minlength=count) for m in maps], 1)
                snapped = np.stack([_snap(means.astype(np.float32), choices) for choices in palettes])
                means = snapped[owner.argmax(1), np.arange(count)]
            else:
                means = _snap(means.astype(np.float32), np.concatenate(palettes))
        flat = np.zeros_like(sharp)
        flat[inside] = means[labels[inside]]
        small = np.zeros((height, width), dtype=bool)
        small[inside] = areas[labels[inside]] < large_region * height * width
        result = _boost_chroma(np.where(small[..., None], flat, smooth).astype(np.float32), saturation)
    if hints is not None:
        hint = _as_array(hints.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
        chroma = np.hypot(*_rgb_to_yiq(hint)[..., 1:].transpose(2, 0, 1))
        marked = inside & (chroma > 0.08)
        counts = np.bincount(labels[marked], minlength=count).astype(np.float64)
        sums = _region_sums(labels, marked, hint, count)
        hinted = (counts >= np.maximum(3, 0.005 * areas)) & (counts > 0)
        if hinted.any():
            region_hint = sums / np.maximum(counts, 1)[:, None]
            use = np.zeros((height, width), dtype=bool)
            use[inside] = hinted[labels[inside]]
            paint = np.zeros_like(result)
            paint[inside] = region_hint[labels[inside]]
            result = np.where(use[..., None], paint, result)
    return _fill_gaps(result, inside, result).astype(np.float32)


def composite_lines(
    painted: Image.Image,
    lines: Image.Image,
    *,
    min_lightness: float = 0.3,
    opacity: float = 1.0,
    saturation: float = 1.0,
) -> Image.Image:
    """Put the line art back on ``painted``: chroma times ``saturation``, brightness lifted, lines multiplied.

    The painted picture's HSV value V (its largest channel) is mapped linearly from [0, 1] to
    [min_lightness, 1] by scaling each pixel's RGB, which keeps its hue and saturation (adding grey, as a
    luminance lift would, washes colours out), so no painted stroke is as dark as the ink and the lines stay
    readable on dark paint; then every pixel is multiplied by ``1 - opacity * (1 - line)``, which leaves it
    unchanged on white paper and dark under the lines.
    """
    rgb = _boost_chroma(_as_array(painted.convert("RGB")), saturation)
    line = _as_array(lines.convert("L").resize(painted.size, Image.Resampling.LANCZOS))
    if min_lightness > 0:
        value = rgb.max(-1, keepdims=True)
        lifted = min_lightness + (1 - min_lightness) * value
        rgb = np.where(value > 1e-3, rgb * lifted / np.maximum(value, 1e-3), lifted)
    rgb = rgb * (1 - opacity * (1 - line))[..., None]
    return Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")


# --- measures -----------------------------------------------------------------------------------------


def _luma(image: Image.Image) -> np.ndarray:
    rgb = _as_array(image.convert("RGB"))
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def line_map(image: Image.Image, *, window: int = 3, contrast: float = 0.25) -> np.ndarray:
    """Pixels that belong to thin dark lines: darker by ``contrast`` than the lightest pixel within ``window``.

    A morphological black-hat (grey closing minus the image) over a (2 * window + 1)^2 square: it finds
    thin dark strokes on any ground, so a dark but flat colour is not a line, a dark stroke of painted
    texture is.
    """
    luma = _luma(image)
    closing = _min_filter(_max_filter(luma, window), window)
    return (closing - luma) > contrast


def line_f1(result: Image.Image, sketch: Image.Image, *, tolerance: int = 1) -> dict[str, float]:
    """Agreement of the result's line pixels with the sketch's (both by :func:`line_map`, at the result's size).

    Precision: the share of the result's line pixels within ``tolerance`` pixels of a sketch line
    (low = texture strokes where the sketch has none); recall: the share of the sketch's line pixels
    within ``tolerance`` of a result line (low = lost or smeared lines); F1 their harmonic mean.
    Also ``darkness``: the result's mean luminance on the sketch's ink (sketch luminance < 0.5).
    """
    sketch = sketch.convert("RGB").resize(result.size, Image.Resampling.LANCZOS)
    found, truth = line_map(result), line_map(sketch)
    near_truth = _max_filter(truth, tolerance) > 0
    near_found = _max_filter(found, tolerance) > 0
    precision = float((found & near_truth).sum() / max(found.sum(), 1))
    recall = float((truth & near_found).sum() / max(truth.sum(), 1))
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    ink = _luma(sketch) < 0.5
    darkness = float(_luma(result)[ink].mean()) if ink.any() else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "ink_luminance": darkness}


def colorfulness(image: Image.Image) -> float:
    """Hasler & Suesstrunk's (2003) colourfulness M on 0..255 RGB: ~0 grey, ~33 moderately, >80 extremely colourful.

    M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2), rg = R - G, yb = (R + G) / 2 - B.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def paper_saturation(result: Image.Image, sketch: Image.Image) -> float:
    """Mean HSV saturation (0..1) of the result where the sketch is white paper (two pixels clear of any line)."""
    sketch_luma = _luma(sketch.convert("RGB").resize(result.size, Image.Resampling.LANCZOS))
    paper = _min_filter(sketch_luma, 2) > 0.9
    saturation = np.asarray(result.convert("RGB").convert("HSV"), dtype=np.float64)[..., 1] / 255.0
    return float(saturation[paper].mean()) if paper.any() else float("nan")


# --- the product ----------------------------------------------------------------------------------------


def _load_rgb(source: ImageInput, role: str, max_pixels: int) -> Image.Image:
    if isinstance(source, Image.Image):
        loaded = normalize_image(source, role=role)
    else:
        loaded = load_image(source, max_pixels=max_pixels, role=role)
    for note in loaded.notes:
        log.warning(note)
    return loaded.rgb  # transparency is already flattened onto white: paper


def colorize_config(options: Mapping[str, Any]) -> RunConfig:
    """colorize's run settings: its own defaults (:data:`COLORIZE_DEFAULTS`), then ``options``, RunConfig fields
    (refusing, in one sentence, those colorize sets itself and names that are no field)."""
    for name in options:
        if name in COLORIZE_SETS:
            raise OptionError(f"colorize() sets the stylize option {name!r} itself; leave it out")
        if name not in CONFIG_FIELDS:
            raise OptionError(f"unknown option {name!r}: it is neither a colorize() nor a stylize() keyword")
    return RunConfig(**{**COLORIZE_DEFAULTS, **options})


def _colorize_provenance(
    sketch: ImageInput, styles: Sequence[ImageInput], own: dict[str, Any], config: RunConfig
) -> str | None:
    """What makes this colorize picture again (painterly.provenance); None when an input is an in-memory object."""
    weights = config.weights
    if isinstance(weights, WeightsObject):
        return None
    files = [sketch, *styles, *([own["hints"]] if own["hints"] is not None else []), *(own["masks"] or [])]
    paths = [os.fspath(f) for f in files if isinstance(f, (str, os.PathLike))]
    if len(paths) < len(files):
        return None
    paths += [os.fspath(weights)] if weights is not None else []
    absolute = {path: str(Path(path).resolve()) for path in paths}
    settings = {name: value for name, value in config.to_dict().items() if name not in COLORIZE_SETS}
    job = {**own, **settings, "sketch": absolute[paths[0]], "styles": [absolute[p] for p in paths[1 : len(styles) + 1]],
           "hints": None if own["hints"] is None else absolute[os.fspath(own["hints"])],
           "masks": None if own["masks"] is None else [absolute[os.fspath(m)] for m in own["masks"]],
           "weights": None if weights is None else absolute[os.fspath(weights)]}  # fmt: skip
    hashes = input_hashes_of(paths)
    return make_provenance(job, hashes, weights_sha256(job["weights"], hashes, config.network), kind="colorize")


def _with_lines(sink: Sink, finish: Callable[[Image.Image], Image.Image]) -> Sink:
    """``sink``, handed colorize's own pictures (lines put back) in the events that end a run."""

    def with_lines(event: Event) -> None:
        if isinstance(event, (Finished, Stopped, Failed)) and event.image is not None:
            event = dataclasses.replace(event, image=finish(event.image.convert("RGB")))
        sink(event)

    return with_lines


def colorize(
    sketch: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    *,
    hints: ImageInput | None = None,
    masks: Sequence[ImageInput] | None = None,
    fill: FillMode = "regions",
    saturation: float = 1.2,
    min_lightness: float = 0.3,
    line_opacity: float = 1.0,
    line_width: int = 0,
    despeckle: int = 0,
    progress: bool = False,
    on_step: Callable[[StepRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    sinks: Sequence[Sink] = (),
    session: Session | None = None,
    **options: Any,
) -> Image.Image:
    """Colour a line drawing with the colours and brush work of one or more artworks; the lines stay crisp.

    The sketch is cleaned into line art, the regions its lines enclose are filled with the artworks'
    colours, :func:`painterly.stylize` paints the artworks' texture over that fill (the fill, lines
    included, is its content and its start), and the line art is multiplied back on top. See
    docs/sketch.md.

    Args:
        sketch: the line drawing (dark lines on light paper; light-on-dark is inverted): a path or a PIL image.
        styles: one or more artworks whose colours and texture are used.
        hints: a colour image (stretched to the sketch) that says which colour goes where: each region the
            sketch's lines enclose that it marks with clear colour takes the mean of that colour; grey, black
            and white hint pixels are ignored, so colour scribbled over a copy of the sketch works.
        masks: one grayscale mask image per style image: white = that artwork colours and paints this part,
            black = not here (spatial control, the style_masks of stylize, also applied to the colour fill).
        {own_options}
        progress: show a progress bar with losses and ETA on stderr.
        on_step: called with a StepRecord after every optimiser step (its image is the painting before the
            lines are put back).
        should_stop: polled between steps; when it returns True the run stops and raises
            painterly.Interrupted carrying the picture so far, lines put back (no checkpoint: the fill is
            not a file, so a stopped colorize run cannot be resumed).
        sinks: receive the run's events; like on_step's, the step records carry the painting before the lines go
            back, while Finished, Stopped and Failed carry the picture with its lines, as returned.
        session: the painterly.Session that runs the style transfer (default: the one stylize() runs on); a
            queue's worker passes its warm one, so its device, loaded network and cached style targets serve.
        **options: any field of painterly.RunConfig (every keyword of painterly.stylize: size, iterations,
            style_weight, style_blend, laplacian_weight, style_layers, optimizer, ...); init, style_masks and
            checkpoints are set by colorize. Defaults as stylize's, except iterations 200 and style_weight 10
            (the fill is already coloured: less style, fewer steps). style_blend also weighs the artworks'
            colours in the fill when no masks are given.

    Returns:
        The coloured drawing, RGB, ``size`` pixels on its long side.
    """
    from painterly.stylize import run_with_config

    style_sources = [styles] if isinstance(styles, (str, os.PathLike, Image.Image)) else list(styles)
    config = colorize_config(options)
    config.check_inputs(len(style_sources))
    own_settings = {"fill": fill, "saturation": saturation, "min_lightness": min_lightness,
                    "line_opacity": line_opacity, "line_width": line_width, "despeckle": despeckle}  # fmt: skip
    check_colorize_options(own_settings)
    if masks is not None and len(masks) != len(style_sources):
        raise OptionError(f"{len(masks)} masks given for {len(style_sources)} style images")
    size, max_pixels = config.size, config.max_pixels

    drawing = _load_rgb(sketch, "sketch", max_pixels)
    artworks = [_load_rgb(s, "style image", max_pixels) for s in style_sources]
    mask_images = None if masks is None else [_load_rgb(m, "mask", max_pixels).convert("L") for m in masks]
    hint_image = None if hints is None else _load_rgb(hints, "hint image", max_pixels)

    lines = prepare_line_art(drawing, size, despeckle=despeckle, line_width=line_width)
    colors = color_fill(lines, artworks, mode=fill, masks=mask_images, hints=hint_image, blend=config.style_blend)
    content = composite_lines(
        Image.fromarray((colors * 255 + 0.5).astype(np.uint8), "RGB"), lines, min_lightness=0.0, opacity=1.0
    )
    page_masks = None if mask_images is None else [m.resize(lines.size, Image.Resampling.LANCZOS) for m in mask_images]

    own = {"hints": hints, "masks": masks, **own_settings}
    record = _colorize_provenance(sketch, style_sources, own, config)

    def finish(painted: Image.Image) -> Image.Image:
        result = composite_lines(painted, lines, min_lightness=min_lightness, opacity=line_opacity,
                                 saturation=saturation)  # fmt: skip
        if record is not None:
            result.info[PROVENANCE_KEY] = record
        return result

    run: Callable[..., Image.Image] = run_with_config if session is None else session.run
    try:
        painted = run(
            content, artworks, config.replace(init="content", style_masks=page_masks), progress=progress,
            on_step=on_step, should_stop=should_stop, sinks=[_with_lines(sink, finish) for sink in sinks],
        )  # fmt: skip
    except Interrupted as stopped:
        raise Interrupted(stopped.step, finish(stopped.image.convert("RGB")), None) from None
    return finish(painted.convert("RGB"))


# The own options' help lives in COLORIZE_OPTIONS; colorize's docstring shows it in place (help(painterly.colorize)).
assert colorize.__doc__ is not None
colorize.__doc__ = colorize.__doc__.replace("        {own_options}\n", _options_docstring(indent=8))
