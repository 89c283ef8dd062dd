"""Batch normalisation folded into the convolution before it, for networks that only ever run in eval mode.

In eval mode a batch normalisation is a fixed affine map per channel,
:math:`y = (x - \\mu) \\gamma / \\sqrt{\\sigma^2 + \\epsilon} + \\beta`, so it can be folded into the convolution that
feeds it: the weights of output channel :math:`o` times :math:`\\gamma_o / \\sqrt{\\sigma^2_o + \\epsilon}`, the bias
shifted to match.  The encoder then computes the same function with one operation instead of two, and a pass keeps
one activation per layer for the backward instead of two (the normalisation's input and output): less time and
less memory at every step of a run, since the networks are frozen and never trained here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["fold_batch_norm", "folded_weights"]


def folded_weights(
    weight: Tensor,
    bias: Tensor | None,
    mean: Tensor,
    var: Tensor,
    eps: float,
    gamma: Tensor | None = None,
    beta: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""``(weight, bias)`` of the one convolution equal to a convolution (``weight``, ``bias``) followed by a batch
    norm in eval mode: with :math:`g = \gamma / \sqrt{\sigma^2 + \epsilon}`, :math:`W' = g W` per output channel
    and :math:`b' = g (b - \mu) + \beta` (:math:`\gamma` 1 and :math:`\beta`, :math:`b` 0 where absent)."""
    scale = (var + eps).rsqrt()
    scale = scale * gamma if gamma is not None else scale
    shift = beta if beta is not None else torch.zeros_like(scale)
    bias = bias if bias is not None else torch.zeros_like(scale)
    return weight * scale.view(-1, 1, 1, 1), (bias - mean) * scale + shift


def fold_batch_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Conv2d:
    """A new convolution computing ``norm(conv(x))`` as ``norm`` does in eval mode (its running statistics)."""
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("batch normalisation without running statistics cannot be folded")
    with torch.no_grad():
        weight, bias = folded_weights(
            conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias
        )
        folded = nn.utils.skip_init(
            nn.Conv2d,
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=True,
        )
        folded.weight = nn.Parameter(weight, requires_grad=False)
        folded.bias = nn.Parameter(bias, requires_grad=False)
    return folded
