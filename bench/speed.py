"""Seconds per optimiser step and per evaluation, and peak memory of stylize(), against the encoder's floor.

Usage:  python bench/speed.py [--sizes 256 512] [--steps 8] [--device cpu] [--mixed-precision]
                              [--revision N] [--no-keep-freed]

Each size runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own.  "floor"
is the encoder's bare forward+backward at the same shape and layers, no losses: the
features as computed (bfloat16 under mixed precision), a gradient injected at each: the
least any implementation with this network can spend per evaluation.  "eval" is one
evaluation of the run's objective and its gradient (what the floor bounds); "step"
adds the optimiser's own work (L-BFGS's two-loop recursion over its history), the
engine's bookkeeping and the per-step callback.  "gram" is the two matrix products any
Gram loss needs on top of the floor (G - A = F Fᵀ/M - A and (G - A) F at each style
layer, as GramLoss forms them), so "floor+gram" is the least a Gram-matrix objective can cost.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "examples" / "tubingen.jpg"
STYLE = REPO / "examples" / "starry_night.jpg"


def measure(
    size: int, steps: int, device: str, mixed: bool, revision: int | None, keep_freed: bool
) -> dict[str, float]:
    import torch

    import painterly.plan.stages
    from floor import bare_pass
    from painterly.config import RunConfig
    from painterly.engine.allocator import reuse_freed_memory
    from painterly.losses.core import gram_difference, times_features
    from painterly.nets.registry import default_weights
    from painterly.run import StyleTransferRun
    from painterly.stylize import DEFAULT_STYLE_LAYERS, resolve_device

    if not keep_freed:  # no run qualifies for keeping freed memory (painterly.engine.allocator)
        painterly.plan.stages.KEEP_FREED_MARGIN = math.inf
    config = RunConfig(size=size, start_size=None, weights=default_weights(), device=device, mixed_precision=mixed,
                       iterations=steps + 2)  # fmt: skip
    stamps: list[float] = []
    run = StyleTransferRun(CONTENT, STYLE, config, **({} if revision is None else {"revision": revision}))
    run.execute(on_step=lambda record: stamps.append(time.perf_counter()))
    per_step = statistics.median(b - a for a, b in itertools.pairwise(stamps[2:]))

    target = resolve_device(device)

    def timed(works: dict[str, Callable[[], object]]) -> dict[str, float]:
        """Median seconds of each work, run in turns (so a slow spell of the machine hits all of them alike)."""
        times: dict[str, list[float]] = {name: [] for name in works}
        for _ in range(steps + 1):
            for name, work in works.items():
                began = time.perf_counter()
                work()
                if target.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - began)
        return {name: statistics.median(values[1:]) for name, values in times.items()}

    objective, start = run.objective_at(size)
    start.requires_grad_(True)
    encoder = objective.encoder  # the run's own (channels_last on the CPU, its weights cast once)
    image = start.detach().clone().requires_grad_(True)
    with torch.no_grad():
        features = encoder(image, in_compute_dtype=True)
        # What the Gram losses cannot avoid on top: G - A and (G - A) F at each style layer, as GramLoss forms them
        # (painterly.losses.core.gram_difference and times_features), in the features' dtype.
        flats = [f.flatten(2) for name, f in features.items() if name in DEFAULT_STYLE_LAYERS]
        targets = [gram_difference(f, torch.zeros(1, f.shape[1], f.shape[1], device=target)) for f in flats]
    with reuse_freed_memory(run.plan.keep_freed_memory):  # as the run evaluated (painterly.engine.allocator)
        medians = timed({
            "evaluation": lambda: objective(start.clamp(0, 1))[0].backward(),
            "floor": bare_pass(encoder, image),
            "gram": lambda: [
                times_features(gram_difference(f, a).to(f.dtype), f) for f, a in zip(flats, targets, strict=True)
            ],
        })  # fmt: skip
    per_evaluation, floor, grams = medians["evaluation"], medians["floor"], medians["gram"]
    width, height = image.shape[-1], image.shape[-2]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size,
        "width": width,
        "height": height,
        "step_s": per_step,
        "evaluation_s": per_evaluation,
        "floor_s": floor,
        "gram_s": grams,
        "peak_rss_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                        help="as stylize(mixed_precision=...); default: the library's choice")  # fmt: skip
    parser.add_argument(
        "--revision",
        type=int,
        default=None,
        help="run revision (painterly.plan.stages.RECIPES; older ones as checkpoints of them resume; the automatic "
        "L-BFGS history is today's, 50 pairs at 512 px: round 4 ran with 100)",
    )
    parser.add_argument(
        "--no-keep-freed",
        dest="keep_freed",
        action="store_false",
        help="hand freed memory back as by default in glibc (painterly.engine.allocator), for comparison",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.sizes[0], args.steps, args.device, args.mixed_precision, args.revision,
                                 args.keep_freed)))  # fmt: skip
        return
    import torch

    print(f"painterly speed: torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"mixed precision {args.mixed_precision}, revision {args.revision or 'current'}, "
          f"keep freed memory {args.keep_freed}")  # fmt: skip
    print(f"{'size':>6} {'shape':>10} {'s/step':>8} {'s/eval':>8} {'floor s':>8} {'gram s':>8} {'eval/floor':>10} "
          f"{'eval/(floor+gram)':>17} {'peak RSS':>10}")  # fmt: skip
    for size in args.sizes:
        command = [sys.executable, __file__, "--child", "--sizes", str(size), "--steps", str(args.steps),
                   "--device", args.device]  # fmt: skip
        if args.mixed_precision is not None:
            command.append("--mixed-precision" if args.mixed_precision else "--no-mixed-precision")
        if args.revision is not None:
            command += ["--revision", str(args.revision)]
        if not args.keep_freed:
            command.append("--no-keep-freed")
        row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print(f"{size:>6} {row['width']:>4}x{row['height']:<5} {row['step_s']:>8.3f} {row['evaluation_s']:>8.3f} "
              f"{row['floor_s']:>8.3f} {row['gram_s']:>8.3f} {row['evaluation_s'] / row['floor_s']:>10.2f} "
              f"{row['evaluation_s'] / (row['floor_s'] + row['gram_s']):>17.2f} "
              f"{row['peak_rss_mib']:>7.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
