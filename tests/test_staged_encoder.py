"""The encoder of chained stages (painterly.nets.staged) and the exact geometry every network describes itself by."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from painterly.control.spatial import mask_for_layer
from painterly.errors import OptionError
from painterly.nets.base import INPUT, LayerInfo, Window, smallest_side
from painterly.nets.normalization import mean_activations
from painterly.nets.staged import InputConvention, StagedEncoder
from painterly.plan.memory import estimate_run_bytes


def _tiny_strided_network() -> list[tuple[LayerInfo, nn.Module]]:
    """Two strided 3x3 convolutions with "same" padding (as EfficientNet's), then a ceil-mode pooling."""
    torch.manual_seed(0)
    first = INPUT.then("stem", channels=4, kernel=3, stride=2, padding=1)
    second = first.then("block", channels=6, kernel=3, stride=2, padding=1)
    pooled = second.then("pool", kernel=3, stride=2, ceil_mode=True)
    return [
        (first, nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU())),
        (second, nn.Sequential(nn.Conv2d(4, 6, 3, 2, 1), nn.Hardtanh(-1.0, 3.0))),
        (pooled, nn.MaxPool2d(3, 2, ceil_mode=True)),
    ]


def _encoder(layers=("stem", "block", "pool"), **kwargs) -> StagedEncoder:
    convention = InputConvention((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    return StagedEncoder(_tiny_strided_network(), layers, title="tiny", convention=convention, **kwargs)


@pytest.mark.parametrize("side", [16, 17, 23, 30, 31])
def test_layer_sizes_equal_what_the_network_computes(side: int) -> None:
    encoder = _encoder()
    features = encoder(torch.rand(1, 3, side, side + 3))
    for info in encoder.computed_layers:
        assert features[info.name].shape[-2:] == (info.size(side), info.size(side + 3)), info.name


@pytest.mark.parametrize("side", [17, 21])
def test_masks_reach_every_layer_with_its_exact_shape(side: int) -> None:
    encoder = _encoder()
    mask = torch.zeros(1, 1, side, side)
    mask[..., :, : side // 2] = 1.0
    features = encoder(torch.rand(1, 3, side, side))
    for info in encoder.computed_layers:
        carried = mask_for_layer(mask, info.name, encoder.computed_layers)
        assert carried.shape[-2:] == features[info.name].shape[-2:]
        # the left half stays the (mostly) selected side at every depth, and values stay means of the mask
        assert carried[..., 0].mean() > 0.75 and carried[..., -1].mean() < 0.25
        assert carried.min() >= 0.0 and carried.max() <= 1.0


def test_vgg_geometry_is_unchanged_floor_division() -> None:
    pooled = (
        INPUT.then("c", channels=8, kernel=3, padding=1).then("p", kernel=2, stride=2).then("q", kernel=2, stride=2)
    )
    assert pooled.resampling == (Window(2, 2), Window(2, 2))
    assert [pooled.size(n) for n in (7, 8, 9, 13)] == [n // 4 for n in (7, 8, 9, 13)]
    assert pooled.on_floor_grid
    strided = INPUT.then("s", channels=8, kernel=3, stride=2, padding=1)
    assert not strided.on_floor_grid and strided.size(7) == 4


def test_min_side_and_memory_follow_the_exact_geometry() -> None:
    encoder = _encoder()
    assert encoder.min_side == smallest_side(encoder.computed_layers)
    encoder(torch.rand(1, 3, encoder.min_side, encoder.min_side))  # every layer has a position
    infos = encoder.computed_layers
    # 3 x 17 x 17 input: stem 9 x 9, block 5 x 5, pool 2 x 2 positions (ceil mode)
    assert [info.size(17) for info in infos] == [9, 5, 2]
    assert estimate_run_bytes(infos, 17, 17) > estimate_run_bytes(infos, 16, 16)


def test_feature_means_make_each_channel_magnitude_one_on_the_measured_pictures() -> None:
    pictures = [torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    raw = _encoder()
    means = mean_activations(raw, pictures, magnitude=True)
    scaled = _encoder(feature_means=means)
    again = mean_activations(scaled, pictures, magnitude=True)
    for layer, values in again.items():
        live = means[layer] > 1e-8
        torch.testing.assert_close(values[live], torch.ones_like(values[live]), rtol=1e-4, atol=1e-4)


def test_the_pass_stops_at_the_deepest_requested_layer_and_checks_names() -> None:
    encoder = _encoder(layers=("stem",))
    assert [info.name for info in encoder.computed_layers] == ["stem"]
    assert len(encoder.body) == 1
    with pytest.raises(OptionError, match=r"unknown layer name.*relu9_9.*tiny's layers are stem, block, pool"):
        _encoder(layers=("relu9_9",))


def test_low_precision_pass_is_close_and_hands_out_float32() -> None:
    encoder = _encoder()
    image = torch.rand(1, 3, 20, 20)
    full = encoder(image)
    encoder.compute_dtype = torch.bfloat16
    low = encoder(image)
    for layer in full:
        assert low[layer].dtype == torch.float32
        torch.testing.assert_close(low[layer], full[layer], rtol=0.05, atol=0.05)
    assert next(encoder.activations(image, in_compute_dtype=True))[1].dtype == torch.bfloat16


def test_gradients_flow_to_the_image_only() -> None:
    encoder = _encoder()
    image = torch.rand(1, 3, 20, 20, requires_grad=True)
    sum(f.square().sum() for f in encoder(image).values()).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in encoder.parameters())
