"""painterly: neural style transfer (Gatys, Ecker & Bethge) as a typed library.

The product is :func:`stylize`, whose options are the fields of :class:`RunConfig`
(:func:`run_with_config` takes them as one value); see ``painterly --help`` for the
same options on the command line.
"""

from painterly._version import __version__ as __version__  # the one place it is written
from painterly.config import RunConfig
from painterly.errors import ImageError, OptionError, OutputError, PainterlyError
from painterly.reproduction import reproduce
from painterly.run import Interrupted
from painterly.sketch.colorize import colorize
from painterly.stylize import StepRecord, resume, run_with_config, stylize

__all__ = [
    "ImageError",
    "Interrupted",
    "OptionError",
    "OutputError",
    "PainterlyError",
    "RunConfig",
    "StepRecord",
    "colorize",
    "reproduce",
    "resume",
    "run_with_config",
    "stylize",
]
