"""Shared fixtures: a tiny random-weight VGG-19 for fast unit tests, real weights for a few e2e tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from painterly.config import RunConfig
from painterly.nets.vgg import VGG19_CONV_LAYERS
from painterly.nets.weights import NetworkWeights, VGGWeights
from painterly.run import StyleTransferRun

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED_DATA = REPO.parent / "shared" / "data"


def random_vgg_weights(width: int = 4, seed: int = 0) -> VGGWeights:
    """VGG-19's topology with ``width`` channels per layer and random weights (fast, not pretrained)."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    in_channels = 3
    for name in VGG19_CONV_LAYERS:
        weight = torch.randn(width, in_channels, 3, 3, generator=generator) * (2.0 / (9 * in_channels)) ** 0.5
        state[f"{name}.weight"] = weight
        state[f"{name}.bias"] = torch.full((width,), 0.01)
        in_channels = width
    means = {name: torch.ones(width) for name in VGG19_CONV_LAYERS}
    return VGGWeights(state=state, preprocessing="torchvision", source="random", channel_means=means)


@pytest.fixture(autouse=True)
def float32_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The automatic precision probe answers "float32" in every test, so no test's precision depends on this CPU's
    timing or writes the user's cache; tests of the probe itself (test_precision_probe.py) call it directly."""
    from painterly.engine import precision

    monkeypatch.setattr(precision, "cached_cpu_probe", lambda: precision.PrecisionProbe(1.0, 2.0))


@pytest.fixture
def tiny_weights() -> VGGWeights:
    return random_vgg_weights()


@pytest.fixture(scope="session")
def real_weights() -> VGGWeights:
    """The real VGG-19 (Caffe-trained, Keras port, 8-bit), fetched and cached by `make test` before pytest starts."""
    from painterly.nets.weights import cached_weights_path, load_weights

    path = cached_weights_path()
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"real weights missing in CI: {path} (the Makefile fetches them first)")
        pytest.skip("real VGG-19 weights not cached; run `painterly weights fetch`")
    return load_weights(path)


@pytest.fixture(scope="session")
def real_efficientnet_weights() -> NetworkWeights:
    """The real EfficientNet-Lite0 (ImageNet), fetched and cached by `make test` (`painterly weights fetch`)."""
    from painterly.nets.efficientnet_weights import efficientnet_lite0_cache_path, load_efficientnet_lite0

    path = efficientnet_lite0_cache_path()
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"real weights missing in CI: {path} (the Makefile fetches them first)")
        pytest.skip("real EfficientNet-Lite0 weights not cached; run `painterly weights fetch`")
    return load_efficientnet_lite0(path)


def make_image(path: Path, size: tuple[int, int] = (40, 32), mode: str = "RGB", seed: int = 0, **save) -> Path:
    """Write a small random-looking image with structure (gradients plus noise)."""
    generator = torch.Generator().manual_seed(seed)
    width, height = size
    ys = torch.linspace(0, 1, height).view(-1, 1).expand(height, width)
    xs = torch.linspace(0, 1, width).view(1, -1).expand(height, width)
    noise = torch.rand(3, height, width, generator=generator) * 0.3
    rgb = torch.stack([xs, ys, (xs + ys) / 2]) * 0.7 + noise
    array = (rgb.clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
    image = Image.fromarray(array, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, **save)
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A small content image and a small style image with different structure."""
    return make_image(tmp_path / "content.png", (48, 36), seed=1), make_image(tmp_path / "style.png", (40, 40), seed=2)


@pytest.fixture
def weights_file(tmp_path: Path) -> Path:
    """The tiny random network saved as a weights file (with its calibration means), for CLI and resume tests."""
    weights = random_vgg_weights()
    path = tmp_path / "tiny.pt"
    assert weights.channel_means is not None
    torch.save({**weights.state, **{f"mean.{k}": v for k, v in weights.channel_means.items()}}, path)
    return path


def run_for(content: object, style: object, **options: Any) -> StyleTransferRun:
    """A planned (not executed) run of stylize(content, style, **options); ``revision`` and ``tile_plan`` as a
    checkpoint would give them."""
    derived = {name: options.pop(name) for name in ("revision", "tile_plan") if name in options}
    return StyleTransferRun(content, style, RunConfig(**options), **derived)  # type: ignore[arg-type]


def assert_tiling_is_exact(
    encoder: Any, content: torch.Tensor, style: torch.Tensor, image: torch.Tensor, *,
    content_layer_weights: dict[str, float], style_layer_weights: dict[str, float], margin: int,
) -> None:  # fmt: skip
    """The tiled objective (32 px cores, ``margin``) gives the whole-image objective's loss and gradient."""
    from painterly.losses.core import ContentLoss, GramLoss
    from painterly.objective.tiled import TiledObjective
    from painterly.objective.whole import Objective

    whole = Objective.build(
        encoder, content=content, styles=[style], content_loss=ContentLoss(), style_loss=GramLoss(),
        content_layer_weights=content_layer_weights, style_layer_weights=style_layer_weights, style_blend=[1.0],
        tv_weight=0.1,
    )  # fmt: skip
    tiled = TiledObjective.build(
        encoder, content=content, styles=[style], content_layer_weights=content_layer_weights,
        style_layer_weights=[style_layer_weights], core=32, margin=margin, tv_weight=0.1,
    )  # fmt: skip
    results = []
    for objective in (whole, tiled):
        x = image.clone().requires_grad_(True)
        total, _ = objective(x)
        total.backward()
        assert x.grad is not None
        results.append((float(total.detach()), x.grad))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-4)
    grad = results[0][1]
    torch.testing.assert_close(results[1][1], grad, rtol=1e-3, atol=1e-5 * float(grad.abs().max()))


@pytest.fixture(scope="session")
def ray_cluster() -> Any:
    """A real local Ray (two CPUs, no dashboard, a small object store), started once for the whole test run.

    Ray is an optional extra: outside CI its tests are skipped when it is missing; in CI (``CI=true``, where the
    Makefile installs ``painterly[ray]``) a missing Ray fails them, so they cannot silently stop running.
    """
    try:
        import ray
    except ModuleNotFoundError:
        if os.environ.get("CI"):
            pytest.fail("ray is missing in CI: the Makefile installs painterly[ray] (pip install -e '.[ray]')")
        pytest.skip("ray is not installed (pip install 'painterly[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False,
             configure_logging=False)  # fmt: skip
    yield ray
    ray.shutdown()
