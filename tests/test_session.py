"""A Session runs jobs one after another, sharing loaded encoders and style targets without changing any result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from painterly import RunConfig
from painterly.losses.core import ContentLoss, GramLoss, GuidedGramLoss
from painterly.losses.style import MRFLoss
from painterly.objective.targets import EncoderTargets, TargetCache, target_key
from painterly.session import Session

from .conftest import make_image

SMALL = {"size": 48, "start_size": 24, "iterations": 6, "device": "cpu", "mixed_precision": False}


def test_a_second_job_reuses_the_encoder_and_style_targets_and_computes_what_a_fresh_session_would(
    tmp_path, weights_file
) -> None:
    first, second = make_image(tmp_path / "a.png", (64, 48), seed=1), make_image(tmp_path / "b.png", (60, 44), seed=2)
    style = make_image(tmp_path / "style.png", (56, 56), seed=3)
    config = RunConfig(weights=str(weights_file), **SMALL)
    session = Session("cpu")
    session.run(first, style, config)
    made = session.targets.misses
    assert made == 3 and session.targets.hits == 0  # one style, three stage sizes
    again = np.asarray(session.run(second, style, config))
    assert session.targets.misses == made and session.targets.hits == 3  # the style is sized by stage, not content
    assert np.array_equal(again, np.asarray(Session("cpu").run(second, style, config)))


def test_random_targets_are_reused_only_under_the_same_random_state(tmp_path, weights_file) -> None:
    content = make_image(tmp_path / "c.png", (64, 48), seed=1)
    style = make_image(tmp_path / "s.png", (56, 56), seed=3)
    mrf = RunConfig(weights=str(weights_file), style_loss="mrf", style_layers=["relu3_1"], **SMALL)
    session = Session("cpu")
    session.run(content, style, mrf.replace(seed=1))
    other_seed = np.asarray(session.run(content, style, mrf.replace(seed=2)))
    assert session.targets.hits == 0  # MRF samples its patches at random: another seed, other targets
    assert np.array_equal(other_seed, np.asarray(Session("cpu").run(content, style, mrf.replace(seed=2))))
    session.run(content, style, mrf.replace(seed=2))
    assert session.targets.hits == 3  # the same seed: the same samples


def test_the_cache_keeps_the_most_recently_used_within_its_bytes() -> None:
    cache = TargetCache(max_bytes=3 * 4 * 100)  # three 100-float entries

    def entry(value: float) -> dict[str, torch.Tensor]:
        return {"relu1_1": torch.full((100,), value)}

    for key in "abc":
        cache.get_or_make(key, lambda k=key: entry(float(ord(k))))
    cache.get_or_make("a", lambda: pytest.fail("a is cached"))  # a is now the most recent
    cache.get_or_make("d", lambda: entry(4.0))
    assert len(cache) == 3 and cache.bytes == 1200
    made: list[str] = []
    cache.get_or_make("b", lambda: made.append("b") or entry(2.0))  # b went first (least recently used)
    assert made == ["b"]
    cache.get_or_make("a", lambda: pytest.fail("a stayed"))
    too_big = TargetCache(max_bytes=10)
    too_big.get_or_make("x", lambda: entry(1.0))
    assert len(too_big) == 0 and too_big.misses == 1


def test_the_key_changes_with_everything_a_target_depends_on() -> None:
    style = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    base = target_key(style, "net", {"relu1_1": GramLoss()})
    assert target_key(style.clone(), "net", {"relu1_1": GramLoss()}) == base
    other = style.clone()
    other[0, 0, 0, 0] += 1e-6
    mask = torch.ones(1, 1, 16, 16)
    changed = [
        target_key(other, "net", {"relu1_1": GramLoss()}),  # one pixel
        target_key(style[..., :15], "net", {"relu1_1": GramLoss()}),  # the size
        target_key(style, "other-net", {"relu1_1": GramLoss()}),  # the network or weights
        target_key(style, "net", {"relu2_1": GramLoss()}),  # the layer
        target_key(style, "net", {"relu1_1": GramLoss(accepts_low_precision=True)}),  # the loss's parameters
        target_key(style, "net", {"relu1_1": ContentLoss()}),  # the loss
        target_key(style, "net", {"relu1_1": GuidedGramLoss(mask)}),  # a mask
        target_key(style, "net", {"relu1_1": GuidedGramLoss(mask * 0.5)}),  # another mask
    ]
    assert len({base, *changed}) == len(changed) + 1
    torch.manual_seed(1)
    random = target_key(style, "net", {"relu3_1": MRFLoss()})
    torch.manual_seed(2)
    assert target_key(style, "net", {"relu3_1": MRFLoss()}) != random


def test_the_compute_dtype_is_part_of_the_key(tiny_weights) -> None:
    from painterly.nets.registry import network

    encoder = network("vgg19").build(tiny_weights, ["relu1_1"])
    cache = TargetCache(2**20)
    targets = EncoderTargets(cache, "tiny", encoder)
    style = torch.rand(1, 3, 16, 16)
    targets.of(style, {"relu1_1": GramLoss()}, lambda: {"relu1_1": torch.zeros(4, 4)})
    encoder.compute_dtype = torch.bfloat16
    targets.of(style, {"relu1_1": GramLoss()}, lambda: {"relu1_1": torch.ones(4, 4)})
    assert cache.misses == 2 and cache.hits == 0
