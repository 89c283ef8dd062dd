"""``random-multiscale``: one layer of random filters at several sizes, no training (Ustyuzhaninov et al., ICLR 2017).

Ustyuzhaninov, Brendel, Gatys & Bethge ("What does it take to generate natural textures?", arXiv 1606.00021) found
that a single convolutional layer of *random* filters at several scales, followed by a ReLU, gives Gram-matrix
textures that rival those of the trained VGG-19: what the statistics need is many features at many scales, not
learned ones.  The configuration here is fixed (it is part of what a picture's provenance names):

* filter sizes :data:`KERNEL_SIZES` (3 to 55 px, the range of the paper's multi-scale model), :data:`FILTERS_PER_SIZE`
  filters each, 1024 maps in all;
* weights drawn from one :class:`torch.Generator` seeded with :data:`RANDOM_MULTISCALE_SEED`, normal with He's
  standard deviation :math:`\\sqrt{2 / (3 k^2)}` for a :math:`k \\times k` filter (so every size's responses have
  the same spread), each filter's mean over its taps removed (Ustyuzhaninov et al. zero-mean their filters: a
  filter then answers to structure at its scale, not to the average colour under it), biases 0;
* torchvision's input convention (RGB normalised by ImageNet's mean and standard deviation); "same" zero padding,
  stride 1, so the layer keeps the image's size (and tiles exactly, with a margin of 27 px);
* each map's mean magnitude on the calibration pictures scaled to one, as every network's
  (:class:`painterly.nets.staged.StagedEncoder`).

One layer, ``maps``, serves as both content and style layer.  Its cost is the large filters: per pixel,
:math:`3 \\cdot 128 \\cdot \\sum_k k^2 \\approx 2.06` million multiply-adds forward, 5.7 times VGG-19's 0.36
million from conv1_1 to relu5_1 (the paper's layers), and large kernels run less efficiently on CPUs than 3 x 3
ones (measured: docs/networks.md); the 1024 maps at full resolution hold 16 times the values of VGG-19's widest
full-resolution layer.  Nothing is downloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from painterly.nets.base import INPUT, Encoder, LayerInfo, Pooling
from painterly.nets.normalization import mean_activations
from painterly.nets.staged import InputConvention, StagedEncoder
from painterly.nets.weights import NetworkWeights

__all__ = [
    "FILTERS_PER_SIZE",
    "KERNEL_SIZES",
    "MEMORY_SLOTS",
    "MULTISCALE_LAYERS",
    "RANDOM_MULTISCALE_SEED",
    "MultiScaleConv",
    "build_random_multiscale",
    "random_multiscale_weights",
]

#: The filter sizes: odd, from 3 to 55 px.
KERNEL_SIZES: tuple[int, ...] = (3, 5, 7, 11, 15, 23, 37, 55)
#: Random filters of each size.
FILTERS_PER_SIZE = 128
#: The seed of the filters (the arXiv number of Ustyuzhaninov et al.'s paper, 1606.00021).
RANDOM_MULTISCALE_SEED = 1606_00021

#: Values one output element keeps alive at the peak of a step, in activation-sized slots (counted at the bytes of
#: the run's precision: 3 per value under mixed precision, painterly.plan.stages): the eight convolutions' outputs,
#: their concatenation and its ReLU, and the large kernels' backward workspace of about :math:`3 k^2` values per
#: position for the largest :math:`k` (oneDNN lowers them to matrix products), :math:`3 \cdot 55^2 / 1024 \approx
#: 9` per output element; fitted to the larger of its measured peaks at 1024 x 768 in bfloat16 (22.9 GB; another
#: identical run peaked at 14.1 GB: docs/networks.md), where a count of one slot estimated 4.8 GB.
MEMORY_SLOTS = 8

_CONVENTION = InputConvention((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

#: Its one addressable layer: all maps, the image's size, seeing 27 px beyond each pixel.
MULTISCALE_LAYERS: tuple[LayerInfo, ...] = (
    INPUT.then("maps", channels=len(KERNEL_SIZES) * FILTERS_PER_SIZE, kernel=max(KERNEL_SIZES),
               padding=max(KERNEL_SIZES) // 2, memory_slots=MEMORY_SLOTS),
)  # fmt: skip


class MultiScaleConv(nn.Module):
    """The filters of every size applied to the image ("same" padding), concatenated, then a ReLU."""

    def __init__(self, state: dict[str, Tensor]) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for size in KERNEL_SIZES:
            weight = state[f"k{size}.weight"]
            conv = nn.utils.skip_init(nn.Conv2d, 3, weight.shape[0], size, padding=size // 2, bias=False)
            conv.weight = nn.Parameter(weight.clone(), requires_grad=False)
            self.convs.append(conv)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(torch.cat([conv(x) for conv in self.convs], dim=1))


def _filters() -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(RANDOM_MULTISCALE_SEED)
    state = {}
    for size in KERNEL_SIZES:
        weight = torch.randn(FILTERS_PER_SIZE, 3, size, size, generator=generator) * (2.0 / (3 * size * size)) ** 0.5
        state[f"k{size}.weight"] = weight - weight.mean(dim=(1, 2, 3), keepdim=True)
    return state


def _encoder(weights: NetworkWeights, layers: Iterable[str]) -> StagedEncoder:
    stages = [(MULTISCALE_LAYERS[0], MultiScaleConv(weights.state))]
    return StagedEncoder(stages, layers, title="random multi-scale", convention=_CONVENTION,
                         feature_means=weights.channel_means)  # fmt: skip


@functools.cache
def random_multiscale_weights() -> NetworkWeights:
    """The fixed random filters and their maps' mean magnitudes on the calibration pictures (once per process)."""
    raw = NetworkWeights(network="random-multiscale", state=_filters(), source="random-multiscale")
    means = mean_activations(_encoder(raw, ["maps"]), magnitude=True)
    means = {layer: value.to(torch.bfloat16).float() for layer, value in means.items()}  # as random-vgg19's
    return NetworkWeights(network="random-multiscale", state=raw.state, source=raw.source, channel_means=means)


def build_random_multiscale(weights: Any, layers: Iterable[str], *, pooling: Pooling = "max") -> Encoder:
    """The registry's builder: the multi-scale layer from :func:`random_multiscale_weights`."""
    if not isinstance(weights, NetworkWeights) or weights.network != "random-multiscale":
        raise TypeError("random-multiscale is built from its own generated weights")
    return _encoder(weights, layers)
