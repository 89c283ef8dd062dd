"""painterly: neural style transfer (Gatys, Ecker & Bethge) as a typed library.

The product is :func:`stylize`; see ``painterly --help`` for the same options on
the command line.
"""

from painterly._version import __version__ as __version__  # the one place it is written
from painterly.errors import ImageError, OptionError, OutputError, PainterlyError
from painterly.run import Interrupted
from painterly.sketch import colorize
from painterly.stylize import StepRecord, resume, stylize

__all__ = [
    "ImageError",
    "Interrupted",
    "OptionError",
    "OutputError",
    "PainterlyError",
    "StepRecord",
    "colorize",
    "resume",
    "stylize",
]
