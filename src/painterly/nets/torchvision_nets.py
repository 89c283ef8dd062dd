"""The networks users bring torchvision-layout files for: VGG-16, AlexNet, GoogLeNet, ResNet-50.

A file is read against its network's manifest (:mod:`painterly.nets.torchvision_files`), loaded into our own model
code in torchvision's layout (:mod:`painterly.nets.vgg16`, :mod:`~painterly.nets.alexnet`,
:mod:`~painterly.nets.googlenet`, :mod:`~painterly.nets.resnet`; nothing of torchvision is imported), and the
channel means the encoder balances the layers by are measured once per file and kept
(:mod:`painterly.nets.kept_means`).  VGG-16 becomes :class:`~painterly.nets.weights.VGGWeights` for VGG's own
encoder (normalisation folded into its weights, max or average pooling); the others are
:class:`~painterly.nets.weights.NetworkWeights` built into a :class:`~painterly.nets.staged.StagedEncoder`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from painterly.nets.alexnet import ALEXNET_LAYERS, AlexNetLayout, alexnet_stages
from painterly.nets.base import LayerInfo, Pooling
from painterly.nets.encoder import measure_channel_means
from painterly.nets.googlenet import GOOGLENET_CONVENTION, GOOGLENET_LAYERS, GoogLeNetLayout, googlenet_stages
from painterly.nets.kept_means import kept_means
from painterly.nets.normalization import mean_activations
from painterly.nets.resnet import RESNET50_LAYERS, ResNet50Layout, resnet50_stages
from painterly.nets.staged import InputConvention, StagedEncoder
from painterly.nets.torchvision_files import read_torchvision_file
from painterly.nets.vgg import VGG16_CONV_LAYERS
from painterly.nets.vgg16 import vgg16_conv_state
from painterly.nets.weights import NetworkWeights, VGGWeights

__all__ = [
    "IMAGENET_CONVENTION",
    "TORCHVISION_NETWORKS",
    "StagedNetwork",
    "build_staged",
    "load_alexnet",
    "load_googlenet",
    "load_resnet50",
    "load_vgg16",
    "staged_network",
]

#: torchvision's ImageNet input: RGB in [0, 1] normalised by ImageNet's mean and standard deviation.
IMAGENET_CONVENTION = InputConvention((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class StagedNetwork:
    """A torchvision-layout network run as a chain of stages: its layers, its model in torchvision's layout, the
    stages made of a loaded model, its input convention."""

    title: str
    layers: tuple[LayerInfo, ...]
    layout: Callable[[], nn.Module]
    stages: Callable[[Any], list[tuple[LayerInfo, nn.Module]]]
    convention: InputConvention


TORCHVISION_NETWORKS: dict[str, StagedNetwork] = {
    "alexnet": StagedNetwork("AlexNet", ALEXNET_LAYERS, AlexNetLayout, alexnet_stages, IMAGENET_CONVENTION),
    "googlenet": StagedNetwork("GoogLeNet", GOOGLENET_LAYERS, GoogLeNetLayout, googlenet_stages, GOOGLENET_CONVENTION),
    "resnet50": StagedNetwork("ResNet-50", RESNET50_LAYERS, ResNet50Layout, resnet50_stages, IMAGENET_CONVENTION),
}


def staged_network(name: str) -> StagedNetwork:
    """The staged torchvision-layout network ``name`` (``"alexnet"``, ``"googlenet"``, ``"resnet50"``)."""
    return TORCHVISION_NETWORKS[name]


def build_staged(weights: Any, layers: Iterable[str], *, pooling: Pooling = "max") -> StagedEncoder:
    """The encoder of a staged network's weights for ``layers`` (``pooling``: these networks pool as trained)."""
    if not isinstance(weights, NetworkWeights) or weights.network not in TORCHVISION_NETWORKS:
        raise TypeError(f"expected the NetworkWeights of a torchvision-layout network, not {type(weights).__name__}")
    network = TORCHVISION_NETWORKS[weights.network]
    with torch.device("meta"):  # no random initialisation: the state's tensors become the parameters
        model = network.layout()
    model.load_state_dict(weights.state, strict=True, assign=True)
    return StagedEncoder(network.stages(model.eval()), layers, title=network.title, convention=network.convention,
                         feature_means=weights.channel_means)  # fmt: skip


def _load_staged(name: str, path: str | os.PathLike[str]) -> NetworkWeights:
    network = TORCHVISION_NETWORKS[name]
    file = read_torchvision_file(path, name, network.title)
    raw = NetworkWeights(network=name, state=file.state, source=file.source)
    names = [info.name for info in network.layers]

    def measure() -> dict[str, torch.Tensor]:
        return mean_activations(build_staged(raw, names), magnitude=True)

    return dataclasses.replace(raw, channel_means=kept_means(name, file.sha256, names, measure))


def load_vgg16(path: str | os.PathLike[str]) -> VGGWeights:
    """A torchvision VGG-16 file as VGG weights (``torchvision`` preprocessing), its filters' means measured once."""
    file = read_torchvision_file(path, "vgg16", "VGG-16")
    raw = VGGWeights(state=vgg16_conv_state(file.state), preprocessing="torchvision", source=file.source, depth=16)
    means = kept_means("vgg16", file.sha256, VGG16_CONV_LAYERS, lambda: measure_channel_means(raw))
    return dataclasses.replace(raw, channel_means=means)


def load_alexnet(path: str | os.PathLike[str]) -> NetworkWeights:
    """A torchvision AlexNet file, checked against its manifest, its layers' means measured once."""
    return _load_staged("alexnet", path)


def load_googlenet(path: str | os.PathLike[str]) -> NetworkWeights:
    """A torchvision GoogLeNet file (with or without its auxiliary heads), its layers' means measured once."""
    return _load_staged("googlenet", path)


def load_resnet50(path: str | os.PathLike[str]) -> NetworkWeights:
    """A torchvision ResNet-50 file, checked against its manifest, its layers' means measured once."""
    return _load_staged("resnet50", path)
