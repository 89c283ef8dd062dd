"""The re-quantisers of bench/quantization.py, on tiny tensors: the figures in docs/weights.md rest on them."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench" / "quantization.py"


def _load_bench() -> ModuleType:
    # bench/ is a folder of scripts, not a package: load the file itself (its main() only runs as a script).
    spec = importlib.util.spec_from_file_location("bench_quantization", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quantization = _load_bench()


def _sample(seed: int = 0, n: int = 200) -> torch.Tensor:
    # Heavy tails, as real conv weights have: a uniform grid then wastes levels on the outliers.
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=generator) ** 3 * 0.05


@pytest.mark.parametrize("levels", [2, 4, 16])
def test_uniform_keeps_range_levels_and_is_idempotent(levels: int) -> None:
    x = _sample()
    q = quantization.uniform_requantize(x, levels)
    assert q.dtype == x.dtype and q.shape == x.shape
    assert torch.unique(q).numel() <= levels
    assert q.min() == x.min() and q.max() == x.max()
    step = float(x.max() - x.min()) / (levels - 1)
    assert float((q - x).abs().max()) <= step / 2 * (1 + 1e-5)  # nearest grid value
    assert torch.equal(quantization.uniform_requantize(q, levels), q)


@pytest.mark.parametrize("levels", [1, 3, 8, 16])
def test_kmeans_levels_range_order_and_idempotence(levels: int) -> None:
    x = _sample(1)
    q = quantization.kmeans_requantize(x, levels)
    assert q.dtype == x.dtype and q.shape == x.shape
    assert torch.unique(q).numel() == levels
    assert x.min() <= q.min() and q.max() <= x.max()  # centroids lie inside the range (not on its ends)
    order = torch.argsort(x)
    assert torch.all(torch.diff(q[order]) >= 0)  # clusters are intervals: the order of the values is kept
    assert torch.equal(quantization.kmeans_requantize(q, levels), q)


def test_kmeans_values_are_centroids_and_beat_the_uniform_grid() -> None:
    x = _sample(2)
    q = quantization.kmeans_requantize(x, 8)
    for value in torch.unique(q):
        members = x[q == value].double()
        assert float(value) == pytest.approx(float(members.mean()), rel=1e-6, abs=1e-9)
    uniform = quantization.uniform_requantize(x, 8)
    assert float((q - x).pow(2).sum()) < float((uniform - x).pow(2).sum())


def _interval_error(x: torch.Tensor, low: float, high: float) -> float:
    members = x[(x >= low) & (x <= high)]
    return float((members - members.mean()).pow(2).sum())


def test_kmeans_is_optimal_on_a_tiny_case() -> None:
    # Repeated values exercise the weighting by counts, as in a quantised weight tensor.
    x = torch.tensor([0.0, 0.0, 0.0, 0.1, 0.4, 0.5, 0.5, 1.0, 3.0], dtype=torch.float64)
    values = torch.unique(x).tolist()
    for levels in (2, 3):
        got = float((quantization.kmeans_requantize(x, levels) - x).pow(2).sum())
        # Optimal 1-D clusters are intervals of the sorted distinct values: try every way to cut them.
        best = min(
            sum(_interval_error(x, values[a], values[b - 1]) for a, b in itertools.pairwise((0, *cuts, len(values))))
            for cuts in itertools.combinations(range(1, len(values)), levels - 1)
        )
        assert got == pytest.approx(best, abs=1e-12)


def test_kmeans_refuses_unquantised_tensors() -> None:
    with pytest.raises(ValueError, match="distinct values"):
        quantization.kmeans_requantize(torch.arange(quantization.MAX_DISTINCT + 1, dtype=torch.float32), 4)
