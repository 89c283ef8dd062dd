"""The temporal term: a new frame's stylisation is pulled, pixel by pixel, towards the earlier stylised frames moved
along the flow, where the flow is reliable (Ruder, Dosovitskiy & Brox 2016, eqs. 3-5).

Why: stylising each frame on its own lands each in a different local optimum and the clip flickers; penalising the
difference to the warped previous result keeps what was painted where it moved, and the consistency mask
(painterly.video.consistency) frees the pixels no earlier frame saw.

.. math:: L_{temporal}(x) = \\frac{1}{D} \\sum_{j \\in J} \\sum_k c^{(j)}_k (x_k - \\omega^{(j)}_k)^2

with :math:`D = C H W`, :math:`\\omega^{(j)}` the stylised frame :math:`i - j` warped to frame :math:`i` and
:math:`c^{(j)}` its long-term weight (:func:`long_term_weights`): each older frame counts only where no closer
frame is reliable.  The loss is a :class:`~painterly.losses.core.PixelLoss`, so both evaluators take it, and it owns
its gradient :math:`\\frac{2}{D} \\sum_j c^{(j)} (x - \\omega^{(j)})` (:class:`_TemporalMSE`), written with
:func:`~painterly.losses.core.square_slope` like the other mean squares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from painterly.errors import OptionError
from painterly.losses.core import PixelLoss, square_slope
from painterly.objective.whole import PixelTerm

__all__ = [
    "LONG_TERM_OFFSETS",
    "TemporalLoss",
    "earlier_frames",
    "long_term_weights",
    "temporal_term",
    "temporal_value_and_grad",
]

#: The earlier frames a frame is tied to, as offsets back (the paper's long-term set J; ``-flow_relative_indices``).
LONG_TERM_OFFSETS = (1, 2, 4)


def earlier_frames(index: int, offsets: Sequence[int] = LONG_TERM_OFFSETS) -> list[int]:
    """The indices of the earlier frames frame ``index`` is tied to, closest first: ``[index - j for j in J]``, those
    that exist."""
    return [index - offset for offset in sorted(offsets) if index - offset >= 0]


def long_term_weights(masks: Sequence[Tensor]) -> list[Tensor]:
    """Each earlier frame's weight: its consistency mask minus the masks of the closer frames, clipped at 0 (eq. 5).

    ``masks`` are the consistency masks towards the earlier frames, closest first (the order of
    :func:`earlier_frames`); a pixel the previous frame saw reliably takes nothing from older ones.
    """
    if not masks:
        return []
    stacked = torch.stack(list(masks))
    closer = stacked.cumsum(0) - stacked
    return list((stacked - closer).clamp_min(0.0).unbind(0))


def temporal_value_and_grad(image: Tensor, warped: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    r""":math:`\frac{1}{D}\sum_j \sum_k c^{(j)}_k (x_k - \omega^{(j)}_k)^2` and its gradient w.r.t. ``image``.

    ``image`` is B x C x H x W, ``warped`` J x C x H x W (the warped earlier frames) and ``weights`` J x 1 x H x W;
    :math:`D` is the number of entries of ``image``.  The one place the term's arithmetic is written: the loss's
    forward and backward both call it.
    """
    difference = image.unsqueeze(1) - warped.to(image.dtype)  # B x J x C x H x W
    weighted = weights.to(image.dtype) * difference
    count = image.numel()
    value = (weighted * difference).sum() / count
    return value, square_slope(weighted.sum(1), 1.0, count)


class _TemporalMSE(torch.autograd.Function):
    """The temporal term with its own backward: the gradient formed once in the forward, scaled by the incoming one."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, image: Tensor, warped: Tensor, weights: Tensor) -> Tensor:
        value, grad = temporal_value_and_grad(image, warped, weights)
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, incoming: Tensor) -> tuple[Tensor, None, None]:
        (grad,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * incoming, None, None


class TemporalLoss(PixelLoss):
    """The temporal term of one frame against its warped earlier stylised frames and their weights.

    ``warped`` are 1 x C x H x W images (the earlier stylised frames moved onto this frame), ``weights`` their
    per-pixel weights (H x W, or 1 x 1 x H x W; :func:`long_term_weights` of the consistency masks), closest first.
    A stage smaller than the frame (coarse-to-fine) compares at its own size: both are resized to it
    (area-averaged), once per size.
    """

    name = "temporal"

    def __init__(self, warped: Sequence[Tensor], weights: Sequence[Tensor]) -> None:
        if not warped or len(warped) != len(weights):
            raise OptionError(f"the temporal term needs one weight mask per warped frame (got {len(warped)} frames "
                              f"and {len(weights)} masks)")  # fmt: skip
        self.warped = torch.cat([frame.detach().float().reshape(1, *frame.shape[-3:]) for frame in warped])
        self.weights = torch.cat([mask.detach().float().reshape(1, 1, *mask.shape[-2:]) for mask in weights])
        if self.warped.shape[-2:] != self.weights.shape[-2:]:
            raise OptionError(f"the warped frames are {tuple(self.warped.shape[-2:])} and the masks "
                              f"{tuple(self.weights.shape[-2:])}: they must be of one size")  # fmt: skip
        self._sized: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}

    def at_size(self, height: int, width: int) -> tuple[Tensor, Tensor]:
        """The warped frames and weights at ``height`` x ``width`` (the frame's own, or a coarse stage's)."""
        if (height, width) == tuple(self.warped.shape[-2:]):
            return self.warped, self.weights
        if (height, width) not in self._sized:
            resize = torch.nn.functional.interpolate
            self._sized[height, width] = (
                resize(self.warped, size=(height, width), mode="area"),
                resize(self.weights, size=(height, width), mode="area"),
            )
        return self._sized[height, width]

    def __call__(self, image: Tensor) -> Tensor:
        warped, weights = self.at_size(*image.shape[-2:])
        warped, weights = warped.to(image.device), weights.to(image.device)
        return _TemporalMSE.apply(image, warped, weights)


def temporal_term(weight: float, warped: Sequence[Tensor], weights: Sequence[Tensor]) -> PixelTerm:
    """The temporal term as an objective's pixel term (reported as ``"temporal"``), weighted by ``weight``."""
    if weight < 0:
        raise OptionError(f"the temporal weight must be 0 or more, not {weight}")
    return PixelTerm(weight, TemporalLoss(warped, weights))
