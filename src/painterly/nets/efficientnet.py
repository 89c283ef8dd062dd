"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile accelerators) as a chain of stages.

Written from the architecture's description, not from any package's code.  Lite0 is EfficientNet-B0 without
squeeze-and-excitation, with ReLU6 instead of swish, and with its stem (32 channels) and head (1280) kept at
B0's width.  Its body is 16 mobile inverted bottleneck blocks ("MBConv") in 7 stages (:data:`STAGES`); a block is

* a 1x1 expansion to ``expand`` times its input's channels + batch norm + ReLU6 (absent where ``expand`` is 1),
* a ``kernel`` x ``kernel`` depthwise convolution of stride ``stride``, zero padding ``kernel // 2`` on each side
  ("same" for stride 1) + batch norm + ReLU6,
* a 1x1 projection to its output channels + batch norm (a linear bottleneck: no activation),
* plus its input where it keeps the side and the width (stride 1 and ``in == out``); stochastic depth, a
  training device, is no part of inference.

Addressable layers: ``stem`` (3x3 convolution of stride 2 + batch norm + ReLU6), ``block0`` ... ``block15`` (each
block's output) and ``head`` (1x1 convolution to 1280 channels + batch norm + ReLU6).  Each layer's
:class:`~painterly.nets.base.LayerInfo` chains the block's convolutions with :meth:`LayerInfo.then`, so strides,
reaches and exact sizes (a padded stride-2 convolution keeps ``ceil(n / 2)`` positions) are the network's own.

Batch norm is folded into the preceding convolution when the network is built (inference uses the running
statistics only, so ``bn(conv(x))`` is one convolution with rescaled weights and a bias): a pass runs three
operations per block instead of six, its backward keeps fewer tensors alive, and the network runs in bfloat16
(mixed precision) as VGG does, with no normalisation layer whose statistics would need float32.

What the weights file does not say (its input convention and batch-norm epsilon) was decided with the classifier
(:func:`efficientnet_lite0_logits`) on the bundled calibration copies of ``chelsea_cat`` (ImageNet classes 281-285
are cats) and ``coffee`` (967 espresso, 968 cup), top-5 class ids with their probabilities, resized (Lanczos) to
a long side of 224 and 128 px:

=============================  =======================================  =======================================
convention, epsilon            chelsea_cat 224 / 128 px                 coffee 224 / 128 px
=============================  =======================================  =======================================
ImageNet mean/std, 1e-3        285 .90, 281, 282 / 285 .79, 281, 282    967 .80, 968 / 967 .69, 528, 849, 507, 968
ImageNet mean/std, 1e-5        285 .86, 281, 282 / 285 .77, 281, 282    967 .87, 968 / 967 .33, 528, 622, 485, 507
(x - 0.5) / 0.5, 1e-3          285 .87, 281, 282 / 285 .48, 282, 281    967 .83, 968 / 613, 632, 485, 505, 849
(x - 0.5) / 0.5, 1e-5          285 .85, 281, 282 / 282 .51, 285, 281    967 .82, 968 / 528, 485, 613, 849, 686
=============================  =======================================  =======================================

At 224 px every combination passes; at 128 px only ImageNet's mean and standard deviation keep the coffee in the
top 5, and epsilon 1e-3 (the published definition's) keeps it with twice the probability of 1e-5: so those two
(:data:`EFFICIENTNET_LITE0_CONVENTION`, :data:`BN_EPSILON`).  TensorFlow's asymmetric "same" padding (one more
zero on the right and bottom of a stride-2 convolution on an even side) instead of ``kernel // 2`` on each side
was tried too and did no better (coffee at 128 px: 507 first, 967 second), so the symmetric padding stays: it
keeps every layer's geometry the plain ``LayerInfo.then`` description.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from painterly.nets.base import INPUT, LayerInfo
from painterly.nets.batchnorm import folded_weights
from painterly.nets.staged import InputConvention, StagedEncoder

__all__ = [
    "BN_EPSILON",
    "EFFICIENTNET_LITE0_BLOCKS",
    "EFFICIENTNET_LITE0_CONVENTION",
    "EFFICIENTNET_LITE0_LAYERS",
    "STAGES",
    "BlockSpec",
    "MBConvBlock",
    "efficientnet_lite0_encoder",
    "efficientnet_lite0_logits",
    "efficientnet_lite0_parameters",
    "efficientnet_lite0_stages",
    "folded_conv_weights",
]

#: The seven stages: (repeats, kernel, stride, expand ratio, input channels, output channels).
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
CLASSES = 1000

#: The batch-norm epsilon of the published definition (TensorFlow's EfficientNet: 1e-3), confirmed by the table above.
BN_EPSILON = 1e-3

#: Its input: RGB in [0, 1] normalised by ImageNet's mean and standard deviation (chosen by the table above over
#: the TensorFlow Lite models' (x - 127.5) / 127.5).
EFFICIENTNET_LITE0_CONVENTION = InputConvention((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block: its index (``block{index}``), kernel, stride, expansion ratio and widths."""

    index: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int

    @property
    def name(self) -> str:
        return f"block{self.index}"

    @property
    def hidden(self) -> int:
        """Channels of the expanded representation (the depthwise convolution's width)."""
        return self.in_channels * self.expand

    @property
    def residual(self) -> bool:
        """Whether the block adds its input: it keeps both side and width."""
        return self.stride == 1 and self.in_channels == self.out_channels


def _blocks() -> tuple[BlockSpec, ...]:
    blocks: list[BlockSpec] = []
    for repeats, kernel, stride, expand, in_channels, out_channels in STAGES:
        for repeat in range(repeats):
            first = repeat == 0
            blocks.append(BlockSpec(len(blocks), kernel, stride if first else 1, expand,
                                    in_channels if first else out_channels, out_channels))  # fmt: skip
    return tuple(blocks)


#: The 16 blocks in forward order.
EFFICIENTNET_LITE0_BLOCKS: tuple[BlockSpec, ...] = _blocks()


def _block_info(previous: LayerInfo, block: BlockSpec) -> LayerInfo:
    """The block's layer: its convolutions chained (expansion, depthwise, projection), and as memory the float32
    values it keeps for the backward pass per output element: the output of each convolution followed by a ReLU6
    (what the ReLU6's backward reads) and of each ReLU6 (what the next convolution's reads; the expanded ones at
    the input's side), and the block's output (the projection, or the residual sum, whose backward reads
    nothing)."""
    stride2 = block.stride * block.stride
    kept = 2 * block.hidden + block.out_channels
    if block.expand != 1:
        kept += 2 * block.hidden * stride2
    slots = -(-kept // block.out_channels)
    expanded = previous.then(f"{block.name}.expand", channels=block.hidden)
    depthwise = expanded.then(f"{block.name}.depthwise", kernel=block.kernel, stride=block.stride,
                              padding=block.kernel // 2)  # fmt: skip
    return depthwise.then(block.name, channels=block.out_channels, memory_slots=slots)


def _describe() -> tuple[LayerInfo, ...]:
    stem = INPUT.then("stem", channels=STEM_CHANNELS, kernel=3, stride=2, padding=1, memory_slots=2)
    layers = [stem]
    for block in EFFICIENTNET_LITE0_BLOCKS:
        layers.append(_block_info(layers[-1], block))
    layers.append(layers[-1].then("head", channels=HEAD_CHANNELS, memory_slots=2))
    return tuple(layers)


#: Every addressable layer in forward order: stem, block0 ... block15, head.
EFFICIENTNET_LITE0_LAYERS: tuple[LayerInfo, ...] = _describe()


def _conv_bn(prefix: str, out_channels: int, in_channels: int, kernel: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {f"{prefix}.conv.weight": (out_channels, in_channels, kernel, kernel)}
    shapes.update(
        {f"{prefix}.bn.{name}": (out_channels,) for name in ("weight", "bias", "running_mean", "running_var")}
    )
    return shapes


def efficientnet_lite0_parameters() -> dict[str, tuple[int, ...]]:
    """Every parameter and batch-norm statistic in our naming, in forward order, with its shape: ``stem.conv``,
    ``stem.bn``, ``block{i}.{expand,depthwise,project}.{conv,bn}``, ``head.conv``, ``head.bn``, ``classifier``."""
    shapes = _conv_bn("stem", STEM_CHANNELS, 3, 3)
    for block in EFFICIENTNET_LITE0_BLOCKS:
        if block.expand != 1:
            shapes.update(_conv_bn(f"{block.name}.expand", block.hidden, block.in_channels, 1))
        shapes.update(_conv_bn(f"{block.name}.depthwise", block.hidden, 1, block.kernel))
        shapes.update(_conv_bn(f"{block.name}.project", block.out_channels, block.hidden, 1))
    last = EFFICIENTNET_LITE0_BLOCKS[-1].out_channels
    shapes.update(_conv_bn("head", HEAD_CHANNELS, last, 1))
    shapes.update({"classifier.weight": (CLASSES, HEAD_CHANNELS), "classifier.bias": (CLASSES,)})
    return shapes


def folded_conv_weights(state: Mapping[str, Tensor], prefix: str, eps: float = BN_EPSILON) -> tuple[Tensor, Tensor]:
    """``(weight, bias)`` of the one convolution equal to ``prefix``'s convolution (no bias) followed by its batch
    norm in inference (:func:`painterly.nets.batchnorm.folded_weights`)."""
    return folded_weights(
        state[f"{prefix}.conv.weight"].float(), None, state[f"{prefix}.bn.running_mean"].float(),
        state[f"{prefix}.bn.running_var"].float(), eps, state[f"{prefix}.bn.weight"].float(),
        state[f"{prefix}.bn.bias"].float(),
    )  # fmt: skip


def _conv(state: Mapping[str, Tensor], prefix: str, eps: float, *, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """``prefix``'s convolution with its batch norm folded in; zero padding ``kernel // 2``."""
    weight, bias = folded_conv_weights(state, prefix, eps)
    out_channels, in_per_group, kernel, _ = weight.shape
    conv = nn.Conv2d(in_per_group * groups, out_channels, kernel, stride=stride, padding=kernel // 2, groups=groups)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)  # type: ignore[union-attr]  # built with a bias
    return conv


class MBConvBlock(nn.Module):
    """A mobile inverted bottleneck block with folded batch norms (see the module's docstring)."""

    def __init__(self, state: Mapping[str, Tensor], block: BlockSpec, eps: float = BN_EPSILON) -> None:
        super().__init__()
        prefix = block.name
        self.expand = (
            nn.Identity() if block.expand == 1 else nn.Sequential(_conv(state, f"{prefix}.expand", eps), nn.ReLU6())
        )
        self.depthwise = nn.Sequential(
            _conv(state, f"{prefix}.depthwise", eps, stride=block.stride, groups=block.hidden), nn.ReLU6()
        )
        self.project = _conv(state, f"{prefix}.project", eps)
        self.residual = block.residual

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


def efficientnet_lite0_stages(
    state: Mapping[str, Tensor], eps: float = BN_EPSILON
) -> list[tuple[LayerInfo, nn.Module]]:
    """The network as ``(LayerInfo, module)`` stages from a state dict in our naming (batch norms folded)."""
    modules: list[nn.Module] = [nn.Sequential(_conv(state, "stem", eps, stride=2), nn.ReLU6())]
    modules += [MBConvBlock(state, block, eps) for block in EFFICIENTNET_LITE0_BLOCKS]
    modules.append(nn.Sequential(_conv(state, "head", eps), nn.ReLU6()))
    return list(zip(EFFICIENTNET_LITE0_LAYERS, modules, strict=True))


def efficientnet_lite0_encoder(
    state: Mapping[str, Tensor],
    layers: tuple[str, ...] | list[str],
    *,
    feature_means: Mapping[str, Tensor] | None = None,
    convention: InputConvention = EFFICIENTNET_LITE0_CONVENTION,
    eps: float = BN_EPSILON,
) -> StagedEncoder:
    """An encoder of EfficientNet-Lite0 for ``layers`` (``feature_means``: each layer's per-channel mean magnitude
    on the calibration pictures, which balances the layers; None hands the features out as computed)."""
    return StagedEncoder(efficientnet_lite0_stages(state, eps), layers, title="EfficientNet-Lite0",
                         convention=convention, feature_means=feature_means)  # fmt: skip


def efficientnet_lite0_logits(
    state: Mapping[str, Tensor],
    image: Tensor,
    *,
    convention: InputConvention = EFFICIENTNET_LITE0_CONVENTION,
    eps: float = BN_EPSILON,
) -> Tensor:
    """ImageNet class scores (N x 1000) of RGB ``image`` in [0, 1]: the head's features averaged over positions,
    then the trained classifier.  Used only to prove the weights are read right (a cat is a cat)."""
    encoder = efficientnet_lite0_encoder(state, ["head"], convention=convention, eps=eps)
    with torch.no_grad():
        pooled = encoder(image)["head"].mean(dim=(2, 3))
        return F.linear(pooled, state["classifier.weight"].float(), state["classifier.bias"].float())
