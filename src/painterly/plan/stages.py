"""The plan of a run, as plain data: which stages, at what sizes, with how many steps, which style layers, which
tiles, how much L-BFGS history; and the recipe table that says how each run revision computes.

:func:`make_plan` is a pure function of the settings (:class:`~painterly.config.RunConfig`), the content's size,
the network's layer description (:class:`~painterly.nets.base.LayerInfo`) and the free memory, so a plan can be
made, shown, tested and kept without running anything; a resumed run is given its checkpoint's recipe and tiling
plan, so it computes as it began.

**Recipes.**  How a run computes changed a few times after checkpoints had been written; each such change is a
row of :data:`RECIPES`, read by name (its revision number), and the arithmetic reads the row's named flags instead
of comparing revision numbers.  From now on every change of the default result is a new row, landed on its own,
and :data:`CURRENT_REVISION` points at it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from painterly.config import RunConfig
from painterly.engine.optim import auto_history_size
from painterly.errors import OptionError
from painterly.nets.base import LayerInfo
from painterly.plan.memory import BASE_BYTES, estimate_run_bytes, estimate_tiled_run_bytes, largest_size_within

__all__ = [
    "AUTO_TILE",
    "COARSE_STAGE_MIN_STRIDE",
    "CURRENT_REVISION",
    "FINAL_STAGE_SHARE",
    "KEEP_FREED_MARGIN",
    "MIN_STAGE_STEPS",
    "MIXED_PRECISION_ACTIVATION_BYTES",
    "RECIPES",
    "NetworkShape",
    "Plan",
    "Recipe",
    "Stage",
    "make_plan",
    "pyramid_sizes",
    "recipe",
    "split_iterations",
]

#: Bytes per counted activation value under mixed precision: the layers keep bfloat16 (2 bytes), and the features
#: the losses read are handed out and differentiated in float32; 3 on average was fitted to VGG-19's peaks after a
#: full L-BFGS history at 512 and 1024 px (docs/networks.md), where 2 estimated 10-18 % below the peak.
MIXED_PRECISION_ACTIVATION_BYTES = 3

#: Core size of the tiles chosen automatically for stages that would not fit in memory whole.
AUTO_TILE = 512

#: Fewest steps a stage gets when the budget allows: L-BFGS restarts at each stage and its first step
#: is deliberately tiny, so a stage of one or two steps would do nothing but upsample.
MIN_STAGE_STEPS = 20

#: Share of all steps that the final (full-size) stage gets: coarse stages are cheap, but what they settle is partly
#: undone at the next size (upsampling blurs away the fine-scale style), so time at full size pays off more
#: (docs/performance.md, "Time to quality").
FINAL_STAGE_SHARE = 0.7

#: Style layers of a smaller stride than this (``relu1_x``, ``relu2_x``) are left out of every stage but the last
#: (recipes that say so): the fine texture they settle at a coarse stage is blurred away by the upsampling after it,
#: so those stages' steps go to the coarser layers, whose arrangement the full-size stage is slowest to move
#: (docs/performance.md, "Time to quality").  A stage keeps them where no style weights a coarser layer.
COARSE_STAGE_MIN_STRIDE = 4

#: A run keeps what it frees for reuse only if free memory holds its estimated peak this many times over: kept blocks
#: raise resident memory beyond the estimate, and near the limit the estimate's own slack must not be spent on speed
#: (docs/performance.md).
KEEP_FREED_MARGIN = 1.5


@dataclass(frozen=True)
class Recipe:
    """How a run of one revision computes: every flag is read by name where the arithmetic depends on it."""

    revision: int
    what_changed: str
    #: the final stage's share of the steps; None: every stage half the previous one's
    final_stage_share: float | None
    #: a later stage starts from the previous result upsampled with the content's finer detail put back
    restore_detail: bool
    #: the Gram loss's backward product in the convolutions' dtype (float32 features in)
    gram_gradient_in_compute_dtype: bool
    #: the Gram and content losses take bfloat16 features as they are, with no float32 copies
    losses_take_low_precision: bool
    #: tiled stages form the Gram matrices in wider windows and back-propagate the features as computed
    tiled_wide_gram_pass: bool
    #: the tiled grid moves among a few positions per axis (a few window shapes), not one per stride
    tiled_grid_positions: bool
    #: stages before the last leave out the style layers finer than COARSE_STAGE_MIN_STRIDE
    coarse_stages_skip_fine_layers: bool
    #: style_weight "auto" is chosen from the pictures (painterly.plan.balance); a checkpoint keeps the number, so a
    #: resumed run never chooses again, and an older revision refuses "auto"
    auto_style_weight: bool = False
    #: a loss above BLOWUP_FACTOR times the stage's lowest sends the picture back to that lowest one, with L-BFGS's
    #: memory forgotten (painterly.engine.loop); a run that never blows up computes as the revision before
    restart_on_blowup: bool = False
    #: every blow-up after a stage's first also halves the step size (painterly.engine.loop): a fresh L-BFGS from the
    #: same picture otherwise retraces the same steps into the same blow-up
    halve_rate_on_repeated_blowup: bool = False


def _recipes(*rows: Recipe) -> dict[int, Recipe]:
    return {row.revision: row for row in rows}


_FIRST = Recipe(
    revision=1,
    what_changed="the first: steps halving per stage, plain bicubic upsampling, the Gram gradient in float32",
    final_stage_share=None,
    restore_detail=False,
    gram_gradient_in_compute_dtype=False,
    losses_take_low_precision=False,
    tiled_wide_gram_pass=False,
    tiled_grid_positions=False,
    coarse_stages_skip_fine_layers=False,
)

#: Every revision a checkpoint may name, oldest first; each row is the one before with what changed (issue 8 made
#: revisions 2-5; docs/performance.md).
RECIPES: Mapping[int, Recipe] = _recipes(
    _FIRST,
    _r2 := dataclasses.replace(
        _FIRST, revision=2, what_changed="FINAL_STAGE_SHARE of the steps at full size; the content's detail restored "
        "on upsampling; the Gram gradient in the convolutions' dtype",
        final_stage_share=FINAL_STAGE_SHARE, restore_detail=True, gram_gradient_in_compute_dtype=True,
    ),
    _r3 := dataclasses.replace(
        _r2, revision=3, what_changed="under mixed precision the Gram and content losses take the bfloat16 "
        "features as they are, with no float32 copies",
        gram_gradient_in_compute_dtype=False, losses_take_low_precision=True,
    ),
    _r4 := dataclasses.replace(
        _r3, revision=4, what_changed="tiled stages form the Gram matrices in wider windows and back-propagate the "
        "features as computed", tiled_wide_gram_pass=True,
    ),
    _r5 := dataclasses.replace(
        _r4, revision=5, what_changed="the tiled grid at four positions per axis; coarse stages leave out the fine "
        "style layers", tiled_grid_positions=True, coarse_stages_skip_fine_layers=True,
    ),
    _r6 := dataclasses.replace(
        _r5, revision=6, what_changed="style_weight 'auto' chooses the weight from the pictures' edge contrast "
        "(issue 19 part 3); a numeric weight computes as revision 5", auto_style_weight=True,
    ),
    _r7 := dataclasses.replace(
        _r6, revision=7, what_changed="an L-BFGS blow-up (a loss ten times the stage's lowest) goes back to the "
        "stage's best picture with a fresh optimiser; a run without one computes as revision 6",
        restart_on_blowup=True,
    ),
    dataclasses.replace(
        _r7, revision=8, what_changed="a stage's second and later blow-ups also halve the step size; a run with at "
        "most one blow-up a stage computes as revision 7", halve_rate_on_repeated_blowup=True,
    ),
)  # fmt: skip
#: The recipe new runs use.
CURRENT_REVISION = max(RECIPES)


def recipe(revision: int) -> Recipe:
    """The row of a revision, or a one-sentence refusal for one this version does not know."""
    if revision not in RECIPES:
        raise OptionError(f"this checkpoint was made by a newer painterly (revision {revision}); upgrade")
    return RECIPES[revision]


def pyramid_sizes(size: int, start_size: int | None, factor: float = math.sqrt(2)) -> list[int]:
    """Long-side sizes of the coarse-to-fine stages, ending exactly at ``size``.

    >>> pyramid_sizes(512, 256)
    [256, 362, 512]
    """
    if start_size is None or start_size >= size:
        return [size]
    count = math.floor(math.log(size / start_size, factor) + 1e-9)  # first stage never below start_size
    return [round(size / factor ** (count - index)) for index in range(count)] + [size]


def split_iterations(total: int, stages: int, final_share: float | None = FINAL_STAGE_SHARE) -> list[int]:
    """Share ``total`` steps over the stages: ``final_share`` of them for the last, the rest halving per stage.

    Each sqrt(2) stage doubles the pixels and so the cost per step: halving the steps over the coarse stages
    gives each of them about the same wall time.  ``final_share=None`` halves over all stages (the split of
    revision 1).  Each stage gets at least ``min(MIN_STAGE_STEPS, total // (2 * stages))`` steps (the
    difference comes out of the earliest stages); and always at least one.
    """
    floor = max(1, min(MIN_STAGE_STEPS, total // (2 * stages)))
    halving = [0.5**index for index in range(stages)]
    if final_share is None or stages == 1:
        shares = [share / sum(halving) for share in halving]
    else:
        coarse = halving[: stages - 1]
        shares = [(1 - final_share) * share / sum(coarse) for share in coarse] + [final_share]
    counts = [max(floor, math.floor(total * share)) for share in shares]
    excess = sum(counts) - total
    for index in range(stages):  # too many: take them from the earliest (cheapest) stages that can spare them
        taken = min(max(0, counts[index] - floor), max(0, excess))
        counts[index] -= taken
        excess -= taken
    counts[0] -= excess  # too few (rounding down): the remainder goes to the first stage
    return counts


@dataclass(frozen=True)
class NetworkShape:
    """What a plan needs to know of the network: the layers it computes, their deepest stride, its smallest input,
    and its measured peak memory over what its layers count (``NetworkSpec.memory_factor``)."""

    layers: tuple[LayerInfo, ...]
    max_stride: int
    min_side: int
    memory_factor: float = 1.0

    def stride(self, name: str) -> int:
        return next(layer.stride for layer in self.layers if layer.name == name)


@dataclass(frozen=True)
class Stage:
    """One stage of the coarse-to-fine pyramid."""

    size: int  #: long side in pixels
    shape: tuple[int, int]  #: (width, height)
    steps: int
    #: each style's layer weights in this stage
    style_layer_weights: tuple[dict[str, float], ...] = field(repr=False)
    tile_core: int | None  #: core size when the stage is tiled, else None


@dataclass(frozen=True)
class Plan:
    """A run's stages and the decisions made once for all of them."""

    recipe: Recipe
    stages: tuple[Stage, ...]
    history_size: int  #: L-BFGS curvature pairs (the user's, or the automatic choice)
    margin: int  #: tile margin, rounded up to the deepest stride
    keep_freed_memory: bool  #: whether the run may keep what it frees for reuse (painterly.engine.allocator)
    estimated_bytes: int = 0  #: the final stage's estimated peak, run whole (painterly.plan.memory)

    @property
    def tile_plan(self) -> list[int | None]:
        """Each stage's tile core (what a checkpoint keeps, so a resumed run tiles as it began)."""
        return [stage.tile_core for stage in self.stages]

    @property
    def sizes(self) -> list[int]:
        return [stage.size for stage in self.stages]


