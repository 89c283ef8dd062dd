"""SWAG (painterly.nets.swag): the softmax over each layer, its scale, its place in runs and sessions, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from painterly.config import RunConfig
from painterly.errors import OptionError
from painterly.nets.registry import network
from painterly.nets.swag import SoftmaxSmoothedEncoder, softmax_smooth
from painterly.records import StepRecord
from painterly.session import Session
from painterly.stylize import stylize


def test_the_softmax_keeps_mean_one_and_undoes_the_per_channel_normalisation() -> None:
    generator = torch.Generator().manual_seed(0)
    raw = torch.relu(torch.randn(2, 8, 6, 5, generator=generator))
    means = torch.tensor([1.0, 0.5, 2.0, 1e-3, 1.0, 1.0, 3.0, 0.25])  # a nearly silent channel among them
    normalised = raw / means.view(1, -1, 1, 1)  # what Gatys's normalisation hands out: channel 3 in the hundreds
    smoothed = softmax_smooth(normalised, proportions=means / means.mean())
    assert smoothed.shape == raw.shape and smoothed.dtype == torch.float32
    torch.testing.assert_close(smoothed.mean(dim=(1, 2, 3)), torch.ones(2))
    # the same as smoothing the raw layer scaled to mean one: the silent channel does not become a spike
    torch.testing.assert_close(smoothed, softmax_smooth(raw / means.mean()))
    assert float(smoothed.max()) < 50 < float(softmax_smooth(normalised).max())
    # one softmax per image over the whole layer: shifting every value of a layer changes nothing
    torch.testing.assert_close(softmax_smooth(raw + 3.0), softmax_smooth(raw))
    assert softmax_smooth(raw.to(torch.bfloat16)).dtype == torch.float32


def test_the_wrapper_hands_out_smoothed_features_and_passes_gradients(tiny_weights) -> None:
    inner = network("vgg19").build(tiny_weights, ["relu1_1", "relu2_1"])
    encoder = SoftmaxSmoothedEncoder(inner)
    assert encoder.layers == inner.layers and encoder.computed_layers == inner.computed_layers
    image = torch.rand(1, 3, 24, 24, requires_grad=True)
    features = encoder(image)
    scale = inner.feature_scales["relu2_1"]
    expected = softmax_smooth(inner(image)["relu2_1"], proportions=scale / scale.mean())
    torch.testing.assert_close(features["relu2_1"], expected)
    features["relu2_1"].square().sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    encoder.compute_dtype = torch.bfloat16
    assert inner.compute_dtype == torch.bfloat16


def test_a_swag_run_lowers_its_style_loss_and_records_the_choice(pair: tuple[Path, Path]) -> None:
    records: list[StepRecord] = []
    stylize(*pair, network="random-vgg19", swag=True, size=40, start_size=None, iterations=12, device="cpu",
            on_step=records.append)  # fmt: skip
    first, last = records[0].losses["style"], records[-1].losses["style"]
    # (the smoothed layers' Gram matrices are larger than the plain ones: a softmax at T = 1 keeps their peaks)
    assert np.isfinite(last) and last < 0.9 * first, (first, last)
    assert RunConfig(network="random-vgg19").chosen_swag is network("random-vgg19").swag
    assert RunConfig(swag=True).chosen_swag


def test_swag_changes_the_picture_and_sessions_keep_its_targets_apart(pair, tiny_weights) -> None:
    session = Session("cpu")
    options = dict(weights=tiny_weights, size=40, start_size=None, iterations=5, device="cpu", tile_size=0)
    plain = session.run(*pair, RunConfig(**options))
    smoothed = session.run(*pair, RunConfig(swag=True, **options))
    again = Session("cpu").run(*pair, RunConfig(swag=True, **options))
    assert not np.array_equal(np.asarray(plain), np.asarray(smoothed))
    # the warm session's second job used its own SWAG targets: the same pixels as a fresh session
    assert np.array_equal(np.asarray(smoothed), np.asarray(again))


def test_swag_refuses_tiling_up_front() -> None:
    with pytest.raises(OptionError, match="tiling cannot be used with SWAG's softmax"):
        RunConfig(swag=True, tile_size=256)
