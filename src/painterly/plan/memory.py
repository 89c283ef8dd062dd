"""Estimate a run's memory before it starts, so a too-large request fails with advice, not the OOM killer.

The estimate counts what one optimisation step keeps alive: every activation up
to the deepest layer (the ReLU outputs autograd saves, max-pool indices), the
gradient buffers of backward, and the optimiser's copies of the image (L-BFGS
keeps ``history`` pairs of image-sized vectors).  ``OVERHEAD_FACTOR`` and
``BASE_BYTES`` were fitted to measured peak RSS (numbers below).

The network enters only through the description of the layers its encoder runs
(:attr:`painterly.nets.base.Encoder.computed_layers`): each layer's channels, its stride (a layer of stride
``s`` holds ``H // s`` x ``W // s`` positions) and the values each element keeps for the backward pass.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import torch

from painterly.nets.base import LayerInfo

__all__ = [
    "available_bytes",
    "estimate_run_bytes",
    "estimate_tiled_run_bytes",
    "gram_pass_core",
    "largest_fitting_size",
    "largest_size_within",
    "resident_bytes",
]

#: Live float32 slots per counted activation element at the peak of a step: fitted to measured peaks of short runs
#: and of whole coarse-to-fine runs, whose allocator grows over many steps; the factor covers both (the figures:
#: docs/performance.md, "Figures behind the code's constants").
OVERHEAD_FACTOR = 1.25
#: Interpreter, torch, and the network's weights (the intercept of the same fit).
BASE_BYTES = 520 * 2**20
#: L-BFGS history pairs assumed when a caller names none (each pair is two image-sized float32 vectors); runs
#: pass their own, automatic or chosen (painterly.engine.optim.auto_history_size).
LBFGS_HISTORY = 20


def _positions(layer: LayerInfo, height: int, width: int) -> int:
    """Positions of ``layer``'s feature map for an input of ``height`` x ``width`` (its exact geometry)."""
    return layer.size(height) * layer.size(width)


def _activation_elements(layers: Sequence[LayerInfo], height: int, width: int) -> int:
    """Sum of C*H*W over every layer the encoder runs, in float32 slots (max pooling's int64 indices count 2)."""
    return sum(layer.channels * _positions(layer, height, width) * layer.memory_slots for layer in layers)


def _optimizer_image_copies(optimizer: str, history: int) -> int:
    """Image-sized float32 buffers a stage keeps: L-BFGS's 2 per history pair plus 4, a first-order method's 6."""
    return 2 * history + 4 if optimizer == "lbfgs" else 6


def estimate_run_bytes(
    layers: Sequence[LayerInfo],
    width: int,
    height: int,
    *,
    optimizer: str = "lbfgs",
    history: int = LBFGS_HISTORY,
    activation_bytes: int = 4,
    base_bytes: int = BASE_BYTES,
    memory_factor: float = 1.0,
) -> int:
    """Peak bytes of one stage at ``width`` x ``height`` for an encoder running ``layers`` (its computed layers).

    ``activation_bytes``: bytes per activation value, 4 in float32, 2 under mixed precision (the network's layers
    compute and keep bfloat16; the image and the optimiser's buffers stay float32).  ``base_bytes``: what the
    process holds before the run's own buffers: by default :data:`BASE_BYTES` (fitted with VGG-19 loaded), and a
    run on a CPU passes the process's resident memory once its network is loaded (:func:`resident_bytes`), which
    follows the network's weights and whatever else the process keeps.  ``memory_factor``: the network's measured
    peak over this count (:attr:`painterly.nets.registry.NetworkSpec.memory_factor`), multiplying everything but
    the base.  Measured peaks against this estimate, per network and precision: docs/networks.md.
    """
    elements = _activation_elements(layers, height, width)
    image_copies = _optimizer_image_copies(optimizer, history)
    activations = activation_bytes * OVERHEAD_FACTOR * elements
    return int(base_bytes + memory_factor * (activations + 4 * image_copies * 3 * width * height))


