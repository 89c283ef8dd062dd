"""Mixed precision: the convolutions in bfloat16, everything the optimiser sees in float32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from painterly import stylize
from painterly.encoder import VGGEncoder
from painterly.run import mixed_precision_dtype
from painterly.weights import VGGWeights

LAYERS = ["relu1_1", "relu2_1", "relu3_1"]


def test_mixed_precision_by_default_only_where_the_cpu_has_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    import painterly.run

    cpu = torch.device("cpu")
    for native in (False, True):
        monkeypatch.setattr(painterly.run, "cpu_has_native_bfloat16", lambda native=native: native)
        assert mixed_precision_dtype(cpu, None) is (torch.bfloat16 if native else None)
        assert mixed_precision_dtype(cpu, False) is None
        assert mixed_precision_dtype(cpu, True) is torch.bfloat16


def test_mixed_precision_features_are_float32_and_close(tiny_weights: VGGWeights) -> None:
    encoder = VGGEncoder(tiny_weights, LAYERS)
    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exact = encoder(image)
        encoder.autocast_dtype = torch.bfloat16
        mixed = encoder(image)
    for layer in LAYERS:
        assert mixed[layer].dtype == torch.float32
        relative = float((mixed[layer] - exact[layer]).norm() / exact[layer].norm())
        assert 0 < relative < 0.02, layer  # really computed in bfloat16, and still close


def test_a_mixed_precision_run_moves_toward_the_style(pair: tuple[Path, Path], tiny_weights: VGGWeights) -> None:
    content, style = pair
    losses: list[float] = []
    image = stylize(content, style, size=48, start_size=None, iterations=15, mixed_precision=True, device="cpu",
                    weights=tiny_weights, style_layers=LAYERS, content_layers=["relu2_1"],
                    on_step=lambda record: losses.append(record.losses["style"]))  # fmt: skip
    assert image.size == (48, 36)
    assert losses[-1] < 0.5 * losses[0]
