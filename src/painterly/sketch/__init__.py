"""Colouring line art: the sketch's regions, a flat colour fill, a stylised pass and the lines put back (colorize).
As with ``painterly.stylize``, the attribute ``painterly.sketch.colorize`` is the function, not its module; import
the module's other names with ``from painterly.sketch.colorize import ...`` or from here.

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.sketch.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.sketch.colorize import (
    COLORIZE_DEFAULTS,
    COLORIZE_OPTIONS,
    COLORIZE_SETS,
    FILL_MODES,
    ColorizeOption,
    FillMode,
    check_colorize_options,
    color_fill,
    colorfulness,
    colorize,
    colorize_config,
    colorize_keywords,
    composite_lines,
    label_regions,
    line_f1,
    line_map,
    palette,
    paper_saturation,
    prepare_line_art,
)

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