def _short_side(image_size: tuple[int, int], long_side: int) -> int:
    return max(1, round(min(image_size) * long_side / max(image_size)))


def stage_shape(content_size: tuple[int, int], stage_size: int) -> tuple[int, int]:
    """(width, height) of the content at a stage whose long side is ``stage_size``."""
    width, height = content_size
    short = _short_side((width, height), stage_size)
    return (stage_size, short) if width >= height else (short, stage_size)


def feasible_sizes(sizes: list[int], image_size: tuple[int, int], min_side: int) -> list[int]:
    """Drop coarse stages too small for the deepest layer; refuse if even the final size is."""
    feasible = [s for s in sizes if _short_side(image_size, s) >= min_side]
    if not feasible:
        width, height = image_size
        raise OptionError(
            f"at size {sizes[-1]} the content ({width}x{height}, aspect {max(image_size) / min(image_size):.1f}:1) "
            f"has a short side of {_short_side(image_size, sizes[-1])} px, but the chosen layers need at least "
            f"{min_side} px; use a larger --size, shallower layers, or a less extreme aspect ratio"
        )
    return feasible


def _aligned(pixels: int, align: int) -> int:
    """Rounded up to the deepest layer's stride, so windows share the image's pooling grid (tiling)."""
    return math.ceil(pixels / align) * align


