"""Networks: the Encoder protocol, layer descriptions checked against real forward passes, the registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import pytest
import torch
from torch import Tensor, nn

from painterly.control.spatial import mask_for_layer
from painterly.errors import OptionError
from painterly.nets import registry as nets_registry
from painterly.nets.base import INPUT, Encoder, LayerInfo
from painterly.nets.encoder import VGGEncoder
from painterly.nets.registry import NetworkSpec, WeightSource, network, register_network
from painterly.nets.vgg import LAYER_NAMES, VGG19_LAYERS
from painterly.nets.weights import VGGWeights
from painterly.objective.tiled import exact_margin, tiled_features
from painterly.stylize import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS

from .conftest import random_vgg_weights


def test_the_vgg_encoder_is_an_encoder(tiny_weights: VGGWeights) -> None:
    encoder = network("vgg19").build(tiny_weights, ["relu2_1", "relu1_1"])
    assert isinstance(encoder, VGGEncoder) and isinstance(encoder, Encoder)
    assert not isinstance(nn.Conv2d(3, 4, 3), Encoder), "the check tells a plain module from an encoder"
    image = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    features = encoder(image)
    assert set(features) == set(encoder.layers) == {"relu1_1", "relu2_1"}
    assert [layer for layer, _ in encoder.activations(image)] == ["relu1_1", "relu2_1"]  # in forward order
    assert [info.name for info in encoder.computed_layers] == list(LAYER_NAMES[: LAYER_NAMES.index("relu2_1") + 1])
    assert encoder.max_stride == encoder.stride("relu2_1") == 2 and encoder.stride("relu1_1") == 1
    assert encoder.to(memory_format=torch.channels_last) is encoder and encoder.compute_dtype is None


def _every_layer(weights: VGGWeights, height: int, width: int) -> tuple[VGGEncoder, dict[str, Tensor]]:
    encoder = VGGEncoder(weights, LAYER_NAMES)
    with torch.no_grad():
        return encoder, encoder(torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("which", ["tiny", "real"])
def test_strides_and_widths_are_what_the_network_produces(which: str, request: pytest.FixtureRequest) -> None:
    """Each layer's stride and channels, against the shapes of a real pass at sides that are no multiple of 32."""
    weights = random_vgg_weights(width=5) if which == "tiny" else request.getfixturevalue("real_weights")
    height, width = 67, 101
    encoder, features = _every_layer(weights, height, width)
    assert [info.name for info in encoder.computed_layers] == list(LAYER_NAMES)
    for info in encoder.computed_layers:
        produced = features[info.name]
        assert produced.shape[1] == info.channels, info.name
        assert produced.shape[-2:] == (height // info.stride, width // info.stride), info.name
    if which == "real":  # the ImageNet network's widths are the registry's description of VGG-19
        assert encoder.computed_layers == VGG19_LAYERS == network("vgg19").layers


def _seen_columns(forward: Callable[[Tensor], dict[str, Tensor]], image: Tensor, layer: str, column: int) -> range:
    """The input columns that position ``column`` of ``layer`` depends on: where its gradient is not zero.

    The network must be positive throughout (positive weights and inputs, average pooling), so no ReLU or maximum
    hides a dependence: the support of the gradient is then exactly the receptive field.
    """
    pixels = image.clone().requires_grad_(True)
    forward(pixels)[layer][..., column].sum().backward()
    assert pixels.grad is not None
    seen = pixels.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    return range(int(seen.min()), int(seen.max()) + 1)


def _reaches_beyond_its_block(
    forward: Callable[[Tensor], dict[str, Tensor]], image: Tensor, info: LayerInfo, column: int
) -> int:
    seen = _seen_columns(forward, image, info.name, column)
    return max(column * info.stride - seen.start, seen.stop - (column + 1) * info.stride)


def test_reach_is_how_far_a_positions_receptive_field_extends_beyond_its_block() -> None:
    """Measured on every VGG-19 layer with a positive network (so the receptive field is where the gradient is)."""
    weights = random_vgg_weights(width=6)
    positive = VGGWeights({k: v.abs() for k, v in weights.state.items()}, "torchvision", "t", weights.channel_means)
    encoder = VGGEncoder(positive, LAYER_NAMES, pooling="avg")
    image = 0.5 + 0.5 * torch.rand(1, 3, 32, 416, generator=torch.Generator().manual_seed(4))  # above the mean
    for info in encoder.computed_layers:
        column = 192 // info.stride  # a block well inside the image, on every grid
        assert _reaches_beyond_its_block(encoder, image, info, column) == info.reach, info.name
    reach = {info.name: info.reach for info in encoder.computed_layers}
    assert (reach["relu3_1"], reach["relu4_2"], reach["relu5_1"]) == (10, 38, 70)  # theory.md §10


def test_reach_and_stride_of_a_network_that_strides_inside_its_convolutions() -> None:
    """LayerInfo.then describes convolutions that stride and pad unevenly (ResNet's stem) as a real pass has them."""
    torch.manual_seed(0)
    stem = nn.Conv2d(3, 4, 7, stride=2, padding=3)
    pool = nn.AvgPool2d(3, stride=2, padding=1)
    inner = nn.Conv2d(4, 6, 3, padding=1)
    with torch.no_grad():
        for conv in (stem, inner):
            conv.weight.abs_()
            conv.bias.abs_()
    infos = [INPUT.then("stem", channels=4, kernel=7, stride=2, padding=3)]
    infos.append(infos[-1].then("pool", kernel=3, stride=2, padding=1))
    infos.append(infos[-1].then("inner", channels=6, kernel=3, padding=1))

    def forward(image: Tensor) -> dict[str, Tensor]:
        first = stem(image)
        second = pool(first.relu())
        return {"stem": first, "pool": second, "inner": inner(second).relu()}

    image = torch.rand(1, 3, 16, 128, generator=torch.Generator().manual_seed(5))
    shapes = {name: features.shape for name, features in forward(image).items()}
    for info in infos:
        assert shapes[info.name][1] == info.channels and shapes[info.name][-1] == 128 // info.stride, info.name
        assert _reaches_beyond_its_block(forward, image, info, 64 // info.stride) == info.reach, info.name
    assert [(info.stride, info.reach) for info in infos] == [(2, 3), (4, 5), (4, 9)]


def test_the_exact_margin_makes_tiled_features_the_whole_images(tiny_weights: VGGWeights) -> None:
    layers = ["relu2_1", "relu3_1", "relu4_1"]
    encoder = VGGEncoder(tiny_weights, layers)
    margin = exact_margin(encoder, layers)
    assert margin == 32 and exact_margin(VGGEncoder(tiny_weights, ["relu5_1"]), ["relu5_1"]) == 80
    image = torch.rand(1, 3, 72, 104, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = encoder(image)
    exact = tiled_features(encoder, image, layers, core=32, margin=margin)
    narrower = tiled_features(encoder, image, layers, core=32, margin=margin - encoder.max_stride)
    for layer in layers:  # within float rounding of each layer's scale (other window widths, other kernels)
        assert (exact[layer] - whole[layer]).abs().max() <= 1e-5 * whole[layer].abs().max(), layer
    assert (narrower["relu4_1"] - whole["relu4_1"]).abs().max() > 1e-4 * whole["relu4_1"].abs().max()


@pytest.mark.parametrize("deepest", ["relu1_1", "pool1", "relu3_1", "pool3", "relu5_1", "pool5"])
def test_min_side_leaves_a_position_at_the_deepest_layer(tiny_weights: VGGWeights, deepest: str) -> None:
    encoder = VGGEncoder(tiny_weights, [deepest])
    side = encoder.min_side
    features = encoder(torch.rand(1, 3, side, side))[deepest]
    assert features.shape[-2:] == (1, 1)
    if side > 1:  # one pixel less leaves nothing at the deepest layer (or the pooling refuses)
        try:
            smaller = encoder(torch.rand(1, 3, side - 1, side - 1))[deepest]
        except RuntimeError:
            return
        assert smaller.numel() == 0


def test_masks_reach_every_layer_pooling_layers_included(tiny_weights: VGGWeights) -> None:
    encoder, features = _every_layer(tiny_weights, 45, 70)
    mask = torch.rand(1, 1, 45, 70, generator=torch.Generator().manual_seed(3))
    for layer in LAYER_NAMES:
        assert mask_for_layer(mask, layer, encoder.computed_layers).shape[-2:] == features[layer].shape[-2:], layer
    with pytest.raises(ValueError, match="relu5_1"):
        mask_for_layer(mask, "relu5_1", encoder.computed_layers[:10])


def test_the_registry_names_vgg19_first_and_refuses_unknown_networks() -> None:
    assert next(iter(nets_registry.NETWORKS)) == "vgg19"
    vgg19 = network("vgg19")
    assert vgg19.title == "VGG-19" and vgg19.weights.load is not None
    # stylize's defaults are the default network's (the --network option will read them from here)
    assert vgg19.content_layers == tuple(DEFAULT_CONTENT_LAYERS) and vgg19.style_layers == tuple(DEFAULT_STYLE_LAYERS)
    known = ", ".join(nets_registry.NETWORKS)
    assert known.startswith("vgg19, random-vgg19, ")
    with pytest.raises(OptionError, match=rf"^unknown network .inception-v9.; the known networks are {known}$"):
        network("inception-v9")


def test_layer_errors_name_the_networks_own_layers() -> None:
    with pytest.raises(OptionError) as info:
        network("vgg19").validate_layers(["relu1_1", "relu9_9", "layer4"])
    message = str(info.value)
    assert message.startswith("unknown layer name(s) relu9_9, layer4; VGG-19's layers are conv1_1, relu1_1,")
    assert message.endswith("relu5_4, pool5") and "\n" not in message


def test_a_network_registers_once_and_only_with_its_own_default_layers(
    tiny_weights: VGGWeights, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nets_registry, "NETWORKS", {})  # this test's own registry

    def build(weights: object, layers: Iterable[str], *, pooling: str = "max") -> Encoder:
        return VGGEncoder(tiny_weights, layers)

    spec = NetworkSpec(
        name="vgg19-tiny",
        title="tiny VGG-19",
        layers=VGG19_LAYERS,
        content_layers=("relu2_1",),
        style_layers=("relu1_1",),
        build=build,
        weights=WeightSource("random weights", fetch=nets_registry.fetch_vgg19_weights, load=str),
    )
    assert register_network(spec) is spec and network("vgg19-tiny") is spec
    assert set(network("vgg19-tiny").build(None, spec.style_layers)(torch.rand(1, 3, 8, 8))) == {"relu1_1"}
    with pytest.raises(ValueError, match="already registered"):
        register_network(spec)
    with pytest.raises(OptionError, match="tiny VGG-19's layers are conv1_1"):
        register_network(dataclasses.replace(spec, name="other", style_layers=("relu6_1",)))
    assert list(nets_registry.NETWORKS) == ["vgg19-tiny"]
    with pytest.raises(OptionError, match=r"the known networks are vgg19-tiny$"):
        network("vgg19")
