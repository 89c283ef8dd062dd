r"""SWAG: a softmax over each layer's activations before the statistics (Wang, Li & Vasconcelos, CVPR 2021).

Wang, Li & Vasconcelos (arXiv 2104.05623) trace the poor stylisation of residual and random networks to
activations of low entropy: a few large peaks dominate each layer, and a Gram matrix of such features describes
the peaks, not the texture.  Their fix (Stylization With Activation smoothinG) passes every layer's activations
through a softmax over the whole layer, all channels and positions together, before the content and style losses.

Here (docs/theory.md §11), for a layer of :math:`N = C H W` elements :math:`F_k`:

.. math:: \sigma(F)_k = N \, \frac{\exp(\tilde F_k / T)}{\sum_{k'} \exp(\tilde F_{k'} / T)}, \qquad
          \tilde F_{c,p} = F_{c,p} \, \frac{m_c}{\bar m}

The softmax is not scale-free, so it needs activations of order one, as the paper's torchvision networks
have (batch normalisation).  Ours are not: Gatys et al.'s normalisation divides every channel by its mean
activation :math:`m_c` on the calibration pictures, which sends a channel that is nearly silent there to values in
the thousands on another picture (measured: random VGG-19's relu2_1 reaches 9987 on Tübingen), and Caffe's VGG-19
works on 0-255 input (raw relu4_1 reaches 10145).  A softmax of either is a single spike.  So the channels are first
put back in the trained network's proportions and the layer scaled as a whole to mean magnitude one
(:math:`\tilde F`: :math:`m_c` the encoder's ``feature_scales``, :math:`\bar m` their mean), and the factor
:math:`N` keeps the smoothed features' mean at one, the scale every layer has otherwise, so the loss weights keep
their meaning.  The temperature :math:`T` is 1, the paper's.  The softmax is taken in float32 whatever precision the
network runs in: its normaliser sums many exponentials, which bfloat16's 8 bits would round away.

Because the normaliser is a sum over the whole layer, a window of the image cannot compute its share alone: tiling
refuses SWAG (:meth:`painterly.config.RunConfig.tiling_unsupported`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Self

import torch
from torch import Tensor

from painterly.nets.base import Encoder, LayerInfo

__all__ = ["SWAG_TEMPERATURE", "SoftmaxSmoothedEncoder", "softmax_smooth"]

#: The softmax's temperature (the paper's: 1).
SWAG_TEMPERATURE = 1.0


def softmax_smooth(
    features: Tensor, temperature: float = SWAG_TEMPERATURE, proportions: Tensor | None = None
) -> Tensor:
    """``N * softmax(features * proportions / T)`` over each image's whole layer (N x C x H x W), in float32;
    ``proportions`` (one per channel, mean one) put the channels back in the trained network's proportions."""
    scaled = features.float() if proportions is None else features.float() * proportions.view(1, -1, 1, 1)
    flat = scaled.flatten(1)
    smoothed = torch.softmax(flat / temperature, dim=1) * flat.shape[1]
    return smoothed.view_as(features)


class SoftmaxSmoothedEncoder:
    """An :class:`~painterly.nets.base.Encoder` handing out ``encoder``'s features smoothed by :func:`softmax_smooth`;
    everything else (layers, geometry, precision, device) is ``encoder``'s."""

    def __init__(self, encoder: Encoder, temperature: float = SWAG_TEMPERATURE) -> None:
        self.inner = encoder
        self.temperature = temperature
        self.layers = encoder.layers
        scales: dict[str, Tensor] = getattr(encoder, "feature_scales", {})
        #: per requested layer, each channel's scale relative to the layer's mean scale (:math:`m_c / \bar m`)
        self.proportions = {layer: scale / scale.mean() for layer, scale in scales.items()}

    @property
    def compute_dtype(self) -> torch.dtype | None:
        return self.inner.compute_dtype

    @compute_dtype.setter
    def compute_dtype(self, dtype: torch.dtype | None) -> None:
        self.inner.compute_dtype = dtype

    @property
    def computed_layers(self) -> tuple[LayerInfo, ...]:
        return self.inner.computed_layers

    def stride(self, layer: str) -> int:
        return self.inner.stride(layer)

    @property
    def max_stride(self) -> int:
        return self.inner.max_stride

    @property
    def min_side(self) -> int:
        return self.inner.min_side

    def __call__(self, image: Tensor, *, in_compute_dtype: bool = False) -> dict[str, Tensor]:
        return dict(self.activations(image, in_compute_dtype=in_compute_dtype))

    def activations(self, image: Tensor, *, in_compute_dtype: bool = False) -> Iterator[tuple[str, Tensor]]:
        """The inner encoder's features, each smoothed as it comes (float32: see the module's docstring)."""
        for layer, features in self.inner.activations(image, in_compute_dtype=True):
            proportions = self.proportions.get(layer)
            if proportions is not None:
                proportions = proportions.to(features.device)
            yield layer, softmax_smooth(features, self.temperature, proportions)

    def to(self, *args: Any, **kwargs: Any) -> Self:
        self.inner = self.inner.to(*args, **kwargs)
        return self
