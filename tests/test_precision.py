"""Mixed precision: the convolutions in bfloat16, everything the optimiser sees in float32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from painterly import OptionError, stylize
from painterly.encoder import VGGEncoder
from painterly.run import mixed_precision_dtype
from painterly.weights import VGGWeights

from .conftest import run_for

LAYERS = ["relu1_1", "relu2_1", "relu3_1"]


def test_mixed_precision_by_default_only_where_the_cpu_has_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    import painterly.run

    cpu = torch.device("cpu")
    for native in (False, True):
        monkeypatch.setattr(painterly.run, "cpu_has_native_bfloat16", lambda native=native: native)
        assert mixed_precision_dtype(cpu, None) is (torch.bfloat16 if native else None)
        assert mixed_precision_dtype(cpu, False) is None
        assert mixed_precision_dtype(cpu, True) is torch.bfloat16


def test_mixed_precision_features_are_float32_and_close_and_float32_comes_back(tiny_weights: VGGWeights) -> None:
    encoder = VGGEncoder(tiny_weights, LAYERS)
    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exact = encoder(image)
        encoder.compute_dtype = torch.bfloat16
        mixed = encoder(image)
        encoder.compute_dtype = None
        again = encoder(image)
    for layer in LAYERS:
        assert mixed[layer].dtype == torch.float32
        relative = float((mixed[layer] - exact[layer]).norm() / exact[layer].norm())
        assert 0 < relative < 0.02, layer  # really computed in bfloat16, and still close
        assert torch.equal(again[layer], exact[layer]), "the float32 weights were left as they were"


def test_a_mixed_precision_run_moves_toward_the_style(pair: tuple[Path, Path], tiny_weights: VGGWeights) -> None:
    content, style = pair
    losses: list[float] = []
    image = stylize(content, style, size=48, start_size=None, iterations=15, mixed_precision=True, device="cpu",
                    weights=tiny_weights, style_layers=LAYERS, content_layers=["relu2_1"],
                    on_step=lambda record: losses.append(record.losses["style"]))  # fmt: skip
    assert image.size == (48, 36)
    assert losses[-1] < 0.5 * losses[0]


def test_gram_gradient_in_bfloat16_keeps_the_loss_and_nearly_the_gradient() -> None:
    from painterly.losses import GramLoss

    generator = torch.Generator().manual_seed(2)
    # Features as a bfloat16 convolution hands them out: exact in bfloat16, delivered as float32.
    features = torch.rand(1, 32, 24, 24, generator=generator).to(torch.bfloat16).float()
    target = GramLoss().prepare(torch.rand(1, 32, 24, 24, generator=generator))
    results = {}
    for dtype in (None, torch.bfloat16):
        leaf = features.clone().requires_grad_(True)
        loss = GramLoss(gradient_dtype=dtype)(leaf, target)
        loss.backward()
        assert leaf.grad is not None and leaf.grad.dtype == torch.float32
        results[dtype] = (float(loss.detach()), leaf.grad)
    assert results[None][0] == results[torch.bfloat16][0], "the forward (the loss) stays in float32"
    exact, rounded = results[None][1], results[torch.bfloat16][1]
    relative = float((rounded - exact).norm() / exact.norm())
    assert 0 < relative < 0.01  # computed in bfloat16, and within its rounding


def test_the_gram_gradient_follows_the_convolutions_only_in_runs_of_this_revision(pair, tiny_weights) -> None:
    options = {"weights": tiny_weights, "size": 32, "mixed_precision": True}
    assert run_for(*pair, **options).style_comparison.gradient_dtype == torch.bfloat16
    assert run_for(*pair, **{**options, "mixed_precision": False}).style_comparison.gradient_dtype is None
    # a checkpoint of revision 1 resumes as it was made: the Gram gradient in float32
    assert run_for(*pair, **options, revision=1).style_comparison.gradient_dtype is None
    with pytest.raises(OptionError, match="newer painterly"):
        run_for(*pair, **options, revision=99)