class _Estimates:
    """Memory estimates of stages of one run (the network, its content layers, optimiser and margin fixed)."""

    def __init__(
        self, config: RunConfig, network: NetworkShape, content_layers: Sequence[str], margin: int,
        activation_bytes: int = 4, base_bytes: int = BASE_BYTES,
    ) -> None:  # fmt: skip
        self.config, self.network, self.margin = config, network, margin
        self.activation_bytes, self.base_bytes = activation_bytes, base_bytes
        self.content_layers = [layer for layer in network.layers if layer.name in content_layers]

    def stage_bytes(self, shape: tuple[int, int], core: int | None, history: int) -> int:
        """Estimated peak of a stage of this shape, whole (``core`` None) or tiled."""
        if core is None:
            return estimate_run_bytes(self.network.layers, *shape, optimizer=self.config.optimizer, history=history,
                                      activation_bytes=self.activation_bytes, base_bytes=self.base_bytes,
                                      memory_factor=self.network.memory_factor)  # fmt: skip
        return estimate_tiled_run_bytes(
            self.network.layers, *shape, core=core, margin=self.margin, content_layers=self.content_layers,
            optimizer=self.config.optimizer, history=history,
        )  # fmt: skip


def _tile_core(
    config: RunConfig, shape: tuple[int, int], estimates: _Estimates, history: int, free: int | None
) -> int | None:
    """The core size to tile a stage of this shape with, or None to run it whole.

    An explicit tile size tiles every stage larger than one core; the default (None) tiles, with
    :data:`AUTO_TILE` px cores, only the stages that would not fit in free memory whole (and none when
    the memory check is off, or free memory cannot be told).
    """
    if config.tile_size == 0 or config.tiling_unsupported():
        return None
    if config.tile_size is None:
        if not config.check_memory or free is None or estimates.stage_bytes(shape, None, history) <= free:
            return None
        core = AUTO_TILE
    else:
        core = config.tile_size
    core = _aligned(core, estimates.network.max_stride)
    return core if max(shape) > core else None


