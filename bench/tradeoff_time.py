"""The time axis of the trade-off curves (issue 19 part 2): what the default path at each budget costs as a share of
the paper's 1000-step run, measured at the same time on one idle machine.

bench/tradeoff.py records the seconds of every run, but its runs take hours and lie hours apart, and the same run
on these shared machines can take twice as long from one hour to the next: a ratio of two runs made hours apart
says as much about the machine as about the methods.  Here, for each pair, the two methods alternate within a
few minutes, ``--rounds`` times:

- **paper**: ``--paper-sample`` steps of its run (white-noise start, one size, L-BFGS); its 1000 steps are
  converted to seconds as the time to step :data:`WARMUP_STEPS` plus the remaining steps at the seconds per
  step measured after it (L-BFGS without line search: one evaluation per step, every step the same work);
- **default**: the whole default path at each of ``--budgets`` steps (its coarse stages, their style targets and
  the upsampling between them included), on the optimisation's own clock.

Each round is written to ``bench/results/tradeoff/timing.json`` as soon as it is measured, with the machine it ran
on (CPU, threads, load average); a finished round is skipped when the command runs again.  ``--show`` prints the
table: per pair and budget the median of the rounds' ratios (default seconds over the paper's 1000 steps) and
their range.

    python bench/tradeoff_time.py                     # the curves' three pairs at 384 px, two rounds
    python bench/tradeoff_time.py --show
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import judges as judging  # bench/ is a folder of scripts: its judges module, found by the line above
from painterly.plan.stages import CURRENT_REVISION
from results_json import load_results, save_results
from results_json import machine as current_machine
from tradeoff import SNAPSHOTS, method_options, pair_set

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "tradeoff" / "timing.json"
#: The paper's budget the ratios are taken against (its last snapshot).
PAPER_STEPS = max(SNAPSHOTS)
#: The paper's first steps also pay one-time costs (the style targets, the first bfloat16 kernels); the seconds per
#: step are measured after them.
WARMUP_STEPS = 10
BUDGETS = (100, 150, 300)
#: The style weight of the timing runs (painterly's default; the time per step does not depend on it).
WEIGHT = 50.0

#: ``(method, pair, size, steps) -> the optimisation clock's seconds at each step`` (``record.elapsed``).
StepClock = Callable[[str, tuple[str, str], int, int], list[float]]


def step_clock(method: str, pair: tuple[str, str], size: int, steps: int) -> list[float]:
    """One run of ``method`` ("paper" or "default") for ``steps`` steps: the seconds since the optimisation began,
    after each step."""
    from painterly import stylize

    content, style = judging.DATA / pair[0], judging.DATA / pair[1]
    clock: list[float] = []
    stylize(content, style, size=size, iterations=steps, style_weight=WEIGHT, device="cpu", seed=0,
            on_step=lambda record: clock.append(record.elapsed), **method_options(method))  # fmt: skip
    return clock


def paper_seconds(clock: Sequence[float], steps: int = PAPER_STEPS, warmup: int = WARMUP_STEPS) -> float:
    """The paper's run of ``steps`` steps in seconds, from a shorter run's clock: the time to step ``warmup``, then
    the rest at the seconds per step measured after it."""
    if len(clock) <= warmup + 1:
        raise ValueError(f"the paper's sample needs more than {warmup + 1} steps, not {len(clock)}")
    per_step = (clock[-1] - clock[warmup - 1]) / (len(clock) - warmup)
    return clock[warmup - 1] + (steps - warmup) * per_step


def round_key(pair: tuple[str, str], size: int, number: int) -> str:
    return f"{pair[0]}|{pair[1]}|{size}|{number}"


def measure(
    pairs: Sequence[tuple[str, str]],
    size: int,
    budgets: Sequence[int],
    rounds: int,
    paper_sample: int,
    path: Path,
    clock: StepClock = step_clock,
) -> dict[str, Any]:
    """Every pair's rounds not yet in ``path``: the paper's sample, then the default at each budget, one after the
    other; each round saved as soon as it is done."""
    results = load_results(path)
    for number in range(1, rounds + 1):  # round by round, so a stopped run has every pair's first round first
        for pair in pairs:
            key = round_key(pair, size, number)
            if key in results:
                continue
            machine = current_machine()
            paper = clock("paper", pair, size, paper_sample)
            default = {str(budget): clock("default", pair, size, budget)[-1] for budget in budgets}
            results[key] = {"content": pair[0], "style": pair[1], "size": size, "round": number,
                            "paper_sample_steps": len(paper), "paper_seconds": paper_seconds(paper),
                            "paper_sample_seconds": paper[-1], "default_seconds": default,
                            "revision": CURRENT_REVISION, "machine": machine}  # fmt: skip
            save_results(path, results)
            print(f"{Path(pair[0]).stem} x {Path(pair[1]).stem}, round {number}: paper {PAPER_STEPS} steps "
                  f"{results[key]['paper_seconds']:.0f} s; default " +
                  ", ".join(f"{b} steps {s:.1f} s" for b, s in default.items()), flush=True)  # fmt: skip
    return results


def ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per pair, size and budget: the rounds' ratios of the default's seconds to the paper's (each round's own
    paper), their median and range, and the median seconds of each."""
    rows = []
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for entry in results.values():
        groups.setdefault((entry["content"], entry["style"], entry["size"]), []).append(entry)
    for (content, style, size), entries in groups.items():
        for budget in sorted({int(b) for entry in entries for b in entry["default_seconds"]}):
            measured = [e for e in entries if str(budget) in e["default_seconds"]]
            each = [e["default_seconds"][str(budget)] / e["paper_seconds"] for e in measured]
            rows.append({"content": content, "style": style, "size": size, "budget": budget,
                         "rounds": len(each), "ratio": statistics.median(each), "lowest": min(each),
                         "highest": max(each),
                         "default_seconds": statistics.median(e["default_seconds"][str(budget)] for e in measured),
                         "paper_seconds": statistics.median(e["paper_seconds"] for e in measured)})  # fmt: skip
    return rows


def table(results: dict[str, Any]) -> None:
    print(f"| pair | px | paper, {PAPER_STEPS} steps | default budget | default | ratio (median) | range | rounds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in ratios(results):
        print(f"| {Path(row['content']).stem} x {Path(row['style']).stem} | {row['size']} | "
              f"{row['paper_seconds']:.0f} s | {row['budget']} | {row['default_seconds']:.1f} s | "
              f"{row['ratio']:.3f} | {row['lowest']:.3f}-{row['highest']:.3f} | {row['rounds']} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair-set", choices=["curves", "default"], default="curves")
    parser.add_argument("--pairs", type=int, default=None, help="only the first N pairs of the set")
    parser.add_argument("--size", type=int, default=None, help="long side in px (the pair set's size)")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="the default's step counts")
    parser.add_argument("--rounds", type=int, default=2, help="times each pair is measured, alternating methods")
    parser.add_argument("--paper-sample", type=int, default=60, help="steps of the paper's run actually made")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--show", action="store_true", help="only print the table of the rounds so far")
    args = parser.parse_args()
    curves = args.pair_set == "curves"
    size = args.size or (judging.CURVE_SIZE if curves else judging.DEFAULT_SIZE)
    if args.show:
        results = load_results(args.results)
    else:
        pairs = pair_set(args.pair_set)[: args.pairs]
        results = measure(pairs, size, args.budgets, args.rounds, args.paper_sample, args.results)
    table(results)


if __name__ == "__main__":
    main()
