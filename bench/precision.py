"""Does the automatic precision choose the faster one on this CPU?  The probe's verdict against real runs.

Usage:  python bench/precision.py [--sizes 512] [--steps 6] [--rounds 2]

Prints the CPU (model name, bfloat16 and AMX flags), the precision probe's timings measured afresh (not from the
cache), then seconds per step of a real run (bench/speed.py's child: the default objective, start_size None) in
float32 and in bfloat16, alternating ``--rounds`` times so drift hits both alike, and the medians' ratio.  The
probe is right when it picks bfloat16 exactly where the real runs are faster in bfloat16 by its margin
(painterly.engine.precision.REQUIRED_SPEEDUP), or when the two are within that margin.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def cpu_flags() -> str:
    """The CPU model and the flags the bfloat16 decision depends on, and whether torch sees native bfloat16."""
    from painterly.engine.precision import cpu_description, cpu_has_native_bfloat16

    return f"{cpu_description()}; native bf16 {cpu_has_native_bfloat16()}"


def step_seconds(size: int, steps: int, mixed: bool) -> float:
    command = [sys.executable, str(BENCH / "speed.py"), "--child", "--sizes", str(size), "--steps", str(steps),
               "--mixed-precision" if mixed else "--no-mixed-precision"]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1]
    return float(json.loads(output)["step_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import torch

    from painterly.engine.precision import REQUIRED_SPEEDUP, measure_cpu_precisions

    print(f"CPU: {cpu_flags()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    began = time.perf_counter()
    probe = measure_cpu_precisions()
    print(f"probe ({time.perf_counter() - began:.1f} s in all): float32 {probe.float32_seconds:.3f} s, bfloat16 "
          f"{probe.bfloat16_seconds:.3f} s per pass: bfloat16 {probe.speedup:.2f}x -> automatic choice "
          f"{'bfloat16' if probe.bfloat16_wins else 'float32'} (needs {REQUIRED_SPEEDUP}x)")  # fmt: skip
    for size in args.sizes:
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for mixed in (False, True):
                times[mixed].append(step_seconds(size, args.steps, mixed))
        float32, bfloat16 = statistics.median(times[False]), statistics.median(times[True])
        speedup = float32 / bfloat16
        agrees = probe.bfloat16_wins == (speedup >= REQUIRED_SPEEDUP) or abs(speedup - 1) < REQUIRED_SPEEDUP - 1
        print(f"{size} px run: float32 {float32:.3f} s/step {times[False]}, bfloat16 {bfloat16:.3f} s/step "
              f"{times[True]}: bfloat16 {speedup:.2f}x; the probe's choice is "
              f"{'right' if agrees else 'WRONG'} here")  # fmt: skip


if __name__ == "__main__":
    main()
