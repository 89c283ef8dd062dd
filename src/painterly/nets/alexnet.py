"""AlexNet as torchvision defines it (Krizhevsky's one-tower variant): its layers, and its stages from a state.

Five convolutions, each followed by a ReLU: 64 filters of 11 x 11 at stride 4 (padding 2), a 3 x 3 max pooling of
stride 2, 192 of 5 x 5 (padding 2), the same pooling, then 384, 256 and 256 of 3 x 3 (padding 1) and a last
pooling; the classifier (three fully connected layers on a 6 x 6 average) is loaded with the file but never run.
Layers are named ``conv1``, ``relu1``, ``pool1``, ... ``relu5``, ``pool5``.  Its first convolution and poolings
keep partial border positions (their windows do not tile the input), so tiling refuses it up front.
"""

from __future__ import annotations

from torch import nn

from painterly.nets.base import INPUT, LayerInfo

__all__ = ["ALEXNET_LAYERS", "AlexNetLayout", "alexnet_stages"]

#: (convolution, its filters, kernel, stride, padding, whether a pooling follows its ReLU).
_CONVS: tuple[tuple[int, int, int, int, int, bool], ...] = (
    (1, 64, 11, 4, 2, True),
    (2, 192, 5, 1, 2, True),
    (3, 384, 3, 1, 1, False),
    (4, 256, 3, 1, 1, False),
    (5, 256, 3, 1, 1, True),
)


def _describe() -> tuple[LayerInfo, ...]:
    layers: list[LayerInfo] = []
    previous = INPUT
    for index, width, kernel, stride, padding, pooled in _CONVS:
        conv = previous.then(f"conv{index}", channels=width, kernel=kernel, stride=stride, padding=padding)
        previous = conv.then(f"relu{index}")
        layers += [conv, previous]
        if pooled:
            previous = previous.then(f"pool{index}", kernel=3, stride=2, memory_slots=2)
            layers.append(previous)
    return tuple(layers)


#: Every addressable layer of AlexNet in forward order.
ALEXNET_LAYERS: tuple[LayerInfo, ...] = _describe()


class AlexNetLayout(nn.Module):
    """AlexNet's parameters under torchvision's names (``features.N``, ``classifier.N``): what a file loads into."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        features: list[nn.Module] = []
        in_channels = 3
        for _, width, kernel, stride, padding, pooled in _CONVS:
            features += [nn.Conv2d(in_channels, width, kernel, stride, padding), nn.ReLU()]
            features += [nn.MaxPool2d(3, 2)] if pooled else []
            in_channels = width
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, classes),
        )


def alexnet_stages(model: AlexNetLayout) -> list[tuple[LayerInfo, nn.Module]]:
    """The encoder's stages: each layer of ``model.features`` as the addressable layer of the same position."""
    return list(zip(ALEXNET_LAYERS, model.features, strict=True))