def estimate_tiled_run_bytes(
    layers: Sequence[LayerInfo],
    width: int,
    height: int,
    *,
    core: int,
    margin: int,
    content_layers: Sequence[LayerInfo],
    optimizer: str = "lbfgs",
    history: int = LBFGS_HISTORY,
) -> int:
    """Peak bytes of one tiled stage (painterly.objective.tiled): one window's activations plus image-sized buffers.

    ``content_layers`` are the content layers: each one's whole feature map is kept as the target.
    The window term stops growing once the image is larger than a window, so beyond that the estimate grows
    only by the per-pixel buffers: the image's optimiser copies, its gradient and the content targets.
    """
    window = window_activation_bytes(layers, *_largest_window(width, height, core, margin))
    targets = sum(layer.channels * _positions(layer, height, width) for layer in content_layers)
    image_copies = _optimizer_image_copies(optimizer, history) + 3  # + tiled gradient, luminance view, window grad
    return int(BASE_BYTES + window + 4 * (targets + image_copies * 3 * width * height))


def _largest_window(width: int, height: int, core: int, margin: int) -> tuple[int, int]:
    """Width and height of the largest window of a tiled stage: a core with its margins, cut to the image."""
    return min(width, core + 2 * margin), min(height, core + 2 * margin)


def window_activation_bytes(layers: Sequence[LayerInfo], width: int, height: int) -> int:
    """The activation term of one window of a tiled stage's backward pass, as estimate_tiled_run_bytes counts it."""
    return int(4 * OVERHEAD_FACTOR * _activation_elements(layers, height, width))


def gram_pass_window_bytes(layers: Sequence[LayerInfo], width: int, height: int) -> int:
    """Peak bytes of a forward pass without autograd that forms each layer's Gram matrix as it is reached.

    Alive at once: a layer's input and output, and a float32 copy of one layer's features (the core whose Gram
    matrix is formed); counted in float32 slots also when the network computes in bfloat16, which leaves room for
    what a backend may allocate besides (max-pooling indices, a second core copy) and is measured in
    docs/performance.md (tiling, round 4: peaks fell).
    """
    pairs, widest, previous = 0, 0, 3 * height * width  # the RGB input
    for layer in layers:
        current = layer.channels * _positions(layer, height, width)
        pairs, widest, previous = max(pairs, previous + current), max(widest, current), current
    return 4 * (pairs + widest)


def gram_pass_core(layers: Sequence[LayerInfo], width: int, height: int, *, core: int, margin: int) -> int:
    """The core for a tiled stage's first pass (the image's Gram matrices, painterly.objective.tiled): a multiple of
    ``core``.

    That pass keeps no activations for a backward, so a window of it needs several times less memory than one of
    the second pass, and wider windows spend less of the work on their margins.  The multiple is the largest whose
    window's peak (:func:`gram_pass_window_bytes`) stays within the second pass's window term: the tiled estimate
    then bounds both passes.
    """
    budget = window_activation_bytes(layers, *_largest_window(width, height, core, margin))
    multiple = 1
    while multiple * core < max(width, height):
        if gram_pass_window_bytes(layers, *_largest_window(width, height, (multiple + 1) * core, margin)) > budget:
            break
        multiple += 1
    return multiple * core


def resident_bytes() -> int | None:
    """This process's resident memory now (Linux: /proc/self/statm), or None if it cannot be told."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (MemAvailable on Linux), or None if it cannot be told."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def largest_fitting_size(
    layers: Sequence[LayerInfo],
    size: int,
    aspect: float,
    budget: int,
    *,
    optimizer: str,
    history: int = LBFGS_HISTORY,
) -> int:
    """Largest long side (<= size) whose untiled estimate fits ``budget`` bytes; ``aspect`` = short/long side."""
    return largest_size_within(
        budget, size, aspect, lambda w, h: estimate_run_bytes(layers, w, h, optimizer=optimizer, history=history)
    )


def largest_size_within(budget: int, size: int, aspect: float, estimate: Callable[[int, int], int]) -> int:
    """Largest long side (<= size) for which ``estimate(long, short)`` fits ``budget`` (estimates grow with size)."""
    low, high = 16, size
    while low < high:
        middle = (low + high + 1) // 2
        if estimate(middle, max(1, math.floor(middle * aspect))) <= budget:
            low = middle
        else:
            high = middle - 1
    return low
