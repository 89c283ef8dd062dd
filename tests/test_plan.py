"""The plan as plain data: a pure function of settings, content size, network description and free memory; and the
recipe table that replaced the run-revision branches."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest

from painterly.config import RunConfig
from painterly.errors import OptionError
from painterly.nets.vgg import LAYER_NAMES, VGG19_LAYERS
from painterly.plan.stages import (
    COARSE_STAGE_MIN_STRIDE,
    CURRENT_REVISION,
    RECIPES,
    NetworkShape,
    make_plan,
    recipe,
)

SOURCE = Path(__file__).resolve().parents[1] / "src" / "painterly"
#: VGG-19 computed up to relu5_1, the deepest default layer (stride 16)
VGG19 = NetworkShape(VGG19_LAYERS[: LAYER_NAMES.index("relu5_1") + 1], max_stride=16, min_side=16)
STYLE = [{"relu1_1": 10.0, "relu2_1": 10.0, "relu3_1": 10.0, "relu4_1": 10.0, "relu5_1": 10.0}]


def _plan(config: RunConfig, free: int | None = 2**40, **kwargs):
    return make_plan(config, (640, 480), VGG19, content_layer_weights={"relu4_2": 1.0}, per_style_weights=STYLE,
                     free_bytes=free, **kwargs)  # fmt: skip


def test_the_default_plan_is_data_made_without_running_anything() -> None:
    plan = _plan(RunConfig())
    assert [stage.size for stage in plan.stages] == [256, 362, 512]
    assert [stage.shape for stage in plan.stages] == [(256, 192), (362, 272), (512, 384)]
    assert sum(stage.steps for stage in plan.stages) == 300 and plan.stages[-1].steps == 210
    assert plan.recipe is RECIPES[CURRENT_REVISION] and plan.history_size == 50 and plan.margin == 64
    assert plan.tile_plan == [None, None, None] and plan.keep_freed_memory
    fine = [layer for layer in STYLE[0] if VGG19.stride(layer) < COARSE_STAGE_MIN_STRIDE]
    assert all(plan.stages[0].style_layer_weights[0][layer] == 0.0 for layer in fine)
    assert plan.stages[-1].style_layer_weights[0] == STYLE[0]
    assert _plan(RunConfig()) == plan  # the same inputs give the same plan


def test_memory_decides_tiles_and_refusals_by_the_free_bytes_given() -> None:
    big = RunConfig(size=2048, start_size=None, history_size=5)
    assert _plan(big, free=2**40).tile_plan == [None]
    assert _plan(big, free=2**32).tile_plan == [512]  # too big whole (10.4 GiB), tiled (2.4 GiB): 512 px cores
    assert _plan(big.replace(check_memory=False), free=2**32).tile_plan == [None]
    with pytest.raises(OptionError, match=r"needs about .* GiB even tiled.*the largest size that fits is about"):
        _plan(big, free=2**28)


def test_a_resumed_run_keeps_its_recipe_and_tiles() -> None:
    old = _plan(RunConfig(), revision=1, tile_plan=[None, None, 128])
    assert old.recipe.revision == 1 and [s.steps for s in old.stages] == [173, 85, 42]  # halving, revision 1
    assert old.tile_plan == [None, None, 128]
    assert old.stages[0].style_layer_weights[0] == STYLE[0]  # revision 1 keeps every layer in every stage
    with pytest.raises(OptionError, match="made by a newer painterly \\(revision 99\\)"):
        recipe(99)


def test_every_recipe_row_changes_something_and_only_plan_knows_revision_numbers() -> None:
    flags = [{k: v for k, v in dataclasses.asdict(RECIPES[r]).items() if k not in ("revision", "what_changed")}
             for r in sorted(RECIPES)]  # fmt: skip
    assert all(before != after for before, after in itertools.pairwise(flags))
    assert max(RECIPES) == CURRENT_REVISION and list(RECIPES) == list(range(1, CURRENT_REVISION + 1))
    compares = re.compile(r"revision\s*(>=|<=|==|!=|<|>)\s*\d")
    for path in SOURCE.rglob("*.py"):
        assert not compares.search(path.read_text()), (
            f"{path.relative_to(SOURCE)} compares a revision number; read a recipe flag"
        )
