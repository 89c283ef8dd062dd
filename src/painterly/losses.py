"""Losses on encoder features, under one small interface.

Each :class:`LayerLoss` compares one layer's features ``F`` (shape B x C x H x W)
with a *target representation* computed once from the target image's features
(``prepare``), so the style's Gram matrices are never recomputed during the
optimisation.  The mathematics is written down in ``docs/theory.md``; every
function here names the section it implements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

__all__ = [
    "STYLE_LOSSES",
    "ContentLoss",
    "GramLoss",
    "LayerLoss",
    "gram_matrix",
    "make_style_loss",
    "register_style_loss",
    "total_variation",
]


def gram_matrix(features: Tensor) -> Tensor:
    r"""Size-normalised Gram matrix :math:`G = F F^\top / (H W)` per batch item (theory.md §3).

    Dividing by the number of positions ``H W`` makes ``G`` an average over the
    image, so the same style weight means the same thing at every image size.
    """
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return torch.bmm(flat, flat.transpose(1, 2)) / (height * width)


def total_variation(image: Tensor) -> Tensor:
    r"""Squared total variation, averaged over pixels (theory.md §4).

    :math:`\mathrm{TV}(x) = \operatorname{mean}(\Delta_h x)^2 + \operatorname{mean}(\Delta_v x)^2`.
    """
    dh = image[..., :, 1:] - image[..., :, :-1]
    dv = image[..., 1:, :] - image[..., :-1, :]
    return dh.pow(2).mean() + dv.pow(2).mean()


class LayerLoss(ABC):
    """A comparison of one layer's features against a precomputed target.

    Subclasses implement ``prepare`` (target features -> representation, run once)
    and ``__call__`` (current features, representation -> scalar loss, run every
    step).  A new style loss is one small subclass.
    """

    #: Name used by ``--style-loss`` and in reports.
    name: ClassVar[str]

    @abstractmethod
    def prepare(self, target_features: Tensor) -> Tensor:
        """Compute the target representation once, detached from any graph."""

    @abstractmethod
    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        """Return the scalar loss of ``features`` against ``target``."""


class ContentLoss(LayerLoss):
    r"""Mean squared error of feature maps (theory.md §2): :math:`\operatorname{mean}(F - P)^2`."""

    name = "mse"

    def prepare(self, target_features: Tensor) -> Tensor:
        return target_features.detach()

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        return torch.nn.functional.mse_loss(features, target.expand_as(features))


class GramLoss(LayerLoss):
    r"""Gatys et al.'s style loss (theory.md §3): :math:`\operatorname{mean}(G(F) - G(S))^2`.

    The mean runs over the :math:`C^2` entries, i.e. the paper's
    :math:`\frac{1}{4 N_l^2 M_l^2}\sum (G - A)^2` times 4 with ``G`` normalised by :math:`M_l`.
    """

    name = "gram"

    def prepare(self, target_features: Tensor) -> Tensor:
        return gram_matrix(target_features.detach()).mean(0, keepdim=True)

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        return torch.nn.functional.mse_loss(gram_matrix(features), target.expand(features.shape[0], -1, -1))


#: Style losses selectable by name (``stylize(style_loss=...)``, ``--style-loss``).
STYLE_LOSSES: dict[str, type[LayerLoss]] = {}


def register_style_loss(cls: type[LayerLoss]) -> type[LayerLoss]:
    """Class decorator: make a :class:`LayerLoss` selectable as a style loss by its ``name``."""
    STYLE_LOSSES[cls.name] = cls
    return cls


register_style_loss(GramLoss)


def make_style_loss(name: str) -> LayerLoss:
    from painterly.errors import OptionError

    try:
        return STYLE_LOSSES[name]()
    except KeyError:
        raise OptionError(f"unknown style loss {name!r}; choose one of {', '.join(STYLE_LOSSES)}") from None