def _style_weights_at(
    is_last: bool,
    recipe: Recipe,
    network: NetworkShape,
    per_style_weights: Sequence[dict[str, float]],
) -> tuple[dict[str, float], ...]:
    """Each style's layer weights in a stage: all of them in the last stage (and in recipes that keep them), else
    without the layers finer than :data:`COARSE_STAGE_MIN_STRIDE`, for every style alike, where any style weights a
    coarser layer (so a style weighting only fine layers is left out of the coarse stages)."""
    if not recipe.coarse_stages_skip_fine_layers or is_last:
        return tuple(per_style_weights)

    def fine(layer: str) -> bool:
        return network.stride(layer) < COARSE_STAGE_MIN_STRIDE

    if not any(w for weights in per_style_weights for layer, w in weights.items() if not fine(layer)):
        return tuple(per_style_weights)
    return tuple({layer: 0.0 if fine(layer) else w for layer, w in weights.items()} for weights in per_style_weights)


def make_plan(
    config: RunConfig,
    content_size: tuple[int, int],
    network: NetworkShape,
    *,
    content_layer_weights: Mapping[str, float],
    per_style_weights: Sequence[dict[str, float]],
    free_bytes: int | None,
    device_type: str = "cpu",
    revision: int = CURRENT_REVISION,
    tile_plan: Sequence[int | None] | None = None,
    mixed_precision: bool = False,
    base_bytes: int | None = None,
) -> Plan:
    """The stages of a run and the decisions made once for all of them (a pure function: nothing is run).

    ``free_bytes`` is the free memory of the device (None: unknown); ``revision`` and ``tile_plan`` are a resumed
    run's (its checkpoint's), else today's and decided here; ``mixed_precision``: the network keeps bfloat16
    activations (:data:`MIXED_PRECISION_ACTIVATION_BYTES` per value, not float32's 4) in the memory estimates;
    ``base_bytes``: what the process holds before the run's buffers (None: :data:`painterly.plan.memory.BASE_BYTES`).
    Refuses, with the largest size that fits, a run whose final stage would not fit in ``free_bytes`` (when
    ``config.check_memory``).
    """
    chosen = recipe(revision)
    sizes = feasible_sizes(pyramid_sizes(config.size, config.start_size), content_size, network.min_side)
    sizes = sizes[-config.iterations :]  # fewer steps than stages: keep the finest stages only
    steps = split_iterations(config.iterations, len(sizes), chosen.final_stage_share)
    shapes = [stage_shape(content_size, size) for size in sizes]
    history = config.history_size if config.history_size is not None else auto_history_size(math.prod(shapes[-1]))
    margin = _aligned(config.tile_margin, network.max_stride)
    content_layers = [name for name, w in content_layer_weights.items() if w]
    activation_bytes = MIXED_PRECISION_ACTIVATION_BYTES if mixed_precision else 4
    estimates = _Estimates(config, network, content_layers, margin, activation_bytes=activation_bytes,
                           base_bytes=BASE_BYTES if base_bytes is None else base_bytes)  # fmt: skip
    if tile_plan is None:
        tile_plan = [_tile_core(config, shape, estimates, history, free_bytes) for shape in shapes]
    stages = tuple(
        Stage(size, shape, count, _style_weights_at(index == len(sizes) - 1, chosen, network, per_style_weights), core)
        for index, (size, shape, count, core) in enumerate(zip(sizes, shapes, steps, tile_plan, strict=True))
    )
    if config.check_memory:
        _check_memory(config, shapes[-1], tile_plan[-1], estimates, history, free_bytes, device_type)
    whole = all(core is None for core in tile_plan)
    final_bytes = estimates.stage_bytes(shapes[-1], None, history)
    keep = device_type == "cpu" and whole and free_bytes is not None and final_bytes * KEEP_FREED_MARGIN <= free_bytes
    return Plan(recipe=chosen, stages=stages, history_size=history, margin=margin, keep_freed_memory=keep,
                estimated_bytes=final_bytes)  # fmt: skip


