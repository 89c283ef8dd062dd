"""ResNet-50 as torchvision defines it (v1.5: a block strides in its 3 x 3 convolution): layers and stages.

The stem: a 7 x 7 convolution of stride 2 (padding 3), batch normalisation and ReLU (layer ``conv1``), then a 3 x 3
max pooling of stride 2, padding 1 (``maxpool``).  Four stages of bottleneck blocks follow, 3, 4, 6 and 3 blocks
of width 64, 128, 256 and 512 (each block's output four times as wide): 1 x 1, 3 x 3 (the stage's stride, 2 for
all but the first, in its first block), 1 x 1, each with batch normalisation, added to a shortcut (a strided
1 x 1 convolution with normalisation where the shape changes) and passed through a ReLU.  Each block is an
addressable layer, the last of a stage named as torchvision names the stage (``layer3`` is the output of
``model.layer3``, its sixth block), the others by their position (``layer3.0`` ... ``layer3.4``).  Every batch
normalisation is folded into its convolution (:mod:`painterly.nets.batchnorm`); the classifier is in the layout
(a file carries it) but never run.
"""

from __future__ import annotations

from torch import Tensor, nn

from painterly.nets.base import INPUT, LayerInfo
from painterly.nets.batchnorm import fold_batch_norm

__all__ = ["RESNET50_LAYERS", "Bottleneck", "ResNet50Layout", "resnet50_stages"]

#: (stage, blocks, width of its 3 x 3 convolutions, stride of its first block).
_STAGES: tuple[tuple[int, int, int, int], ...] = ((1, 3, 64, 1), (2, 4, 128, 2), (3, 6, 256, 2), (4, 3, 512, 2))
_EXPANSION = 4


def _block_names(stage: int, blocks: int) -> list[str]:
    return [f"layer{stage}.{index}" for index in range(blocks - 1)] + [f"layer{stage}"]


def _describe() -> tuple[LayerInfo, ...]:
    conv1 = INPUT.then("conv1", channels=64, kernel=7, stride=2, padding=3)
    layers = [conv1, conv1.then("maxpool", kernel=3, stride=2, padding=1, memory_slots=2)]
    for stage, blocks, width, stride in _STAGES:
        for index, name in enumerate(_block_names(stage, blocks)):
            step = stride if index == 0 else 1
            # the 3 x 3 convolution is the widest window of a block and holds its stride (its shortcut's strided
            # 1 x 1 makes the same number of positions: ceil(n / 2))
            layers.append(layers[-1].then(name, channels=width * _EXPANSION, kernel=3, stride=step, padding=1))
    return tuple(layers)


#: Every addressable layer of ResNet-50 in forward order.
RESNET50_LAYERS: tuple[LayerInfo, ...] = _describe()


class Bottleneck(nn.Module):
    """A bottleneck block under torchvision's names (``conv1`` ... ``bn3``, ``downsample.0``/``.1``)."""

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * _EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def folded(self) -> _Residual:
        """The block as run here: every normalisation folded into its convolution."""
        self.eval()
        main = nn.Sequential(
            fold_batch_norm(self.conv1, self.bn1),
            nn.ReLU(),
            fold_batch_norm(self.conv2, self.bn2),
            nn.ReLU(),
            fold_batch_norm(self.conv3, self.bn3),
        )
        shortcut: nn.Module = nn.Identity()
        if self.downsample is not None:
            conv, norm = self.downsample
            assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
            shortcut = fold_batch_norm(conv, norm)
        return _Residual(main, shortcut)


class _Residual(nn.Module):
    """``relu(main(x) + shortcut(x))``."""

    def __init__(self, main: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.shortcut(x)).relu()


class ResNet50Layout(nn.Module):
    """ResNet-50's parameters under torchvision's names: what a file loads into."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_channels = 64
        for stage, blocks, width, stride in _STAGES:
            layer = []
            for index in range(blocks):
                layer.append(Bottleneck(in_channels, width, stride if index == 0 else 1))
                in_channels = width * _EXPANSION
            self.add_module(f"layer{stage}", nn.Sequential(*layer))
        self.fc = nn.Linear(in_channels, classes)


def resnet50_stages(model: ResNet50Layout) -> list[tuple[LayerInfo, nn.Module]]:
    """The encoder's stages, normalisations folded, each the module that makes its layer from the previous one."""
    model.eval()
    modules: list[nn.Module] = [
        nn.Sequential(fold_batch_norm(model.conv1, model.bn1), nn.ReLU()),
        nn.MaxPool2d(3, 2, 1),
    ]
    for stage, _, _, _ in _STAGES:
        for block in model.get_submodule(f"layer{stage}").children():
            assert isinstance(block, Bottleneck)
            modules.append(block.folded())
    return list(zip(RESNET50_LAYERS, modules, strict=True))
