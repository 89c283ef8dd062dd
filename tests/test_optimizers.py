"""Every optimiser lowers the loss; its settings really reach it; seeded runs repeat exactly on the CPU."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from painterly import OptionError, stylize
from painterly.engine.optim import HISTORY_BUDGET_BYTES, OptimizerSettings, auto_history_size, learning_rate_at
from painterly.nets.weights import VGGWeights

from .conftest import make_image

SETTINGS = {
    "lbfgs": {"optimizer": "lbfgs"},
    "lbfgs-wolfe": {"optimizer": "lbfgs", "line_search": True},
    "lbfgs-short-history": {"optimizer": "lbfgs", "history_size": 3},
    "adam": {"optimizer": "adam"},
    "adam-schedule-average": {"optimizer": "adam", "learning_rate": 0.05, "lr_decay": 0.1, "average": 0.8},
    "gd-momentum": {"optimizer": "gd"},
    "gd-plain": {"optimizer": "gd", "momentum": 0.0, "learning_rate": 0.01},
    "normalized-gradients": {"optimizer": "adam", "normalize_gradients": True},
}


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return make_image(tmp_path / "content.png", (40, 32), seed=1), make_image(tmp_path / "style.png", (40, 40), seed=2)


def _trace(pair, weights: VGGWeights, steps: int = 15, **options) -> tuple[list[dict[str, float]], np.ndarray]:
    records = []
    image = stylize(*pair, weights=weights, size=32, start_size=None, iterations=steps, init="noise", seed=0,
                    on_step=records.append, **options)  # fmt: skip
    return [r.losses | {"evaluations": r.evaluations} for r in records], np.asarray(image)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_optimiser_lowers_the_loss(pair, tiny_weights: VGGWeights, name: str) -> None:
    trace, _ = _trace(pair, tiny_weights, **SETTINGS[name])
    assert trace[-1]["total"] < 0.7 * trace[0]["total"], [round(t["total"], 3) for t in trace]


def test_line_search_evaluates_more_than_once_per_step(pair, tiny_weights: VGGWeights) -> None:
    plain, _ = _trace(pair, tiny_weights, steps=5, optimizer="lbfgs")
    wolfe, _ = _trace(pair, tiny_weights, steps=5, optimizer="lbfgs", line_search=True)
    assert all(t["evaluations"] == 1 for t in plain)
    assert sum(t["evaluations"] for t in wolfe) > 5


@pytest.mark.parametrize(
    ("base", "changed"),
    [
        ({"optimizer": "adam"}, {"optimizer": "adam", "learning_rate": 0.1}),
        ({"optimizer": "adam"}, {"optimizer": "adam", "lr_decay": 0.1}),
        ({"optimizer": "gd"}, {"optimizer": "gd", "momentum": 0.5}),
        ({"optimizer": "lbfgs"}, {"optimizer": "lbfgs", "history_size": 2}),
        ({"optimizer": "lbfgs"}, {"optimizer": "lbfgs", "normalize_gradients": True}),
    ],
    ids=["learning-rate", "lr-decay", "momentum", "history-size", "normalize-gradients"],
)
def test_each_setting_changes_the_trajectory(pair, tiny_weights: VGGWeights, base, changed) -> None:
    first, _ = _trace(pair, tiny_weights, steps=8, **base)
    second, _ = _trace(pair, tiny_weights, steps=8, **changed)
    assert [t["total"] for t in first] != [t["total"] for t in second]


def test_iterate_averaging_changes_the_returned_image_not_the_iterates(pair, tiny_weights: VGGWeights) -> None:
    plain_trace, plain = _trace(pair, tiny_weights, steps=8, optimizer="adam", learning_rate=0.1)
    averaged_trace, averaged = _trace(pair, tiny_weights, steps=8, optimizer="adam", learning_rate=0.1, average=0.8)
    assert plain_trace == averaged_trace, "the iterates themselves are the same"
    assert not np.array_equal(plain, averaged), "but the returned image is their running average"


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "gd"])
def test_seeded_runs_repeat_exactly(pair, tiny_weights: VGGWeights, optimizer: str) -> None:
    first_trace, first_image = _trace(pair, tiny_weights, steps=6, optimizer=optimizer)
    second_trace, second_image = _trace(pair, tiny_weights, steps=6, optimizer=optimizer)
    assert first_trace == second_trace and np.array_equal(first_image, second_image)


def test_cosine_schedule_runs_from_the_rate_to_the_decayed_rate() -> None:
    rates = [learning_rate_at(0.1, step, 11, 0.2) for step in range(11)]
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.02)
    assert all(a >= b for a, b in itertools.pairwise(rates))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": "newton"}, "unknown optimizer"),
        ({"learning_rate": -1.0}, "learning rate must be positive"),
        ({"history_size": 0}, "history size"),
        ({"momentum": 1.0}, "momentum"),
        ({"lr_decay": 0.0}, "decay"),
        ({"average": 1.0}, "averaging"),
    ],
)
def test_bad_optimiser_settings_are_refused(settings, message) -> None:
    with pytest.raises(OptionError, match=message):
        OptimizerSettings(**settings)


def test_automatic_history_is_what_fits_in_its_budget_between_20_and_50() -> None:
    assert auto_history_size(512 * 384) == 50
    assert auto_history_size(64 * 64) == 50
    assert auto_history_size(4096 * 4096) == 20
    middle = auto_history_size(1024 * 768)
    assert 20 < middle < 50 and middle * 2 * 3 * 4 * 1024 * 768 <= HISTORY_BUDGET_BYTES
    sizes = [2**k for k in range(6, 13)]
    counts = [auto_history_size(s * s) for s in sizes]
    assert counts == sorted(counts, reverse=True), "never more pairs for a bigger image"
