"""The encoder: one pass, requested layers only, frozen, preprocessing and normalisation inside."""

from __future__ import annotations

import pytest
import torch

from painterly.errors import OptionError
from painterly.nets.encoder import LAYER_NAMES, VGGEncoder, measure_channel_means
from painterly.nets.normalization import fold_normalization
from painterly.nets.vgg import VGG19_CONV_LAYERS
from painterly.nets.weights import VGGWeights

from .conftest import random_vgg_weights


def test_returns_exactly_the_requested_layers_and_stops_at_the_deepest(tiny_weights: VGGWeights) -> None:
    encoder = VGGEncoder(tiny_weights, ["relu3_1", "relu1_1", "pool2"])
    features = encoder(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert set(features) == {"relu1_1", "relu3_1", "pool2"}
    assert features["pool2"].shape[-2:] == (8, 8)
    assert encoder.names[-1] == "relu3_1" and len(encoder.body) == LAYER_NAMES.index("relu3_1") + 1


def test_network_weights_are_frozen_and_image_gets_gradients(tiny_weights: VGGWeights) -> None:
    encoder = VGGEncoder(tiny_weights, ["relu2_1"])
    assert not any(p.requires_grad for p in encoder.parameters())
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
    encoder(image)["relu2_1"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_caffe_preprocessing_is_bgr_0_255_minus_mean() -> None:
    weights = random_vgg_weights()
    caffe = VGGEncoder(VGGWeights(weights.state, "caffe", "t", weights.channel_means), ["conv1_1"])
    image = torch.zeros(1, 3, 2, 2)
    image[:, 0] = 1.0  # pure red
    x = caffe.preprocess(image)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_unknown_layers_are_named_in_the_error(tiny_weights: VGGWeights) -> None:
    with pytest.raises(OptionError, match="relu9_9"):
        VGGEncoder(tiny_weights, ["relu1_1", "relu9_9"])


def test_max_pooling_before_an_unread_relu_changes_no_feature_and_no_gradient(tiny_weights: VGGWeights) -> None:
    """relu then max-pool equals max-pool then relu, forward and backward, bit for bit (fewer elements to ReLU)."""
    read = ["relu1_1", "relu2_1", "pool2", "relu3_1"]
    swapped = VGGEncoder(tiny_weights, read)
    plain = VGGEncoder(tiny_weights, [*read, "relu1_2", "relu2_2"])  # reading the pre-pool ReLUs keeps their order
    kinds = [type(module).__name__ for module in swapped.body]
    assert kinds[:5] == ["Conv2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU"]  # conv1_2, pool1, relu1_2
    assert [type(module).__name__ for module in plain.body][:5] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"]
    image = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(3))
    results = []
    for encoder in (swapped, plain):
        x = image.clone().requires_grad_(True)
        features = encoder(x)
        torch.autograd.backward([features[layer] * (i + 1) for i, layer in enumerate(read)],
                                [torch.ones_like(features[layer]) for layer in read])  # fmt: skip
        results.append(({layer: features[layer].detach() for layer in read}, x.grad))
    (swapped_features, swapped_grad), (plain_features, plain_grad) = results
    assert all(torch.equal(swapped_features[layer], plain_features[layer]) for layer in read)
    assert float(swapped_features["pool2"].min()) == 0.0  # the pooled features are ReLU'd (and some are zero)
    assert swapped_grad is not None and torch.equal(swapped_grad, plain_grad)


def test_average_pooling_changes_pooled_features(tiny_weights: VGGWeights) -> None:
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    max_features = VGGEncoder(tiny_weights, ["pool1"], pooling="max")(image)["pool1"]
    avg_features = VGGEncoder(tiny_weights, ["pool1"], pooling="avg")(image)["pool1"]
    assert torch.all(max_features >= avg_features - 1e-6) and not torch.allclose(max_features, avg_features)


def test_normalisation_divides_every_activation_by_its_filter_mean() -> None:
    weights = random_vgg_weights(width=6)
    images = [torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    means = measure_channel_means(weights, images)
    raw = VGGEncoder(weights, ["relu1_2", "relu3_1", "relu5_1"], normalize=False)
    normalised = VGGEncoder(
        VGGWeights(weights.state, weights.preprocessing, "t", means), ["relu1_2", "relu3_1", "relu5_1"]
    )
    probe = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    raw_features, norm_features = raw(probe), normalised(probe)
    for layer in raw_features:
        conv = layer.replace("relu", "conv")
        scale = torch.where(means[conv] > 1e-8, 1 / means[conv].clamp_min(1e-8), torch.ones_like(means[conv]))
        assert torch.allclose(norm_features[layer], raw_features[layer] * scale.view(1, -1, 1, 1), rtol=1e-4, atol=1e-5)
    # on the calibration images themselves, every live filter now averages one
    folded = fold_normalization(weights.state, means, VGG19_CONV_LAYERS)
    assert set(folded) == set(weights.state)
    calibrated = measure_channel_means(VGGWeights(folded, weights.preprocessing, "t"), images)
    live = means["conv3_1"] > 1e-8
    assert torch.allclose(calibrated["conv3_1"][live], torch.ones(int(live.sum())), atol=1e-4)


def test_requested_conv_outputs_are_not_overwritten_by_in_place_relu(tiny_weights: VGGWeights) -> None:
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    both = VGGEncoder(tiny_weights, ["conv1_1", "relu1_1", "relu2_1"])(image)
    assert float(both["conv1_1"].min()) < 0, "the conv output keeps its negative values"
    assert torch.equal(both["relu1_1"], both["conv1_1"].clamp_min(0))
    alone = VGGEncoder(tiny_weights, ["relu2_1"])(image)["relu2_1"]
    assert torch.allclose(alone, both["relu2_1"])
