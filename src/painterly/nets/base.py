"""What every network offers the rest of painterly: a description of its layers and one pass that returns them.

Memory estimates (:mod:`painterly.plan.memory`), mask propagation (:func:`painterly.control.spatial.mask_for_layer`)
and tiling (:mod:`painterly.objective.tiled`) read the :class:`LayerInfo` of the layers an :class:`Encoder`
computes, never a network's layer names or its widths.  So a network that strides inside its convolutions or
branches (ResNet, GoogLeNet, EfficientNet) fits by describing itself: nothing downstream assumes VGG's
conv/relu/pool rhythm.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self, runtime_checkable

import torch
from torch import Tensor, nn

from painterly.errors import OptionError

__all__ = ["INPUT", "Encoder", "LayerChain", "LayerInfo", "Pooling", "Window", "check_layer_names", "smallest_side"]

#: How a network pools where it offers a choice (VGG: Gatys et al. found average pooling gives smoother images).
Pooling = Literal["max", "avg"]


@dataclass(frozen=True)
class Window:
    """A window operation's geometry: ``kernel`` x ``kernel`` windows every ``stride`` positions over the input
    padded by ``padding`` on each side, a partial last window counted when ``ceil_mode`` (as torch's pooling)."""

    kernel: int
    stride: int
    padding: int = 0
    ceil_mode: bool = False

    def output_side(self, side: int) -> int:
        """Output positions along an input side of ``side`` positions (torch's rule for convolution and pooling)."""
        span = side + 2 * self.padding - self.kernel
        if span < 0:
            return 0
        if not self.ceil_mode:
            return span // self.stride + 1
        out = -(-span // self.stride) + 1
        # torch: the last window must start inside the input or its left padding
        return out - 1 if (out - 1) * self.stride >= side + self.padding else out


@dataclass(frozen=True)
class LayerInfo:
    """One addressable layer: where its positions sit on the input, how wide it is, how far its positions see.

    ``stride``: input pixels per position along each axis; a layer of stride ``s`` has ``H // s`` x ``W // s``
    positions where the network's downsampling rounds down (VGG's pooling does), and position ``p`` covers the
    input block ``[p s, (p + 1) s)``.

    ``channels``: its feature channels (of the weights in use: a narrow test network reports its own).

    ``reach``: how many input pixels beyond its own ``s`` x ``s`` block a position's receptive field extends, on
    its wider side.  Zero padding at a window's edge changes no position of this layer whose block lies at least
    ``reach`` pixels inside the window (or against the image's own border), provided the window starts on the
    stride grid.  That is the margin with which tiling's windows compute the layer exactly as the whole image does
    (theory.md §10): 10 px for VGG-19's ``relu3_1``, 70 px for ``relu5_1``.

    ``memory_slots``: float32-sized values one output element keeps alive until the backward pass: 2 for max
    pooling (its output and the int64 index of each maximum), 1 otherwise (:mod:`painterly.plan.memory`).

    ``resampling``: the window operations on the way from the input that change the side of the feature map, in
    order, each as :class:`Window`; what :meth:`size` and mask propagation (:func:`painterly.control.spatial.
    mask_for_layer`) follow, so a network that strides inside padded convolutions (which keep a partial border
    position: ``ceil(n / 2)``) is described as exactly as VGG's poolings (``floor(n / 2)``).
    """

    name: str
    stride: int
    channels: int
    reach: int
    memory_slots: int = 1
    resampling: tuple[Window, ...] = ()

    def size(self, side: int) -> int:
        """Positions of this layer along an input side of ``side`` pixels (0 when the input is too small)."""
        for window in self.resampling:
            side = window.output_side(side)
        return max(side, 0)

    @property
    def on_floor_grid(self) -> bool:
        """Whether every side maps to ``floor(side / stride)`` positions, position ``p`` covering the input block
        ``[p s, (p + 1) s)`` exactly: what tiling's windows rely on (true of VGG's poolings, not of padded strided
        convolutions, whose border position covers a partial block)."""
        return all(window.kernel - 2 * window.padding == window.stride and not window.ceil_mode
                   for window in self.resampling)  # fmt: skip

    def then(
        self,
        name: str,
        *,
        channels: int | None = None,
        kernel: int = 1,
        stride: int = 1,
        padding: int = 0,
        memory_slots: int = 1,
        ceil_mode: bool = False,
    ) -> LayerInfo:
        """The layer that a ``kernel`` x ``kernel`` window operation (convolution or pooling) with this ``stride``
        and ``padding`` makes of this one; ``channels`` defaults to this layer's (ReLU, pooling, normalisation).

        Output position ``q`` reads input positions ``q t - padding`` to ``q t - padding + kernel - 1`` (``t`` the
        operation's stride), while its own block spans input positions ``q t`` to ``q t + t - 1``: it sees
        ``padding`` positions further on one side and ``kernel - padding - t`` on the other, each position being
        :attr:`stride` input pixels that themselves see :attr:`reach` pixels beyond their block.  An operation
        that changes the feature map's side (a stride, or padding narrower than "same") joins :attr:`resampling`.
        """
        extra = max(padding, kernel - padding - stride, 0)
        window = Window(kernel, stride, padding, ceil_mode)
        keeps_side = stride == 1 and kernel == 2 * padding + 1
        return LayerInfo(
            name=name,
            stride=self.stride * stride,
            channels=self.channels if channels is None else channels,
            reach=self.reach + self.stride * extra,
            memory_slots=memory_slots,
            resampling=self.resampling if keeps_side else (*self.resampling, window),
        )


#: The network's input as a layer: RGB pixels, each its own block, seeing nothing beyond itself.
INPUT = LayerInfo(name="input", stride=1, channels=3, reach=0)


@runtime_checkable
class Encoder(Protocol):
    """A frozen network mapping RGB images in [0, 1] (N x 3 x H x W) to its features at the requested layers.

    The network's own input convention (Caffe's BGR 0-255 minus the mean, torchvision's normalisation, ...) is
    applied inside, so no caller thinks about it; parameters never require gradients (only the image is
    optimised).  :class:`painterly.nets.encoder.VGGEncoder` is the first implementation; networks are chosen by name
    through :mod:`painterly.nets.registry`.
    """

    #: The requested layers: the keys of what one pass returns.
    layers: tuple[str, ...]
    #: Run the network in this lower precision (mixed precision; None = float32).  The features are handed out in
    #: float32 unless a caller asks for them as computed; the image stays in full precision.
    compute_dtype: torch.dtype | None

    @property
    def computed_layers(self) -> tuple[LayerInfo, ...]:
        """Every layer one pass runs, in forward order, through the deepest requested one (a network may stop
        there: nothing after it is computed)."""
        ...

    def stride(self, layer: str) -> int:
        """Input pixels per position of ``layer`` (a computed layer), along each axis."""
        ...

    @property
    def max_stride(self) -> int:
        """The largest stride of the computed layers: windows aligned to it share the whole image's grids."""
        ...

    @property
    def min_side(self) -> int:
        """The smallest input side that leaves at least one position at every requested layer."""
        ...

    def __call__(self, image: Tensor, *, in_compute_dtype: bool = False) -> dict[str, Tensor]:
        """``{layer: features}`` for exactly the requested layers, from one pass."""
        ...

    def activations(self, image: Tensor, *, in_compute_dtype: bool = False) -> Iterator[tuple[str, Tensor]]:
        """``(layer, features)`` for each requested layer as the pass reaches it: a caller that reduces each layer
        as it comes (tiling's Gram pass) keeps only the current activation alive."""
        ...

    def to(self, *args: Any, **kwargs: Any) -> Self:
        """Move to a device or memory format (as :meth:`torch.nn.Module.to`)."""
        ...


class LayerChain(nn.Module):
    """What every encoder that runs a chain of modules shares: the description of the layers its pass runs and
    their cast copy for mixed precision.

    A subclass sets ``names`` (the layers the pass runs, in forward order), ``_computed`` (their
    :class:`LayerInfo`), ``body`` (one module per layer) and ``_low_precision_body = None``.
    """

    names: tuple[str, ...]
    _computed: tuple[LayerInfo, ...]
    body: nn.ModuleList
    _low_precision_body: tuple[torch.dtype, nn.ModuleList] | None

    @property
    def computed_layers(self) -> tuple[LayerInfo, ...]:
        """Every layer the pass runs, in forward order, through the deepest requested one."""
        return self._computed

    def stride(self, layer: str) -> int:
        """Input pixels per position of ``layer`` along each axis."""
        for info in self._computed:
            if info.name == layer:
                return info.stride
        raise KeyError(f"{layer} is not among the layers this encoder computes ({', '.join(self.names)})")

    @property
    def max_stride(self) -> int:
        """The largest stride of the computed layers: windows aligned to it share the whole image's grids."""
        return max(info.stride for info in self._computed)

    @property
    def min_side(self) -> int:
        """The smallest input side that leaves a position at every computed layer (for VGG: its deepest stride)."""
        return smallest_side(self._computed)

    def _body_in(self, dtype: torch.dtype) -> nn.ModuleList:
        """The layers with their parameters (and buffers) cast to ``dtype`` once: autocast would cast every weight at
        every call.  Kept until the encoder is moved or converted (``_apply``); the float32 ones stay as they are.
        """
        if self._low_precision_body is None or self._low_precision_body[0] != dtype:
            # deepcopy with the parameters pre-mapped to their cast copies: no second float32 copy on the way
            cast = {id(p): nn.Parameter(p.detach().to(dtype), requires_grad=False) for p in self.body.parameters()}
            self._low_precision_body = (dtype, copy.deepcopy(self.body, cast).to(dtype))
        return self._low_precision_body[1]

    def _apply(self, fn, *args, **kwargs):  # nn.Module._apply's own signature, untyped
        self._low_precision_body = None  # .to(device / memory format) and the like: cast again on next use
        return super()._apply(fn, *args, **kwargs)


def check_layer_names(layers: Iterable[str], known: Sequence[LayerInfo], network: str) -> list[str]:
    """``layers`` as a list, or a one-sentence :class:`OptionError` naming the unknown ones and ``network``'s own."""
    layers = list(layers)
    names = [info.name for info in known]
    unknown = [name for name in layers if name not in names]
    if unknown:
        raise OptionError(f"unknown layer name(s) {', '.join(unknown)}; {network}'s layers are {', '.join(names)}")
    return layers


def smallest_side(layers: Iterable[LayerInfo]) -> int:
    """The smallest input side that leaves at least one position at every one of ``layers``."""
    side = 1
    for layer in layers:
        while layer.size(side) < 1:
            side += 1
    return side
