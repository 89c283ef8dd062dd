"""Per-network automatic precision and memory estimates that follow the precision a run computes in."""

from __future__ import annotations

from pathlib import Path

import pytest

from painterly.config import RunConfig
from painterly.nets.registry import network
from painterly.plan.memory import estimate_run_bytes
from painterly.run import StyleTransferRun


def test_efficientnet_runs_float32_unless_asked_even_where_the_probe_picks_bfloat16(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import painterly.run

    monkeypatch.setattr(painterly.run, "resolve_mixed_precision", lambda device, requested: requested is not False)
    options = dict(size=32, start_size=None, iterations=1, device="cpu", content_layers=["block2"],
                   style_layers=["stem", "block2"])  # fmt: skip
    auto = StyleTransferRun(*pair, RunConfig(network="efficientnet-lite0", **options))
    asked = StyleTransferRun(*pair, RunConfig(network="efficientnet-lite0", mixed_precision=True, **options))
    vgg = StyleTransferRun(*pair, RunConfig(network="random-vgg19", size=32, start_size=None, iterations=1))
    assert auto.resolved_config.mixed_precision is False
    assert asked.resolved_config.mixed_precision is True
    assert vgg.resolved_config.mixed_precision is True  # the VGG networks follow the probe
    assert not network("efficientnet-lite0").cpu_bfloat16_follows_probe


def test_bfloat16_activations_halve_the_activation_term_of_the_estimate() -> None:
    layers = network("vgg19").layers[:12]
    full = estimate_run_bytes(layers, 512, 384)
    half = estimate_run_bytes(layers, 512, 384, activation_bytes=2)
    fixed = estimate_run_bytes(layers, 512, 384, activation_bytes=0)
    assert full - fixed == pytest.approx(2 * (half - fixed), rel=1e-6)
    assert fixed < half < full


def test_a_run_estimates_its_memory_in_the_precision_it_computes_above_what_the_process_holds(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import painterly.run

    held = 3 * 2**30
    monkeypatch.setattr(painterly.run, "resident_bytes", lambda: held)
    options = dict(network="random-vgg19", size=64, start_size=None, iterations=1, device="cpu")
    float32 = StyleTransferRun(*pair, RunConfig(mixed_precision=False, **options))
    bfloat16 = StyleTransferRun(*pair, RunConfig(mixed_precision=True, **options))
    assert held < bfloat16.plan.estimated_bytes < float32.plan.estimated_bytes
    growth = estimate_run_bytes(float32.encoder.computed_layers, 64, 48, history=float32.plan.history_size,
                                base_bytes=0)  # fmt: skip
    assert float32.plan.estimated_bytes == held + growth


def test_a_run_scales_what_its_layers_count_by_its_networks_measured_memory_factor(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """EfficientNet-Lite0's peaks measured 1.23 to 1.46 times what its layers count (docs/networks.md): its run's
    estimate above the process's memory is that count times its factor, and the VGG networks' factor is 1."""
    import painterly.run

    held = 2**30
    monkeypatch.setattr(painterly.run, "resident_bytes", lambda: held)
    run = StyleTransferRun(*pair, RunConfig(network="efficientnet-lite0", size=64, start_size=None, iterations=1,
                                            device="cpu", mixed_precision=False))  # fmt: skip
    counted = estimate_run_bytes(run.encoder.computed_layers, 64, 48, history=run.plan.history_size, base_bytes=0)
    factor = network("efficientnet-lite0").memory_factor
    assert factor > 1.2
    assert run.plan.estimated_bytes == pytest.approx(held + factor * counted, abs=2)
    assert network("vgg19").memory_factor == network("vgg16").memory_factor == 1.0
