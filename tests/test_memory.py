"""Memory: a run that cannot fit is refused up front with the largest size that would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from painterly import OptionError, stylize
from painterly.nets.encoder import VGGEncoder
from painterly.nets.vgg import LAYER_NAMES, VGG19_LAYERS
from painterly.nets.weights import VGGWeights
from painterly.plan.memory import (
    BASE_BYTES,
    estimate_run_bytes,
    estimate_tiled_run_bytes,
    gram_pass_core,
    largest_fitting_size,
)

from .conftest import make_image

LAYERS = VGG19_LAYERS[: LAYER_NAMES.index("relu5_1") + 1]


def test_vgg19_estimates_are_the_numbers_the_name_based_estimates_gave() -> None:
    """Read from the layers' descriptions, the estimates for VGG-19 are byte for byte what they were when memory.py
    parsed layer names and held VGG-19's widths itself (numbers from that code, at 8c2cc76)."""
    shallow = VGG19_LAYERS[: LAYER_NAMES.index("relu3_1") + 1]
    relu3_1 = shallow[-1]
    for layers, untiled, adam, tiled, cores in [
        (LAYERS, [728498176, 1278214144, 3336864000], 1188560896, [2349858816, 9758048256], [512, 768, 1024]),
        (shallow, [685244416, 1105199104, 2680779520], 1015545856, [1989410816, 9397600256], [512, 384, 1024]),
    ]:
        assert [estimate_run_bytes(layers, w, h) for w, h in [(256, 192), (512, 384), (1000, 750)]] == untiled
        assert estimate_run_bytes(layers, 512, 384, optimizer="adam", history=5) == adam
        assert [
            estimate_tiled_run_bytes(layers, w, h, core=512, margin=64, content_layers=[relu3_1])
            for w, h in [(1024, 768), (4096, 3072)]
        ] == tiled
        assert [
            gram_pass_core(layers, w, h, core=core, margin=64)
            for w, h, core in [(1024, 768, 256), (2048, 1536, 384), (600, 400, 512)]
        ] == cores


def test_estimates_count_the_widths_of_the_weights_in_use(tiny_weights: VGGWeights) -> None:
    """A narrow network needs less memory than VGG-19's widths would say: the encoder describes its own layers."""
    tiny = VGGEncoder(tiny_weights, ["relu5_1"]).computed_layers
    assert [info.channels for info in tiny] == [4] * len(tiny)
    assert estimate_run_bytes(tiny, 512, 384) < estimate_run_bytes(LAYERS, 512, 384)


def test_estimate_grows_with_size_and_history() -> None:
    sizes = [64, 128, 256, 512, 1024, 2048]
    estimates = [estimate_run_bytes(LAYERS, s, s * 3 // 4) for s in sizes]
    assert estimates == sorted(estimates) and len(set(estimates)) == len(estimates)
    assert estimate_run_bytes(LAYERS, 512, 384, optimizer="adam") < estimate_run_bytes(LAYERS, 512, 384)


def test_largest_fitting_size_fits_and_one_more_pixel_does_not() -> None:
    budget = estimate_run_bytes(LAYERS, 1000, 750)
    fits = largest_fitting_size(LAYERS, 4000, 0.75, budget, optimizer="lbfgs")
    assert estimate_run_bytes(LAYERS, fits, int(fits * 0.75)) <= budget
    assert estimate_run_bytes(LAYERS, fits + 1, int((fits + 1) * 0.75)) > budget
    assert 990 <= fits <= 1000


def test_too_large_a_run_is_refused_before_any_work(tmp_path: Path, tiny_weights: VGGWeights, monkeypatch) -> None:
    import painterly.run

    content, style = make_image(tmp_path / "c.png", (64, 48)), make_image(tmp_path / "s.png")
    budget = estimate_run_bytes(VGGEncoder(tiny_weights, ["relu5_1"]).computed_layers, 1200, 900)
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: budget)
    monkeypatch.setattr(painterly.run, "resident_bytes", lambda: BASE_BYTES)  # the estimate's own base
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
    budget = estimate_run_bytes(VGGEncoder(tiny_weights, ["relu5_1"]).computed_layers, 1200, 900)
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: budget)
    monkeypatch.setattr(painterly.run, "resident_bytes", lambda: BASE_BYTES)  # the budget's own base
    with pytest.raises(OptionError, match=r"even tiled.*largest size that fits is about (\d+)") as info:
        stylize(content, style, weights=tiny_weights, size=8000, iterations=1)  # tiled automatically, still too big
    suggested = int(re.search(r"about (\d+) px", str(info.value)).group(1))
    assert 1200 < suggested < 8000  # tiling fits more than the untiled 1200 px, but not 8000
    stylize(content, style, weights=tiny_weights, size=64, iterations=1)
