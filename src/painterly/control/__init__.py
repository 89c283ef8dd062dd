"""What the user steers beyond the weights: colour (color) and where and at which layers each style acts (spatial).

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.control.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.control.color import (
    COLOR_CONTROLS,
    ColorControl,
    LinearColorMethod,
    gray_to_rgb,
    luminance,
    match_color_linear,
    match_histograms,
    match_luminance,
    prepare_color_inputs,
    restore_colors,
    rgb_to_yiq,
    transfer_chroma,
    yiq_to_rgb,
)
from painterly.control.spatial import mask_for_layer, parse_layer_set, per_style_layer_weights, resize_mask

__all__ = [
    "COLOR_CONTROLS",
    "ColorControl",
    "LinearColorMethod",
    "gray_to_rgb",
    "luminance",
    "mask_for_layer",
    "match_color_linear",
    "match_histograms",
    "match_luminance",
    "parse_layer_set",
    "per_style_layer_weights",
    "prepare_color_inputs",
    "resize_mask",
    "restore_colors",
    "rgb_to_yiq",
    "transfer_chroma",
    "yiq_to_rgb",
]
