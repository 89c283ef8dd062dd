"""Where an objective evaluation spends its time beyond the floor: torch.profiler tables, side by side.

Usage:  python bench/profile_step.py [--size 512] [--evaluations 3] [--rows 15] [--no-mixed-precision]

Profiles ``--evaluations`` calls of the default objective's forward + backward (what one L-BFGS step
costs) and as many bare encoder forward + backward passes (the floor), and prints each one's top
operators by self CPU time, and the difference of the totals per operator: what to remove.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from floor import bare_pass
from painterly.config import RunConfig
from painterly.nets.registry import default_weights
from painterly.run import StyleTransferRun

REPO = Path(__file__).resolve().parents[1]


def _self_times(prof: profile) -> Counter[str]:
    totals: Counter[str] = Counter()
    for event in prof.key_averages():
        totals[event.key] += event.self_cpu_time_total
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--evaluations", type=int, default=3)
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                        help="as stylize(mixed_precision=...); default: the library's choice")  # fmt: skip
    args = parser.parse_args()
    config = RunConfig(size=args.size, start_size=None, weights=default_weights(), mixed_precision=args.mixed_precision)
    objective, content = StyleTransferRun(REPO / "examples" / "tubingen.jpg", REPO / "examples" / "starry_night.jpg",
                                          config).objective_at(args.size)  # fmt: skip
    encoder = objective.encoder  # the run's own: channels_last, its weights cast once
    print(f"compute dtype: {encoder.compute_dtype or torch.float32}")
    image = content.clone().requires_grad_(True)

    def evaluation() -> None:
        image.grad = None
        total, _ = objective(image.clamp(0, 1))  # as the engine evaluates it
        total.backward()

    bare = bare_pass(encoder, image)  # bench/floor.py

    def floor() -> None:
        image.grad = None
        bare()

    tables = {}
    for name, work in (("objective", evaluation), ("floor", floor)):
        work()  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.evaluations):
                work()
        tables[name] = _self_times(prof)
        print(f"== {name}: {sum(tables[name].values()) / 1e6 / args.evaluations:.3f} s self CPU per evaluation")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    extra = tables["objective"].copy()
    extra.subtract(tables["floor"])
    print("== objective minus floor, per evaluation (ms):")
    for key, micros in extra.most_common(args.rows):
        print(f"{micros / 1e3 / args.evaluations:10.1f}  {key}")


if __name__ == "__main__":
    main()
