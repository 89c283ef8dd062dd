"""What one stage minimises: the whole-image evaluator (whole), the two-pass evaluator over tiles (tiled), and the
style targets a session keeps between jobs (targets).

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.objective.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.objective.targets import EncoderTargets, TargetCache, target_key, tensor_digest
from painterly.objective.tiled import (
    GRID_POSITIONS,
    Tile,
    TiledObjective,
    exact_margin,
    grid_step,
    plan_tiles,
    tiled_features,
    tiled_grams,
)
from painterly.objective.whole import NormalizeGradient, Objective, PixelTerm, Term, make_pixel_terms

__all__ = [
    "GRID_POSITIONS",
    "EncoderTargets",
    "NormalizeGradient",
    "Objective",
    "PixelTerm",
    "TargetCache",
    "Term",
    "Tile",
    "TiledObjective",
    "exact_margin",
    "grid_step",
    "make_pixel_terms",
    "plan_tiles",
    "target_key",
    "tensor_digest",
    "tiled_features",
    "tiled_grams",
]