def _check_memory(
    config: RunConfig,
    shape: tuple[int, int],
    core: int | None,
    estimates: _Estimates,
    history: int,
    free: int | None,
    device_type: str,
) -> None:
    """Refuse, with the largest size that fits, a run whose final stage's estimate exceeds the free memory."""
    width, height = shape
    needed = estimates.stage_bytes(shape, core, history)
    if free is None or needed <= free:
        return

    def history_at(w: int, h: int) -> int:  # what a run of this final size would keep
        return auto_history_size(w * h) if config.history_size is None else history

    aspect = min(width, height) / max(width, height)
    fits = largest_size_within(
        free, config.size, aspect, lambda w, h: estimates.stage_bytes((w, h), core, history_at(w, h))
    )
    if core is not None:
        raise OptionError(
            f"a {width}x{height} run needs about {needed / 2**30:.1f} GiB even tiled, but only "
            f"{free / 2**30:.1f} GiB is free on {device_type}; the largest size that fits is about {fits} "
            f"px (--size {fits}), or lower --history-size (each L-BFGS pair is two copies of the image), use "
            "--optimizer adam, a smaller --tile-size, or pass --no-check-memory to try anyway"
        )
    raise OptionError(
        f"a {width}x{height} run needs about {needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free "
        f"on {device_type}; the largest size that fits is about {fits} px (--size {fits}), or lower "
        "--history-size, or pass --no-check-memory to try anyway"
    )
