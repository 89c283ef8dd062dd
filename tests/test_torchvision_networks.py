"""The networks users bring torchvision-layout files for (vgg16, alexnet, googlenet, resnet50): our model code against
torchvision's manifests, the loader's refusals, exact layer sizes, masks, tiling, batch normalisation folding.

No real weights exist here for these networks: every file is made in the test from our own layout with random
values (large tensors stored as one value per output channel, expanded, so the files stay small)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from painterly.apps.cli import main
from painterly.config import RunConfig
from painterly.control.spatial import mask_for_layer
from painterly.errors import OptionError
from painterly.nets import torchvision_nets
from painterly.nets.alexnet import AlexNetLayout
from painterly.nets.googlenet import GoogLeNetLayout
from painterly.nets.kept_means import kept_means, kept_means_path
from painterly.nets.registry import network
from painterly.nets.resnet import ResNet50Layout
from painterly.nets.torchvision_files import manifest, read_torchvision_file
from painterly.nets.vgg16 import VGG16Layout
from painterly.nets.weights import WeightsUnavailableError

LAYOUTS: dict[str, Callable[[], nn.Module]] = {
    "vgg16": VGG16Layout,
    "alexnet": AlexNetLayout,
    "googlenet": lambda: GoogLeNetLayout(aux=True),
    "resnet50": ResNet50Layout,
}
NAMES = list(LAYOUTS)


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAINTERLY_CACHE_DIR", str(tmp_path / "cache"))


def random_state(name: str, seed: int = 0) -> dict[str, Tensor]:
    """Our layout's entries with random values: weights scaled by fan-in, batch statistics away from (0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        entries = LAYOUTS[name]().state_dict()
    state: dict[str, Tensor] = {}
    for key, meta in entries.items():
        shape = tuple(meta.shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif len(shape) > 1 and meta.numel() > 2**18:  # one value per output channel, expanded: a small file
            fan_in = meta[0].numel()
            state[key] = (torch.randn(shape[0], *[1] * (len(shape) - 1), generator=generator) / fan_in).expand(shape)
        elif len(shape) > 1:
            state[key] = torch.randn(shape, generator=generator) * (2.0 / meta[0].numel()) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1 + (1.0 if key.endswith("bn.weight") else 0.0)
    return state


def save(state: dict[str, Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


def seed_means(name: str, path: Path) -> None:
    """Keep means of one for the file (as a previous run's measurement would be kept): loading reads them."""
    layers = [info.name for info in network(name).layers if name != "vgg16" or info.name.startswith("conv")]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    widths = {info.name: info.channels for info in network(name).layers}
    kept_means(name, sha, layers, lambda: {layer: torch.ones(widths[layer]) for layer in layers})


@pytest.mark.parametrize("name", NAMES)
def test_our_model_has_torchvisions_parameters_and_buffers(name: str) -> None:
    """Our layout's state dict equals the manifest taken from torchvision's model definition: names, shapes and
    dtypes, batch statistics and counters included."""
    with torch.device("meta"):
        state = LAYOUTS[name]().state_dict()
    ours = {key: (tuple(t.shape), str(t.dtype).removeprefix("torch.")) for key, t in state.items()}
    wanted = manifest(name)
    assert ours == wanted.entries
    assert wanted.torchvision == "0.25.0"
    counters = [key for key in wanted.entries if key.endswith("num_batches_tracked")]
    assert (len(counters) > 0) == (name in ("googlenet", "resnet50"))


@pytest.mark.parametrize("name", NAMES)
def test_a_saved_file_loads_and_every_layer_has_its_exact_size(name: str, tmp_path: Path) -> None:
    path = save(random_state(name), tmp_path / f"{name}.pth")
    seed_means(name, path)
    spec = network(name)
    weights = spec.weights_from(path)
    encoder = spec.build(weights, [info.name for info in spec.layers])
    with torch.no_grad():
        features = encoder(torch.rand(1, 3, 67, 83))
    assert [info.name for info in encoder.computed_layers] == [info.name for info in spec.layers]
    for info in spec.layers:
        assert features[info.name].shape[1:] == (info.channels, info.size(67), info.size(83)), info.name
        assert torch.isfinite(features[info.name]).all(), info.name


def test_a_files_means_are_measured_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(random_state("alexnet"), tmp_path / "alexnet.pth")
    measured: list[tuple[str, ...]] = []

    def fake_measure(encoder, images=None, *, magnitude=False):
        assert magnitude
        measured.append(encoder.layers)
        return {info.name: torch.full((info.channels,), 2.0) for info in encoder.computed_layers}

    monkeypatch.setattr(torchvision_nets, "mean_activations", fake_measure)
    first = torchvision_nets.load_alexnet(path)
    again = torchvision_nets.load_alexnet(path)
    assert measured == [tuple(info.name for info in network("alexnet").layers)]  # every layer, once
    assert kept_means_path("alexnet", hashlib.sha256(path.read_bytes()).hexdigest()).is_file()
    assert first.channel_means is not None and again.channel_means is not None
    assert torch.equal(again.channel_means["relu4"], torch.full((256,), 2.0))


def test_another_networks_file_names_the_first_missing_parameter(tmp_path: Path) -> None:
    path = save(random_state("alexnet"), tmp_path / "alexnet.pth")
    missing = sum(1 for key in manifest("resnet50").entries if not key.endswith("num_batches_tracked"))
    with pytest.raises(WeightsUnavailableError) as caught:
        network("resnet50").weights_from(path)
    assert str(caught.value) == (
        f"{path} is not a torchvision ResNet-50 file: it lacks conv1.weight (the first of {missing} missing parameters)"
    )


def test_a_mismatched_shape_names_the_parameter_and_both_shapes(tmp_path: Path) -> None:
    state = random_state("alexnet")
    state["features.3.weight"] = state["features.3.weight"][:100]
    path = save(state, tmp_path / "truncated.pth")
    with pytest.raises(WeightsUnavailableError) as caught:
        torchvision_nets.load_alexnet(path)
    assert str(caught.value) == (
        f"{path} is not a torchvision AlexNet file: its features.3.weight has shape (100, 64, 5, 5) "
        "where AlexNet's has (192, 64, 5, 5)"
    )


def test_an_entry_the_network_lacks_is_named(tmp_path: Path) -> None:
    path = save({**random_state("alexnet"), "extra.weight": torch.zeros(3)}, tmp_path / "extra.pth")
    with pytest.raises(WeightsUnavailableError, match=r"it has extra\.weight, which AlexNet lacks \(the first of 1 "):
        torchvision_nets.load_alexnet(path)


class Payload:
    """Not a tensor: a pickle of it needs code to run, which weights_only refuses."""


def test_files_are_read_with_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "pickle.pth"
    torch.save({"features.0.weight": Payload()}, path)
    with pytest.raises(WeightsUnavailableError, match=r"not a PyTorch weights file that loads with weights_only=True"):
        torchvision_nets.load_alexnet(path)


def test_layouts_torchvision_saves_are_all_accepted(tmp_path: Path) -> None:
    """GoogLeNet with or without its auxiliary heads, a checkpoint's ``state_dict`` entry, ``module.`` names, a
    file older than the batch counter, and float16 values (made float32)."""
    state = random_state("googlenet")
    without_aux = {key: value for key, value in state.items() if not key.startswith("aux")}
    old = {key: value.half() for key, value in without_aux.items() if not key.endswith("num_batches_tracked")}
    variants = {
        "with_aux": state,
        "without_aux": without_aux,
        "checkpoint": {"state_dict": {f"module.{key}": value for key, value in state.items()}, "epoch": 3},
        "old_half": old,
    }
    loaded = {}
    for label, content in variants.items():
        path = tmp_path / f"{label}.pth"
        torch.save(content, path)
        loaded[label] = read_torchvision_file(path, "googlenet", "GoogLeNet").state
    for label, read in loaded.items():
        assert set(read) == set(without_aux), label
        assert read["conv1.conv.weight"].dtype == torch.float32, label
        assert read["conv1.bn.num_batches_tracked"].dtype == torch.int64, label
    torch.testing.assert_close(loaded["old_half"]["conv1.conv.weight"], state["conv1.conv.weight"], rtol=1e-3,
                               atol=1e-3)  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_masks_reach_every_layer_with_its_exact_shape(name: str, tmp_path: Path) -> None:
    path = save(random_state(name), tmp_path / f"{name}.pth")
    seed_means(name, path)
    spec = network(name)
    encoder = spec.build(spec.weights_from(path), [info.name for info in spec.layers])
    mask = torch.zeros(1, 1, 67, 83)
    mask[..., :41] = 1.0
    with torch.no_grad():
        features = encoder(torch.rand(1, 3, 67, 83))
    for info in encoder.computed_layers:
        carried = mask_for_layer(mask, info.name, encoder.computed_layers)
        assert carried.shape[-2:] == features[info.name].shape[-2:], info.name
        assert carried[..., 0].mean() > 0.5 and carried.min() >= 0.0 and carried.max() <= 1.0, info.name


@pytest.mark.parametrize("name", NAMES)
def test_tiling_is_allowed_on_vggs_floor_grid_and_refused_up_front_elsewhere(name: str, tmp_path: Path) -> None:
    spec = network(name)
    options = {"network": name, "weights": str(tmp_path / "any.pth"), "tile_size": 256,
               "content_layers": spec.content_layers, "style_layers": spec.style_layers}  # fmt: skip
    if name == "vgg16":
        assert RunConfig(**options).tile_size == 256
    else:
        with pytest.raises(OptionError, match=rf"^tiling cannot be used with {spec.title} \(its layer \w+ keeps a "):
            RunConfig(**options)


@pytest.mark.parametrize("name", NAMES)
def test_a_run_without_weights_says_the_network_needs_a_file(name: str, pair, tmp_path: Path, capsys) -> None:
    spec = network(name)
    layers = {"content_layers": spec.content_layers, "style_layers": spec.style_layers}
    with pytest.raises(OptionError, match=rf"^the {name} network needs a weights file: pass --weights PATH"):
        RunConfig(network=name, **layers)
    with pytest.raises(OptionError, match="needs a weights file"):
        spec.default_weights()
    out = tmp_path / "out.png"
    args = [*map(str, pair), "--network", name, "--content-layers", *spec.content_layers,
            "--style-layers", *spec.style_layers, "-o", str(out)]  # fmt: skip
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"painterly: error: the {name} network needs a weights file") and not out.exists()


def test_the_cli_refuses_another_networks_file_in_one_sentence(pair, tmp_path: Path, capsys) -> None:
    path = save(random_state("alexnet"), tmp_path / "alexnet.pth")
    spec, out = network("resnet50"), tmp_path / "out.png"
    args = [*map(str, pair), "--network", "resnet50", "--weights", str(path), "--content-layers",
            *spec.content_layers, "--style-layers", *spec.style_layers, "--size", "32", "-o", str(out)]  # fmt: skip
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "is not a torchvision ResNet-50 file: it lacks conv1.weight" in line and not out.exists()


def _bn(x: Tensor, state: dict[str, Tensor], prefix: str, eps: float) -> Tensor:
    return F.batch_norm(x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"], state[f"{prefix}.weight"],
                        state[f"{prefix}.bias"], training=False, eps=eps)  # fmt: skip


def test_folded_batch_normalisation_equals_the_unfolded_network(tmp_path: Path) -> None:
    """ResNet-50's stem and first block, and GoogLeNet's first unit (epsilon 0.001), computed here from the raw
    state with batch normalisation as its own step, equal the encoder's folded stages."""
    state = random_state("resnet50")
    weights = torchvision_nets.NetworkWeights("resnet50", state, "test")
    encoder = network("resnet50").build(weights, ["conv1", "layer1.0"])
    image = torch.rand(1, 3, 37, 45)
    x = encoder.preprocess(image)
    stem = F.relu(_bn(F.conv2d(x, state["conv1.weight"], stride=2, padding=3), state, "bn1", 1e-5))
    pooled = F.max_pool2d(stem, 3, 2, 1)
    main_path = pooled
    for index, padding in ((1, 0), (2, 1), (3, 0)):
        main_path = _bn(F.conv2d(main_path, state[f"layer1.0.conv{index}.weight"], padding=padding), state,
                        f"layer1.0.bn{index}", 1e-5)  # fmt: skip
        main_path = F.relu(main_path) if index < 3 else main_path
    shortcut = _bn(F.conv2d(pooled, state["layer1.0.downsample.0.weight"]), state, "layer1.0.downsample.1", 1e-5)
    with torch.no_grad():
        features = encoder(image)
    torch.testing.assert_close(features["conv1"], stem, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(features["layer1.0"], F.relu(main_path + shortcut), rtol=1e-4, atol=1e-5)

    state = random_state("googlenet")
    state = {key: value for key, value in state.items() if not key.startswith("aux")}
    encoder = network("googlenet").build(torchvision_nets.NetworkWeights("googlenet", state, "test"), ["conv1"])
    x = encoder.preprocess(image)
    assert torch.allclose(x, (image - 0.5) / 0.5), "transform_input's convention"
    unit = F.relu(_bn(F.conv2d(x, state["conv1.conv.weight"], stride=2, padding=3), state, "conv1.bn", 1e-3))
    with torch.no_grad():
        torch.testing.assert_close(encoder(image)["conv1"], unit, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_a_coarse_to_fine_run_goes_through_every_stage_with_the_networks_own_layers(
    name: str, pair, tmp_path: Path
) -> None:
    """With a file of random weights (none ship here): the default layers, every stage, the style loss falls."""
    from painterly.records import StepRecord
    from painterly.stylize import stylize

    path = save(random_state(name), tmp_path / f"{name}.pth")
    seed_means(name, path)
    records: list[StepRecord] = []
    image = stylize(*pair, network=name, weights=str(path), size=64, start_size=32, iterations=8, device="cpu",
                    on_step=records.append)  # fmt: skip
    assert image.size == (64, 48)
    assert len({record.size for record in records}) >= 2 and records[-1].size == (64, 48)  # coarse, then fine
    styles = [record.losses["style"] for record in records if record.size == records[-1].size]
    assert all(map(math.isfinite, styles)) and styles[-1] < styles[0]


def test_vgg16_tiled_loss_and_gradient_equal_untiled_with_a_full_margin() -> None:
    """VGG-16 tiles (VGG's poolings keep the floor grid): a narrow random VGG-16, windows of 32 px cores."""
    from painterly.nets.vgg import VGG16_CONV_LAYERS
    from painterly.nets.weights import VGGWeights
    from painterly.objective.tiled import exact_margin

    from .conftest import assert_tiling_is_exact

    generator = torch.Generator().manual_seed(0)
    state, width = {}, 3
    for conv in VGG16_CONV_LAYERS:
        state[f"{conv}.weight"] = torch.randn(4, width, 3, 3, generator=generator) * (2.0 / (9 * width)) ** 0.5
        state[f"{conv}.bias"] = torch.full((4,), 0.01)
        width = 4
    weights = VGGWeights(state=state, preprocessing="torchvision", source="test", depth=16,
                         channel_means={conv: torch.ones(4) for conv in VGG16_CONV_LAYERS})  # fmt: skip
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    encoder = network("vgg16").build(weights, layers)
    content, style, image = (torch.rand(1, 3, 88, 120, generator=generator) for _ in range(3))
    style_weights = {layer: 10.0 / len(layers) for layer in layers}
    assert_tiling_is_exact(encoder, content, style, image, content_layer_weights={"relu3_1": 1.0},
                           style_layer_weights=style_weights, margin=exact_margin(encoder, layers))  # fmt: skip
