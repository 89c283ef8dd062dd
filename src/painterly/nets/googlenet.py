"""GoogLeNet (Inception v1, Szegedy et al. 2015) as torchvision defines it: its layers, and its stages from a state.

Every convolution is torchvision's ``BasicConv2d``: a convolution without bias, a batch normalisation (epsilon
0.001) and a ReLU; the normalisation is folded into the convolution (:mod:`painterly.nets.batchnorm`).  The stem:
``conv1`` (64 of 7 x 7, stride 2, padding 3), ``maxpool1`` (3 x 3, stride 2, ceil mode), ``conv2`` (64 of 1 x 1),
``conv3`` (192 of 3 x 3), ``maxpool2``; then inception blocks ``inception3a``, ``3b``, ``maxpool3``, ``4a`` to
``4e``, ``maxpool4`` (2 x 2, stride 2, ceil mode), ``5a``, ``5b``.  Each block concatenates four branches: a
1 x 1 convolution; 1 x 1 then 3 x 3; 1 x 1 then another 3 x 3 (the paper has 5 x 5 here; torchvision's model,
whose weights users bring, has 3 x 3); and a 3 x 3 max pooling of stride 1 then 1 x 1.  A block keeps the side
and sees one position beyond its own on each side, as its widest branches (a 3 x 3 window) do.

The auxiliary classifiers (``aux1``, ``aux2``) and the final classifier are in the layout (a file may carry them)
but are never run.  torchvision's pretrained model sets ``transform_input``: it takes the ImageNet-normalised input
and maps each channel back to ``(x - 0.5) / 0.5``; that is an input convention of mean 0.5 and standard deviation
0.5 on RGB in [0, 1] (:data:`GOOGLENET_CONVENTION`), applied here directly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from painterly.nets.base import INPUT, LayerInfo
from painterly.nets.batchnorm import fold_batch_norm
from painterly.nets.staged import InputConvention

__all__ = ["GOOGLENET_CONVENTION", "GOOGLENET_LAYERS", "ConvUnit", "GoogLeNetLayout", "googlenet_stages"]

#: What torchvision's ``transform_input`` amounts to on RGB in [0, 1]: ``(x - 0.5) / 0.5`` per channel.
GOOGLENET_CONVENTION = InputConvention((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

#: Each inception block: (input channels, 1x1, 3x3 reduce, 3x3, second reduce, its 3x3, pool projection) (the
#: widths of the paper's table 1).
_BLOCKS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}

#: The poolings between the blocks: after which block, the pooling's name and its kernel.
_POOLS = {"inception3b": ("maxpool3", 3), "inception4e": ("maxpool4", 2)}


def _describe() -> tuple[LayerInfo, ...]:
    conv1 = INPUT.then("conv1", channels=64, kernel=7, stride=2, padding=3)
    maxpool1 = conv1.then("maxpool1", kernel=3, stride=2, ceil_mode=True, memory_slots=2)
    conv2 = maxpool1.then("conv2", channels=64)
    conv3 = conv2.then("conv3", channels=192, kernel=3, padding=1)
    layers = [conv1, maxpool1, conv2, conv3, conv3.then("maxpool2", kernel=3, stride=2, ceil_mode=True, memory_slots=2)]
    for name, (_, ones, _, threes, _, seconds, projections) in _BLOCKS.items():
        layers.append(layers[-1].then(name, channels=ones + threes + seconds + projections, kernel=3, padding=1))
        if name in _POOLS:
            pool, kernel = _POOLS[name]
            layers.append(layers[-1].then(pool, kernel=kernel, stride=2, ceil_mode=True, memory_slots=2))
    return tuple(layers)


#: Every addressable layer of GoogLeNet in forward order.
GOOGLENET_LAYERS: tuple[LayerInfo, ...] = _describe()


class ConvUnit(nn.Module):
    """torchvision's ``BasicConv2d`` layout: ``conv`` (no bias) and ``bn`` (epsilon 0.001), then a ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def folded(self) -> nn.Sequential:
        """The unit as run here: the normalisation folded into the convolution, then the ReLU."""
        return nn.Sequential(fold_batch_norm(self.conv, self.bn.eval()), nn.ReLU())


class _InceptionLayout(nn.Module):
    def __init__(self, widths: tuple[int, int, int, int, int, int, int]) -> None:
        super().__init__()
        in_channels, ones, reduce, threes, reduce2, seconds, projections = widths
        self.branch1 = ConvUnit(in_channels, ones, 1)
        self.branch2 = nn.Sequential(ConvUnit(in_channels, reduce, 1), ConvUnit(reduce, threes, 3, padding=1))
        self.branch3 = nn.Sequential(ConvUnit(in_channels, reduce2, 1), ConvUnit(reduce2, seconds, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), ConvUnit(in_channels, projections, 1))


def _folded(module: nn.Module) -> nn.Module:
    """A unit, or a sequence of units and poolings, with every normalisation folded."""
    if isinstance(module, ConvUnit):
        return module.folded()
    if isinstance(module, nn.Sequential):
        return nn.Sequential(*(_folded(part) for part in module))
    return module


class _Branches(nn.Module):
    """Runs each branch on the same input and concatenates their channels (an inception block)."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class _AuxLayout(nn.Module):
    def __init__(self, in_channels: int, classes: int) -> None:
        super().__init__()
        self.conv = ConvUnit(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, classes)


class GoogLeNetLayout(nn.Module):
    """GoogLeNet's parameters under torchvision's names: what a file loads into (``aux``: with the auxiliary heads
    that torchvision's downloaded file carries)."""

    def __init__(self, *, aux: bool = False, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = ConvUnit(3, 64, 7, stride=2, padding=3)
        self.conv2 = ConvUnit(64, 64, 1)
        self.conv3 = ConvUnit(64, 192, 3, padding=1)
        for name, widths in _BLOCKS.items():
            self.add_module(name, _InceptionLayout(widths))
        if aux:
            self.aux1 = _AuxLayout(512, classes)
            self.aux2 = _AuxLayout(528, classes)
        self.fc = nn.Linear(1024, classes)


def googlenet_stages(model: GoogLeNetLayout) -> list[tuple[LayerInfo, nn.Module]]:
    """The encoder's stages, normalisations folded, each the module that makes its layer from the previous one."""
    modules: dict[str, nn.Module] = {
        "conv1": model.conv1.folded(),
        "maxpool1": nn.MaxPool2d(3, 2, ceil_mode=True),
        "conv2": model.conv2.folded(),
        "conv3": model.conv3.folded(),
        "maxpool2": nn.MaxPool2d(3, 2, ceil_mode=True),
    }
    for name in _BLOCKS:
        block = model.get_submodule(name)
        assert isinstance(block, _InceptionLayout)
        branches = [block.branch1, block.branch2, block.branch3, block.branch4]
        modules[name] = _Branches([_folded(branch) for branch in branches])
        if name in _POOLS:
            pool, kernel = _POOLS[name]
            modules[pool] = nn.MaxPool2d(kernel, 2, ceil_mode=True)
    return [(info, modules[info.name]) for info in GOOGLENET_LAYERS]
