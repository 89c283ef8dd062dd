"""The automatic style weight (``style_weight="auto"``, issue 19 part 3): one number per content and style pair, chosen
from the two pictures before the optimisation starts, so the subject's outlines survive a bold painting.

Why a rule on the pictures and not a fidelity reached while optimising: the weight is then known before the first
step, is the same at every size (a preview and the full run agree), costs two small filters, and a checkpoint
simply keeps the number.  Why this statistic: the outlines a viewer reads as the subject are the photo's strongest
luminance edges; the Gram loss asks for the painting's local contrast everywhere, so when the painting's edges are
much stronger than the photo's (a night photo under a high-contrast Cubist painting) its texture outshines the
outlines.  The rule lowers the weight in proportion to that mismatch and leaves it alone where the photo's edges
are as strong as the painting's.  docs/theory.md ("Automatic style weight") gives the math this code follows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

__all__ = [
    "ANALYSIS_SIDE",
    "AUTO_MIN_SHARE",
    "AUTO_REFERENCE_RATIO",
    "AUTO_REFERENCE_WEIGHT",
    "auto_style_weight",
    "edge_contrast",
]

#: The style weight a pair whose photo is as contrasted as its painting gets: the fixed default before "auto".
AUTO_REFERENCE_WEIGHT = 50.0
#: The contrast ratio (photo / painting) at and above which the weight stays at the reference.
AUTO_REFERENCE_RATIO = 1.0
#: The weight is never lowered below this share of the reference (a flat photo still gets some style).
AUTO_MIN_SHARE = 0.1
#: Both pictures are measured with their long side at this many pixels, whatever the run's size, so the weight of
#: a pair is the same at every size.
ANALYSIS_SIDE = 256


def _luma(image: Image.Image, side: int) -> torch.Tensor:
    """Rec. 601 luma of the picture resized (aspect kept) to ``side`` pixels on its long side, H x W in [0, 1]."""
    scale = side / max(image.size)
    size = (max(2, round(image.width * scale)), max(2, round(image.height * scale)))
    resized = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    rgb = torch.from_numpy(np.asarray(resized, dtype=np.float64) / 255.0)  # H x W x 3
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def edge_contrast(image: Image.Image, side: int = ANALYSIS_SIDE) -> float:
    """Root-mean-square luminance gradient (forward differences per pixel at ``side`` px): how strong the picture's
    edges and strokes are, whatever its size."""
    y = _luma(image, side)
    dx, dy = y[:, 1:] - y[:, :-1], y[1:, :] - y[:-1, :]
    return math.sqrt(float(dx.square().mean() + dy.square().mean()))


def auto_style_weight(
    content: Image.Image, styles: Sequence[Image.Image], blend: Sequence[float] | None = None
) -> float:
    """``w = W_ref * clamp((k_c / k_s) / r_ref, s_min, 1)``: the reference weight, lowered in proportion to how much
    stronger the painting's edges are than the photo's (k_s: the blend-weighted mean over the style pictures)."""
    if not styles:
        raise ValueError("the automatic style weight needs at least one style picture")
    weights = list(blend) if blend is not None else [1.0] * len(styles)
    style_contrast = sum(w * edge_contrast(s) for w, s in zip(weights, styles, strict=True)) / sum(weights)
    content_contrast = edge_contrast(content)
    if style_contrast <= 0:
        return AUTO_REFERENCE_WEIGHT  # a flat painting has no texture to outshine anything
    share = (content_contrast / style_contrast) / AUTO_REFERENCE_RATIO
    return AUTO_REFERENCE_WEIGHT * min(1.0, max(AUTO_MIN_SHARE, share))
