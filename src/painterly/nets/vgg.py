"""VGG's topologies (Simonyan & Zisserman 2015): VGG-19 (configuration E) and VGG-16 (D), their layers described.

Every block is 3x3 convolutions (stride 1, zero padding 1), each followed by a ReLU, then a 2x2 pooling of stride
2; layers are named as in Gatys et al. (``conv3_1``, ``relu3_1``, ``pool3``).  The strides, widths and reaches
come from that description (:meth:`LayerInfo.then`), not from a table typed in by hand.  VGG-16 differs only in
its blocks' lengths (2, 2, 3, 3, 3 convolutions instead of 2, 2, 4, 4, 4), so one encoder serves both
(:class:`painterly.nets.encoder.VGGEncoder`, told which by :attr:`painterly.nets.weights.VGGWeights.depth`).
This module sits below both the weights (which map files onto these names) and the encoder (which builds the
layers), so neither has to import the other for the names.
"""

from __future__ import annotations

from collections.abc import Iterable

from painterly.nets.base import INPUT, LayerInfo, check_layer_names

__all__ = [
    "LAYER_NAMES",
    "VGG16_CONV_LAYERS",
    "VGG16_LAYERS",
    "VGG19_CONV_LAYERS",
    "VGG19_LAYERS",
    "layer_names",
    "validate_layers",
    "vgg_layers",
]

#: (block, convolutions in it, their width): VGG-19's five blocks.
VGG19_BLOCKS: tuple[tuple[int, int, int], ...] = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))

#: VGG-16's five blocks (configuration D): three convolutions in each of the last three.
VGG16_BLOCKS: tuple[tuple[int, int, int], ...] = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def _conv_names(blocks: tuple[tuple[int, int, int], ...]) -> tuple[str, ...]:
    return tuple(f"conv{block}_{index}" for block, count, _ in blocks for index in range(1, count + 1))


#: Convolution layers of VGG-19 in forward order, named as in the paper.
VGG19_CONV_LAYERS: tuple[str, ...] = _conv_names(VGG19_BLOCKS)
#: Convolution layers of VGG-16 in forward order, named as VGG-19's.
VGG16_CONV_LAYERS: tuple[str, ...] = _conv_names(VGG16_BLOCKS)


def _describe(blocks: tuple[tuple[int, int, int], ...]) -> tuple[LayerInfo, ...]:
    layers: list[LayerInfo] = []
    previous = INPUT
    for block, count, width in blocks:
        for index in range(1, count + 1):
            conv = previous.then(f"conv{block}_{index}", channels=width, kernel=3, padding=1)
            previous = conv.then(f"relu{block}_{index}")
            layers += [conv, previous]
        # counted as max pooling (the default), which keeps each maximum's index for its backward; average
        # pooling keeps none, so its memory estimates err on the safe side
        previous = previous.then(f"pool{block}", kernel=2, stride=2, memory_slots=2)
        layers.append(previous)
    return tuple(layers)


#: Every addressable layer of VGG-19 in forward order, with the ImageNet network's widths.
VGG19_LAYERS: tuple[LayerInfo, ...] = _describe(VGG19_BLOCKS)
#: Every addressable layer of VGG-16 in forward order (conv1_1 ... pool5, no conv3_4, conv4_4, conv5_4).
VGG16_LAYERS: tuple[LayerInfo, ...] = _describe(VGG16_BLOCKS)

#: Their names: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ...
LAYER_NAMES: tuple[str, ...] = tuple(info.name for info in VGG19_LAYERS)


def layer_names() -> tuple[str, ...]:
    """All addressable layers in forward order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..."""
    return LAYER_NAMES


def validate_layers(layers: Iterable[str]) -> list[str]:
    """Return the layers as a list, or raise a one-sentence error naming the unknown ones and VGG-19's layers."""
    return check_layer_names(layers, VGG19_LAYERS, "VGG-19")


def vgg_layers(depth: int) -> tuple[LayerInfo, ...]:
    """The layers of VGG-``depth`` (16 or 19)."""
    tables = {16: VGG16_LAYERS, 19: VGG19_LAYERS}
    if depth not in tables:
        raise ValueError(f"VGG-{depth} is not described; VGG-16 and VGG-19 are")
    return tables[depth]
