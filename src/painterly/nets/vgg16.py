"""VGG-16 in torchvision's layout: what a user's file loads into, and its convolutions under VGG's layer names.

torchvision numbers VGG-16's layers as one sequence (``features.0`` is ``conv1_1``, ``features.2`` ``conv1_2``,
``features.4`` the first pooling, ...) and adds a classifier (``classifier.0``, ``.3``, ``.6``) that style transfer
never runs.  The convolutions are renamed to VGG's (``conv1_1`` ... ``conv5_3``) so VGG-19's encoder runs VGG-16
too, Gatys et al.'s normalisation folded in (:class:`painterly.nets.encoder.VGGEncoder`).
"""

from __future__ import annotations

from torch import Tensor, nn

from painterly.nets.vgg import VGG16_LAYERS

__all__ = ["VGG16Layout", "vgg16_conv_state"]


class VGG16Layout(nn.Module):
    """VGG-16's parameters under torchvision's names (``features.N``, ``classifier.N``)."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        features: list[nn.Module] = []
        in_channels = 3
        for info in VGG16_LAYERS:
            if info.name.startswith("conv"):
                features.append(nn.Conv2d(in_channels, info.channels, 3, padding=1))
                in_channels = info.channels
            elif info.name.startswith("relu"):
                features.append(nn.ReLU())
            else:
                features.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(4096, classes),
        )


def vgg16_conv_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The convolutions of a torchvision VGG-16 state (checked against its manifest) under VGG's names: the layer
    at position N of ``features`` is VGG-16's N-th layer."""
    return {
        f"{info.name}.{kind}": state[f"features.{index}.{kind}"]
        for index, info in enumerate(VGG16_LAYERS)
        if info.name.startswith("conv")
        for kind in ("weight", "bias")
    }
