"""What follows the chosen network: its own default layers, its refusals up front (tiling, pooling, layer names),
masks carried through its strided layers; with a tiny strided network registered for the test."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from painterly.apps.cli import main
from painterly.config import RunConfig
from painterly.errors import OptionError
from painterly.nets.base import INPUT, Encoder, Pooling
from painterly.nets.registry import NETWORKS, NetworkSpec, WeightSource, register_network
from painterly.nets.staged import InputConvention, StagedEncoder
from painterly.nets.weights import NetworkWeights
from painterly.records import StepRecord
from painterly.stylize import stylize

from .conftest import make_image

STEM = INPUT.then("stem", channels=8, kernel=3, stride=2, padding=1)
BLOCK = STEM.then("block", channels=8, kernel=3, stride=2, padding=1)
DEEP = BLOCK.then("deep", channels=8, kernel=3, stride=2, padding=1)


def _weights() -> NetworkWeights:
    generator = torch.Generator().manual_seed(3)
    state = {}
    for name, cin in (("stem", 3), ("block", 8), ("deep", 8)):
        state[f"{name}.weight"] = torch.randn(8, cin, 3, 3, generator=generator) * (2 / (9 * cin)) ** 0.5
        state[f"{name}.bias"] = torch.full((8,), 0.1)
    return NetworkWeights(network="tiny-strided", state=state, source="test")


def _build(weights: Any, layers: Iterable[str], *, pooling: Pooling = "max") -> Encoder:
    stages = []
    for info in (STEM, BLOCK, DEEP):
        conv = nn.Conv2d(3 if info is STEM else 8, 8, 3, 2, 1)
        conv.weight.data.copy_(weights.state[f"{info.name}.weight"])
        conv.bias.data.copy_(weights.state[f"{info.name}.bias"])
        stages.append((info, nn.Sequential(conv, nn.ReLU())))
    convention = InputConvention((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    return StagedEncoder(stages, layers, title="tiny strided", convention=convention)


@pytest.fixture
def tiny_strided() -> Iterator[NetworkSpec]:
    spec = NetworkSpec(
        name="tiny-strided", title="tiny strided", layers=(STEM, BLOCK, DEEP), content_layers=("block",),
        style_layers=("stem", "block", "deep"), build=_build,
        weights=WeightSource(description="random, for tests", fetch=None, load=None, generate=_weights),
    )  # fmt: skip
    register_network(spec)
    try:
        yield spec
    finally:
        del NETWORKS["tiny-strided"]


def test_unset_layers_are_the_chosen_networks_own(tiny_strided, pair: tuple[Path, Path]) -> None:
    config = RunConfig(network="tiny-strided")
    assert config.content_layers is None and config.chosen_content_layers == ("block",)
    assert config.chosen_style_layers == ("stem", "block", "deep")
    assert RunConfig().chosen_content_layers == ("relu4_2",)  # VGG-19's, as before
    records: list[StepRecord] = []
    image = stylize(*pair, network="tiny-strided", size=41, start_size=None, iterations=10, device="cpu",
                    on_step=records.append)  # fmt: skip
    assert image.size == (41, 31)
    first, last = records[0].losses["style"], records[-1].losses["style"]
    assert np.isfinite(last) and last < first


def test_a_network_off_the_floor_grid_refuses_tiling_and_pooling_up_front(tiny_strided) -> None:
    with pytest.raises(OptionError, match=r"tiling cannot be used with tiny strided \(its layer stem keeps a partial"):
        RunConfig(network="tiny-strided", tile_size=256)
    with pytest.raises(OptionError, match="tiny strided pools as it was trained; --pooling avg is for VGG networks"):
        RunConfig(network="tiny-strided", pooling="avg")
    with pytest.raises(OptionError, match=r"unknown layer name.*relu4_2.*tiny strided's layers are stem, block, deep"):
        RunConfig(network="tiny-strided", content_layers=["relu4_2"])
    assert RunConfig(network="tiny-strided").tiling_unsupported()
    assert not RunConfig(network="random-vgg19").tiling_unsupported()


def test_the_cli_refuses_a_layer_the_network_lacks_with_exit_2(tiny_strided, pair, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.png"
    code = main([*map(str, pair), "--network", "tiny-strided", "--style-layers", "relu1_1", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "tiny strided's layers are stem, block, deep" in err and "Traceback" not in err
    assert not out.exists()


def test_masks_follow_a_strided_network(tiny_strided, tmp_path: Path) -> None:
    """Two styles in two halves: the masked run paints each half towards its own style."""
    content = tmp_path / "content.png"
    Image.fromarray(np.full((33, 41, 3), 128, np.uint8)).save(content)
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.fromarray(np.tile(np.array([220, 30, 30], np.uint8), (33, 41, 1))).save(red)
    Image.fromarray(np.tile(np.array([30, 30, 220], np.uint8), (33, 41, 1))).save(blue)
    left, right = np.zeros((33, 41), np.uint8), np.zeros((33, 41), np.uint8)
    left[:, :20], right[:, 21:] = 255, 255
    masks = [tmp_path / "left.png", tmp_path / "right.png"]
    Image.fromarray(left).save(masks[0])
    Image.fromarray(right).save(masks[1])
    image = stylize(content, [red, blue], style_masks=masks, network="tiny-strided", size=41, start_size=None,
                    iterations=30, device="cpu", content_weight=0.0)  # fmt: skip
    pixels = np.asarray(image, dtype=np.float32)
    left_half, right_half = pixels[:, :16], pixels[:, 25:]
    # red minus blue is larger on the left (the red style's region) than on the right
    assert (left_half[..., 0] - left_half[..., 2]).mean() > (right_half[..., 0] - right_half[..., 2]).mean() + 20


def test_per_style_layer_sets_take_the_networks_own_names(tiny_strided, tmp_path: Path) -> None:
    content, first, second = (make_image(tmp_path / f"{n}.png", (41, 31), seed=i) for i, n in enumerate("abc"))
    image = stylize(content, [first, second], per_style_layers=["stem,block", "deep"], network="tiny-strided",
                    size=41, start_size=None, iterations=3, device="cpu")  # fmt: skip
    assert image.size == (41, 31)
