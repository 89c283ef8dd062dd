"""Losses between a picture's features and a target: the LayerLoss protocol with content, Gram and pixel losses
(core), the other style statistics (style), and the style losses by name (registry).

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.losses.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.losses.core import (
    ContentLoss,
    GramLoss,
    GramStatisticLoss,
    GuidedGramLoss,
    LaplacianLoss,
    LayerLoss,
    PixelLoss,
    PositionwiseLoss,
    TotalVariationLoss,
    gram_difference,
    gram_matrix,
    guided_gram_matrix,
    is_low_precision,
    laplacian,
    square_slope,
    times_features,
    total_variation,
)
from painterly.losses.registry import STYLE_LOSSES, make_style_loss, register_style_loss
from painterly.losses.style import HistogramLoss, MRFLoss, ShiftedGramLoss, WassersteinLoss, match_histograms

__all__ = [
    "STYLE_LOSSES",
    "ContentLoss",
    "GramLoss",
    "GramStatisticLoss",
    "GuidedGramLoss",
    "HistogramLoss",
    "LaplacianLoss",
    "LayerLoss",
    "MRFLoss",
    "PixelLoss",
    "PositionwiseLoss",
    "ShiftedGramLoss",
    "TotalVariationLoss",
    "WassersteinLoss",
    "gram_difference",
    "gram_matrix",
    "guided_gram_matrix",
    "is_low_precision",
    "laplacian",
    "make_style_loss",
    "match_histograms",
    "register_style_loss",
    "square_slope",
    "times_features",
    "total_variation",
]
