"""Print size in bounded memory: peak RSS and time of tiled stages, and how close tiling is to untiled.

Usage:
    python bench/tiling.py memory [--sizes 1024 2048 4096 8192] [--steps 2] [--tile 512] [--margin 64]
                                  [--revision N]
    python bench/tiling.py agreement [--size 512] [--margins 0 32 64 112]
    python bench/tiling.py heap --size 1024 --steps 40 --tile 256 --history 28 [--revisions 4 5]
    python bench/tiling.py crop --size 1024 --tile 256 --iterations 200 --out docs/performance/tiled_1024_crop.jpg
                                [--box 256 128 768 512] [--full PICTURE]

``memory`` runs ``stylize()`` at each size as one tiled stage (L-BFGS with ``--history`` pairs; the
content and style are the bundled examples, upscaled) in a fresh subprocess, so that each peak RSS
(``ru_maxrss``) is its own, and prints wall time (loading, targets and steps), seconds per step (the mean after the
first step, which also loads and encodes the targets) and peak
RSS, with the untiled run's memory estimate beside it.  ``--untiled`` adds the same run untiled where it fits;
``--revision N`` computes as run revision N did (painterly.plan.stages.CURRENT_REVISION), for comparison.

``agreement`` evaluates the real objective once untiled and once tiled at each margin on the same image
(the content photo with noise, as in a run) and prints the relative difference of the losses and of
the gradients: how closely a tiled run follows an untiled one.

``heap`` runs one tiled stage of ``--steps`` steps per revision, each in a fresh subprocess, and prints every
fifth step's peak resident memory (Linux: ``VmHWM``, reset after each step) and the memory held between steps:
whether the heap's free pieces make each evaluation's peak creep up over a long run; and the seam ratio of the
picture (the mean pixel step across lines where core borders can fall over the mean step anywhere: 1 = no seam).

``crop`` runs ``painterly.stylize`` with its defaults (coarse-to-fine, mixed precision as decided for this CPU) on
the bundled examples at ``--size`` with ``--tile`` px cores (every stage larger than a core tiled), saves the
``--box`` (left top right bottom, full-resolution pixels) of the result as a JPEG at ``--out``, and prints the run's
wall time and the whole picture's seam ratios: the picture docs/performance.md shows to let the eye look for seams.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "examples" / "tubingen.jpg"
STYLE = REPO / "examples" / "starry_night.jpg"


def _resident_gib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in GiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    raise RuntimeError(f"no {field} in /proc/self/status")


def _step_peaks(peaks: list[tuple[float, float]]) -> None:
    """After each step: its peak and the memory held now; then restart the peak count (Linux's clear_refs)."""
    peaks.append((_resident_gib("VmHWM"), _resident_gib("VmRSS")))
    Path("/proc/self/clear_refs").write_text("5")


def seam_ratio(image: object, step: int) -> float:
    """Mean pixel step across lines at multiples of ``step`` px over the mean step anywhere (both axes).

    Core borders of a tiled run fall on such lines; a seam would raise the ratio above 1.
    """
    import numpy as np

    pixels = np.asarray(image, dtype=np.float64)
    ratios = []
    for axis in (0, 1):
        steps = np.abs(np.diff(pixels, axis=axis)).mean(axis=tuple(a for a in range(pixels.ndim) if a != axis))
        lines = np.arange(1, pixels.shape[axis]) % step == 0  # steps[i] crosses from line i to line i + 1
        ratios.append(steps[lines].mean() / steps.mean())
    return float(np.mean(ratios))


def measure(
    size: int, steps: int, tile: int, margin: int, history: int, revision: int | None, heap: bool = False
) -> dict[str, Any]:
    from painterly.config import RunConfig
    from painterly.nets.registry import default_weights
    from painterly.objective.tiled import grid_step
    from painterly.run import StyleTransferRun

    config = RunConfig(size=size, start_size=None, iterations=steps, tile_size=tile, tile_margin=margin,
                       history_size=history, max_pixels=2**31, weights=default_weights())  # fmt: skip
    stamps: list[float] = []
    peaks: list[tuple[float, float]] = []

    def on_step(record: object) -> None:
        stamps.append(time.perf_counter())
        if heap:
            _step_peaks(peaks)

    began = time.perf_counter()
    run = StyleTransferRun(CONTENT, STYLE, config, **({} if revision is None else {"revision": revision}))
    image = run.execute(on_step=on_step)  # what stylize() runs
    wall = time.perf_counter() - began
    steps_s = [b - a for a, b in zip([began, *stamps], stamps, strict=False)]
    row: dict[str, Any] = {
        "size": size,
        "width": image.width,
        "height": image.height,
        "wall_s": wall,
        # the first step includes loading and the targets; each later one draws its own grid position, whose
        # windows (their number and sizes) set its time, so a mean over several steps is the fair figure
        "mean_step_s": sum(steps_s[1:]) / len(steps_s[1:]) if len(steps_s) > 1 else steps_s[0],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if heap:  # the per-step peaks, and whether the moving grid left a seam
        row["step_peaks"] = peaks
        # every grid position of every revision is a multiple of 16 px; revision 5's of grid_step, fewer lines
        row["seam_ratio"] = seam_ratio(image, 16)
        row["seam_ratio_at_grid_step"] = seam_ratio(image, grid_step(tile, 16))
    return row


def _in_child(
    args: argparse.Namespace, size: int, tile: int, revision: int | None, heap: bool = False
) -> dict[str, Any] | str:
    """:func:`measure` in a fresh subprocess, so its peak RSS is its own: its row, or the child's last error line."""
    command = [sys.executable, __file__, "child", "--sizes", str(size), "--steps", str(args.steps), "--tile",
               str(tile), "--margin", str(args.margin), "--history", str(args.history)]  # fmt: skip
    command += ["--revision", str(revision)] if revision is not None else []
    command += ["--heap"] if heap else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return done.stderr.strip().splitlines()[-1]
    return json.loads(done.stdout.splitlines()[-1])


def memory(args: argparse.Namespace) -> None:
    from painterly.nets.registry import network
    from painterly.nets.vgg import LAYER_NAMES
    from painterly.plan.memory import estimate_run_bytes

    names = network("vgg19").layers[: LAYER_NAMES.index("relu5_1") + 1]
    print(f"tiled stages: {args.tile} px cores, {args.margin} px margins, L-BFGS history {args.history}, "
          f"{args.steps} steps each, revision {args.revision or 'current'}")  # fmt: skip
    print(
        f"{'size':>6} {'shape':>11} {'mode':>8} {'wall s':>8} {'s/step':>8} {'peak RSS':>10} {'untiled estimate':>17}"
    )
    for size in args.sizes:
        modes = [("tiled", args.tile)] + ([("untiled", 0)] if args.untiled else [])
        for mode, tile in modes:
            row = _in_child(args, size, tile, args.revision)
            if isinstance(row, str):
                print(f"{size:>6} {mode:>8} failed: {row}")
                continue
            estimate = estimate_run_bytes(names, row["width"], row["height"], history=args.history) / 2**30
            print(f"{size:>6} {row['width']:>5}x{row['height']:<5} {mode:>8} {row['wall_s']:>8.1f} "
                  f"{row['mean_step_s']:>8.1f} {row['peak_rss_mib'] / 1024:>6.2f} GiB {estimate:>13.1f} GiB",
                  flush=True)  # fmt: skip


def heap(args: argparse.Namespace) -> None:
    if not Path("/proc/self/clear_refs").exists():
        sys.exit("heap needs Linux's /proc/self/clear_refs to reset the peak after each step")
    print(f"one tiled stage at {args.size} px: {args.tile} px cores, {args.margin} px margins, L-BFGS history "
          f"{args.history}, {args.steps} steps; per step: peak GiB / held between steps GiB")  # fmt: skip
    for revision in args.revisions:
        row = _in_child(args, args.size, args.tile, revision, heap=True)
        if isinstance(row, str):
            print(f"revision {revision} failed: {row}")
            continue
        peaks = row["step_peaks"]
        shown = " ".join(f"{i + 1}:{p:.2f}/{h:.2f}" for i, (p, h) in enumerate(peaks) if (i + 1) % 5 == 0)
        worst = max((p - h for p, h in peaks[1:]), default=0.0)  # the first step's peak includes loading, targets
        peak = max(p for p, _ in peaks)  # ru_maxrss would be only the last step's: the resets lower it too
        print(f"revision {revision}: {row['wall_s']:.1f} s, peak {peak:.2f} GiB, largest rise above the memory "
              f"held {worst:.2f} GiB; seam ratio {row['seam_ratio']:.3f} (at the grid step of revision 5: "
              f"{row['seam_ratio_at_grid_step']:.3f}); {shown}", flush=True)  # fmt: skip


def agreement(args: argparse.Namespace) -> None:
    import torch

    from painterly.io.images import load_image, pil_to_tensor, resize_long_side
    from painterly.losses.core import ContentLoss, GramLoss
    from painterly.nets.encoder import VGGEncoder
    from painterly.nets.registry import default_weights
    from painterly.objective.tiled import TiledObjective
    from painterly.objective.whole import Objective
    from painterly.stylize import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS

    encoder = VGGEncoder(default_weights(), [*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS])
    content = pil_to_tensor(resize_long_side(load_image(CONTENT).rgb, args.size))
    style = pil_to_tensor(resize_long_side(load_image(STYLE).rgb, args.size))
    image = (content + 0.1 * torch.randn(content.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    content_weights = {"relu4_2": 1.0}
    style_weights = {layer: 50.0 / len(DEFAULT_STYLE_LAYERS) for layer in DEFAULT_STYLE_LAYERS}

    def evaluate(objective: Objective | TiledObjective) -> tuple[dict[str, float], torch.Tensor]:
        x = image.clone().requires_grad_(True)
        total, parts = objective(x)
        total.backward()
        assert x.grad is not None
        return {k: float(v.detach()) for k, v in parts.items()}, x.grad

    whole = Objective.build(encoder, content=content, styles=[style], content_loss=ContentLoss(),
                            style_loss=GramLoss(), content_layer_weights=content_weights,
                            style_layer_weights=style_weights, style_blend=[1.0], tv_weight=0.0)  # fmt: skip
    began = time.perf_counter()
    reference, reference_grad = evaluate(whole)
    print(f"untiled {tuple(content.shape[-2:])}: content {reference['content']:.5g}, style {reference['style']:.5g} "
          f"({time.perf_counter() - began:.1f} s)")  # fmt: skip
    for margin in args.margins:
        tiled = TiledObjective.build(encoder, content=content, styles=[style], content_layer_weights=content_weights,
                                     style_layer_weights=[style_weights], core=args.tile, margin=margin)  # fmt: skip
        began = time.perf_counter()
        losses, grad = evaluate(tiled)
        seconds = time.perf_counter() - began
        relative = float((grad - reference_grad).norm() / reference_grad.norm())
        cosine = float(
            torch.nn.functional.cosine_similarity(grad.double().flatten(), reference_grad.double().flatten(), dim=0)
        )
        print(f"tiled, {args.tile} px cores, margin {margin:>3}: content {losses['content']:.5g} "
              f"({losses['content'] / reference['content'] - 1:+.2e}), style {losses['style']:.5g} "
              f"({losses['style'] / reference['style'] - 1:+.2e}), gradient relative error {relative:.3e}, "
              f"cosine {cosine:.6f} ({seconds:.1f} s)")  # fmt: skip


def crop(args: argparse.Namespace) -> None:
    from painterly.io.images import save_image
    from painterly.objective.tiled import grid_step
    from painterly.stylize import stylize

    print(f"stylize at {args.size} px, {args.iterations} steps coarse-to-fine, {args.tile} px cores, "
          f"{args.margin} px margins; crop {tuple(args.box)}", flush=True)  # fmt: skip
    began = time.perf_counter()
    image = stylize(CONTENT, STYLE, size=args.size, iterations=args.iterations, tile_size=args.tile,
                    tile_margin=args.margin, progress=True)  # fmt: skip
    wall = time.perf_counter() - began
    if args.full is not None:
        save_image(image, args.full, overwrite=True, quality=92)
    save_image(image.crop(tuple(args.box)), args.out, overwrite=True, quality=92)
    print(f"{image.width}x{image.height} in {wall:.1f} s; seam ratio {seam_ratio(image, 16):.3f} (at the grid "
          f"step, {grid_step(args.tile, 16)} px: {seam_ratio(image, grid_step(args.tile, 16)):.3f}); "
          f"crop saved to {args.out}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["memory", "agreement", "heap", "crop", "child"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--margin", type=int, default=64)
    parser.add_argument("--margins", type=int, nargs="+", default=[0, 32, 64, 112])
    parser.add_argument("--history", type=int, default=5)
    parser.add_argument("--untiled", action="store_true")
    parser.add_argument(
        "--revision", type=int, default=None, help="run revision (default: painterly.plan.stages.CURRENT_REVISION)"
    )
    parser.add_argument("--revisions", type=int, nargs="+", default=[4, 5], help="heap: the revisions to compare")
    parser.add_argument("--heap", action="store_true", help=argparse.SUPPRESS)  # child: record each step's peak
    parser.add_argument("--iterations", type=int, default=200, help="crop: steps of the whole run")
    parser.add_argument("--box", type=int, nargs=4, default=[256, 128, 768, 512], help="crop: left top right bottom")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance" / "tiled_1024_crop.jpg")
    parser.add_argument("--full", type=Path, default=None, help="crop: also save the whole picture here")
    args = parser.parse_args()
    if args.part == "child":
        row = measure(args.sizes[0], args.steps, args.tile, args.margin, args.history, args.revision, args.heap)
        print(json.dumps(row))
    elif args.part == "memory":
        memory(args)
    elif args.part == "heap":
        heap(args)
    elif args.part == "crop":
        crop(args)
    else:
        agreement(args)


if __name__ == "__main__":
    main()
