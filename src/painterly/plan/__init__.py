"""A run's stages as plain data: make_plan and the revision recipes (stages), and the memory estimates that size
the stages and their tiles (memory).

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.plan.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.plan.balance import (
    ANALYSIS_SIDE,
    AUTO_MIN_SHARE,
    AUTO_REFERENCE_RATIO,
    AUTO_REFERENCE_WEIGHT,
    auto_style_weight,
    edge_contrast,
)
from painterly.plan.memory import (
    available_bytes,
    estimate_run_bytes,
    estimate_tiled_run_bytes,
    gram_pass_core,
    largest_fitting_size,
    largest_size_within,
    resident_bytes,
)
from painterly.plan.stages import (
    AUTO_TILE,
    COARSE_STAGE_MIN_STRIDE,
    CURRENT_REVISION,
    FINAL_STAGE_SHARE,
    KEEP_FREED_MARGIN,
    MIN_STAGE_STEPS,
    MIXED_PRECISION_ACTIVATION_BYTES,
    RECIPES,
    NetworkShape,
    Plan,
    Recipe,
    Stage,
    make_plan,
    pyramid_sizes,
    recipe,
    split_iterations,
)

__all__ = [
    "ANALYSIS_SIDE",
    "AUTO_MIN_SHARE",
    "AUTO_REFERENCE_RATIO",
    "AUTO_REFERENCE_WEIGHT",
    "AUTO_TILE",
    "COARSE_STAGE_MIN_STRIDE",
    "CURRENT_REVISION",
    "FINAL_STAGE_SHARE",
    "KEEP_FREED_MARGIN",
    "MIN_STAGE_STEPS",
    "MIXED_PRECISION_ACTIVATION_BYTES",
    "RECIPES",
    "NetworkShape",
    "Plan",
    "Recipe",
    "Stage",
    "auto_style_weight",
    "available_bytes",
    "edge_contrast",
    "estimate_run_bytes",
    "estimate_tiled_run_bytes",
    "gram_pass_core",
    "largest_fitting_size",
    "largest_size_within",
    "make_plan",
    "pyramid_sizes",
    "recipe",
    "resident_bytes",
    "split_iterations",
]
