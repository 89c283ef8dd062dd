"""random-multiscale (painterly.nets.random_multiscale): fixed random filters, a run that stylises, exact tiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from painterly.control.spatial import mask_for_layer
from painterly.nets.random_multiscale import KERNEL_SIZES, RANDOM_MULTISCALE_SEED, random_multiscale_weights
from painterly.nets.registry import network
from painterly.records import StepRecord
from painterly.stylize import stylize

from .conftest import assert_tiling_is_exact


def test_the_filters_are_fixed_zero_mean_and_balanced() -> None:
    weights = random_multiscale_weights()
    first = weights.state["k3.weight"]
    generator = torch.Generator().manual_seed(RANDOM_MULTISCALE_SEED)
    drawn = torch.randn(128, 3, 3, 3, generator=generator) * (2.0 / 27) ** 0.5
    torch.testing.assert_close(first, drawn - drawn.mean(dim=(1, 2, 3), keepdim=True))
    for size in KERNEL_SIZES:
        assert weights.state[f"k{size}.weight"].mean(dim=(1, 2, 3)).abs().max() < 1e-6
    assert weights.channel_means is not None and weights.channel_means["maps"].shape == (1024,)


def test_its_layer_keeps_the_image_size_and_a_run_lowers_the_style_loss(pair: tuple[Path, Path]) -> None:
    spec = network("random-multiscale")
    encoder = spec.build(spec.default_weights(), ["maps"])
    assert encoder(torch.rand(1, 3, 21, 30))["maps"].shape == (1, 1024, 21, 30)
    mask = torch.zeros(1, 1, 21, 30)
    mask[..., :15] = 1.0
    carried = mask_for_layer(mask, "maps", encoder.computed_layers)
    assert torch.equal(carried, mask)  # stride 1, same padding: the mask as it is
    records: list[StepRecord] = []
    stylize(*pair, network="random-multiscale", size=32, start_size=None, iterations=8, device="cpu",
            on_step=records.append)  # fmt: skip
    first, last = records[0].losses["style"], records[-1].losses["style"]
    assert np.isfinite(last) and last < 0.5 * first, (first, last)


def test_tiled_loss_and_gradient_equal_untiled_with_a_full_margin() -> None:
    spec = network("random-multiscale")
    encoder = spec.build(spec.default_weights(), ["maps"])
    generator = torch.Generator().manual_seed(0)
    content, style, image = (torch.rand(1, 3, 64, 80, generator=generator) for _ in range(3))
    # margin: the layer's reach (27 px) rounded up to a multiple of its stride
    assert_tiling_is_exact(encoder, content, style, image, content_layer_weights={"maps": 1.0},
                           style_layer_weights={"maps": 10.0}, margin=32)  # fmt: skip
