"""Memory: a run that cannot fit is refused up front with the largest size that would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from painterly import OptionError, stylize
from painterly.encoder import LAYER_NAMES
from painterly.memory import estimate_run_bytes, largest_fitting_size
from painterly.weights import VGGWeights

from .conftest import make_image

NAMES = LAYER_NAMES[: LAYER_NAMES.index("relu5_1") + 1]


def test_estimate_grows_with_size_and_history() -> None:
    sizes = [64, 128, 256, 512, 1024, 2048]
    estimates = [estimate_run_bytes(NAMES, s, s * 3 // 4) for s in sizes]
    assert estimates == sorted(estimates) and len(set(estimates)) == len(estimates)
    assert estimate_run_bytes(NAMES, 512, 384, optimizer="adam") < estimate_run_bytes(NAMES, 512, 384)


def test_largest_fitting_size_fits_and_one_more_pixel_does_not() -> None:
    budget = estimate_run_bytes(NAMES, 1000, 750)
    fits = largest_fitting_size(NAMES, 4000, 0.75, budget, optimizer="lbfgs")
    assert estimate_run_bytes(NAMES, fits, int(fits * 0.75)) <= budget
    assert estimate_run_bytes(NAMES, fits + 1, int((fits + 1) * 0.75)) > budget
    assert 990 <= fits <= 1000


def test_too_large_a_run_is_refused_before_any_work(tmp_path: Path, tiny_weights: VGGWeights, monkeypatch) -> None:
    import painterly.run

    content, style = make_image(tmp_path / "c.png", (64, 48)), make_image(tmp_path / "s.png")
    budget = estimate_run_bytes(NAMES, 1200, 900)
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: budget)
    calls: list[int] = []
    with pytest.raises(OptionError, match=r"needs about .* GiB but only .* GiB is free") as info:
        stylize(content, style, weights=tiny_weights, size=4000, iterations=1, tile_size=0,
                on_step=lambda r: calls.append(1))  # fmt: skip
    assert not calls, "refused before the first step"
    suggested = int(re.search(r"--size (\d+)", str(info.value)).group(1))
    assert 1100 <= suggested <= 1200
    # a size within the budget runs, and the check can be switched off
    stylize(content, style, weights=tiny_weights, size=64, iterations=1)
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: 1)
    stylize(content, style, weights=tiny_weights, size=32, iterations=1, check_memory=False)


def test_a_run_too_large_even_tiled_is_refused_with_a_size_that_fits(
    tmp_path: Path, tiny_weights: VGGWeights, monkeypatch
) -> None:
    import painterly.run

    content, style = make_image(tmp_path / "c.png", (64, 48)), make_image(tmp_path / "s.png")
    budget = estimate_run_bytes(NAMES, 1200, 900)
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: budget)
    with pytest.raises(OptionError, match=r"even tiled.*largest size that fits is about (\d+)") as info:
        stylize(content, style, weights=tiny_weights, size=8000, iterations=1)  # tiled automatically, still too big
    suggested = int(re.search(r"about (\d+) px", str(info.value)).group(1))
    assert 1200 < suggested < 8000  # tiling fits more than the untiled 1200 px, but not 8000
    stylize(content, style, weights=tiny_weights, size=64, iterations=1)
