"""Style losses selectable by name (``stylize(style_loss=...)``, ``--style-loss``).

The registry sits above the loss modules instead of inside :mod:`painterly.losses.core`: the variants in
:mod:`painterly.losses.style` build on the base classes there, so a registry in ``losses`` that had to import them
would make the two modules import each other.  A new variant registers with :func:`register_style_loss`
(theory.md §9).
"""

from __future__ import annotations

from painterly.errors import OptionError
from painterly.losses.core import GramLoss, LayerLoss
from painterly.losses.style import HistogramLoss, MRFLoss, ShiftedGramLoss, WassersteinLoss

__all__ = ["STYLE_LOSSES", "make_style_loss", "register_style_loss"]

#: Name -> class, in the order the CLI lists them (Gatys et al.'s Gram matrix first).
STYLE_LOSSES: dict[str, type[LayerLoss]] = {}


def register_style_loss(cls: type[LayerLoss]) -> type[LayerLoss]:
    """Class decorator: make a :class:`LayerLoss` selectable as a style loss by its ``name``."""
    STYLE_LOSSES[cls.name] = cls
    return cls


for _builtin in (GramLoss, ShiftedGramLoss, WassersteinLoss, MRFLoss, HistogramLoss):
    register_style_loss(_builtin)


def make_style_loss(name: str) -> LayerLoss:
    """A new instance of the style loss registered as ``name``; an unknown name lists the known ones."""
    try:
        return STYLE_LOSSES[name]()
    except KeyError:
        raise OptionError(f"unknown style loss {name!r}; choose one of {', '.join(STYLE_LOSSES)}") from None
