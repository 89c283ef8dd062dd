"""Front ends over the API: the command line (cli).

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.apps.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.apps.cli import StopOnSignal, api_options, build_parser, config_options, main, parse_stylize_arguments

__all__ = ["StopOnSignal", "api_options", "build_parser", "config_options", "main", "parse_stylize_arguments"]
