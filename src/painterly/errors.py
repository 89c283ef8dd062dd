"""Error types users see: each carries one sentence that names the file and the problem."""

from __future__ import annotations


class PainterlyError(Exception):
    """Base class for errors caused by the user's input or environment (CLI exit code 2)."""


class ImageError(PainterlyError):
    """An input image is missing, unreadable, or unusable."""


class OptionError(PainterlyError):
    """An option has a value that cannot work (unknown layer, negative weight, ...)."""


class OutputError(PainterlyError):
    """The output cannot be written where the user asked (exists, not writable, ...)."""


class MissingExtraError(PainterlyError, ImportError):
    """An optional part of painterly is used without its extra installed (``pip install 'painterly[video]'``).

    An ``ImportError`` too, so code that probes for the optional part with ``except ImportError`` still works.
    """
