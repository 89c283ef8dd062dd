"""Trade-off curves (issue 19 part 2): style distance against content distance along a style-weight sweep, for the
paper's method and for painterly's default path, every picture scored by the independent judges (bench/judges.py).

Methods:

``paper``    Gatys et al.: white-noise start, L-BFGS, one size (no coarse-to-fine), ``--paper-steps`` steps (1000);
             the picture at each of ``--snapshots`` steps (100, 200, 500, 1000) is kept and judged, so one run gives
             the paper's curve at four budgets.  Everything else (layers, pooling, normalised features) is
             painterly's default: the comparison is of the start, the schedule and the budget.  The white noise is
             painterly's ``init="noise"`` (:data:`PAPER_INIT`).
``default``  painterly's default path (coarse-to-fine from 256 px, content start, L-BFGS, 300 steps in all).

For every pair (``judges.CURVE_PAIRS`` at ``judges.CURVE_SIZE`` unless told), method and style weight: one run,
its pictures under ``--out``, and one JSON entry per judged picture, written to ``--results`` as soon as the run is
judged, with the steps, the L-BFGS objective evaluations and the seconds it took to reach the picture (the
optimisation's own clock, without loading or judging).  Cost is counted in steps and converted to time with
seconds per step measured on an idle machine: each result records the CPU, torch's thread count and the load
average when the run began, so a busy machine's timings can be told apart.  A finished entry is skipped when the
command runs again (``--fresh`` starts over); it runs unattended.

``--pair-set default`` runs the comparison at the chosen default instead: ``judges.DEFAULT_PAIRS`` (nine pairs) at
``judges.DEFAULT_SIZE`` (256 px), results in ``default-pairs.json``; after the dominance counts the script prints,
for every default run, where it lies against the paper's 1000-step curve at the same content distance
(:func:`at_equal_content`).

Run small first: ``python bench/tradeoff.py --pairs 1 --size 128 --weights 5 50 --paper-steps 20 --snapshots 10 20
--default-iterations 20``.  The full run (three pairs at 384 px, eight weights, 1000 paper steps) is CPU-heavy:
run it on an idle machine.  ``--show`` prints the results so far without running anything; ``--plot DIR`` draws
the curves (style against content distance for each judge's kind, one curve per method and budget).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import judges as judging  # bench/ is a folder of scripts: its judges module, found by the line above
from painterly.config import RunConfig
from painterly.plan.stages import CURRENT_REVISION
from results_json import load_results, save_results
from results_json import machine as current_machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "tradeoff" / "tradeoff.json"
#: The comparison at the chosen default on eight and more pairs (``--pair-set default``) keeps its own file.
DEFAULT_PAIRS_RESULTS = RESULTS.with_name("default-pairs.json")
OUT = REPO / "bench" / "out" / "tradeoff"

#: Style weights of the sweep (content weight 1; painterly's default is 50): wide enough, on a log scale, that
#: both methods' curves span the same range of content fidelity.
WEIGHTS = (2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
SNAPSHOTS = (100, 200, 500, 1000)


#: The paper's start as painterly offers it (``--init noise``: mid-grey plus white noise of standard deviation 0.25,
#: the README's "paper" command).  It leaves single-pixel colour noise that 1000 L-BFGS steps do not remove, which the
#: colour, patch and random-network judges count against the paper; a start of one grey level's noise (the paper's
#: reference code's) removes it but, with painterly's loss scale, makes L-BFGS diverge at style weights of 200 and
#: more (bench/results/tradeoff/paper-weak-noise-384px.json; docs/quality.md).
PAPER_INIT = "noise"


def method_options(method: str) -> dict[str, Any]:
    """The ``stylize`` options that make a run the given method's (besides the pair, size, steps and weight, which
    every method is given): ``paper`` is one size from white noise with L-BFGS; ``default`` is painterly's defaults.
    bench/tradeoff_time.py times the same runs."""
    if method == "paper":
        return {"start_size": None, "init": PAPER_INIT, "optimizer": "lbfgs"}
    if method == "default":
        return {}
    raise ValueError(f"unknown method {method!r}: paper or default")


def result_key(method: str, pair: tuple[str, str], size: int, weight: float, step: int) -> str:
    return f"{method}|{pair[0]}|{pair[1]}|{size}|{weight:g}|{step}"


def _picture(method: str, pair: tuple[str, str], size: int, weight: float, step: int, out: Path) -> Path:
    return out / f"{Path(pair[0]).stem}__{Path(pair[1]).stem}__{size}__{method}__w{weight:g}__s{step}.png"


def run_once(
    method: str, pair: tuple[str, str], size: int, weight: float, args: argparse.Namespace
) -> list[tuple[int, Image.Image, float, int]]:
    """One run: (step, picture, seconds to reach it, objective evaluations so far) for each judged picture."""
    from painterly import stylize

    content, style = judging.DATA / pair[0], judging.DATA / pair[1]
    kept: list[tuple[int, Image.Image, float, int]] = []
    evaluations = 0

    def on_step(record: Any) -> None:
        nonlocal evaluations
        evaluations += record.evaluations
        if method == "paper" and record.step in args.snapshots:
            kept.append((record.step, record.to_pil(), record.elapsed, evaluations))

    if method == "paper":
        stylize(content, style, size=size, iterations=args.paper_steps, style_weight=weight, device="cpu", seed=0,
                on_step=on_step, **method_options(method))  # fmt: skip
        return kept
    began = time.perf_counter()
    steps: list[float] = []

    def count(record: Any) -> None:
        on_step(record)
        steps.append(record.elapsed)

    image = stylize(content, style, size=size, iterations=args.default_iterations, style_weight=weight,
                    device="cpu", seed=0, on_step=count, **method_options(method))  # fmt: skip
    elapsed = steps[-1] if steps else time.perf_counter() - began
    return [(len(steps), image, elapsed, evaluations)]


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    results = {} if args.fresh else load_results(args.results)
    pairs = pair_set(args.pair_set)[: args.pairs]
    for pair in pairs:
        for method in args.methods:
            for weight in args.weights:
                steps = list(args.snapshots) if method == "paper" else [args.default_iterations]
                wanted = [result_key(method, pair, args.size, weight, step) for step in steps]
                if all(key in results for key in wanted):
                    continue
                machine = current_machine()
                pictures = run_once(method, pair, args.size, weight, args)
                for step, image, seconds, evaluations in pictures:
                    path = _picture(method, pair, args.size, weight, step, args.out)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    image.save(path)
                    scores = judging.judge_all(image, judging.DATA / pair[0], judging.DATA / pair[1], args.judges)
                    results[result_key(method, pair, args.size, weight, step)] = {
                        "method": method, "content": pair[0], "style": pair[1], "size": args.size,
                        "style_weight": weight, "steps": step, "seconds": seconds, "evaluations": evaluations,
                        "init": "painterly's init='noise': 0.5 + 0.25 N(0, 1), clamped" if method == "paper"
                        else "content",
                        "revision": CURRENT_REVISION, "scores": scores,
                        "picture": str(path.relative_to(REPO)) if path.is_relative_to(REPO)
                        else str(path), "machine": machine,
                    }  # fmt: skip
                save_results(args.results, results)
                print(method, pair, f"weight {weight:g}:", len(pictures), "pictures judged", flush=True)
    return results


def pair_set(name: str) -> tuple[tuple[str, str], ...]:
    """``curves``: the trade-off curves' pairs (``judges.CURVE_PAIRS``); ``default``: the pairs of the comparison at
    the chosen default (``judges.DEFAULT_PAIRS``)."""
    return judging.CURVE_PAIRS if name == "curves" else judging.DEFAULT_PAIRS


def table(results: dict[str, Any]) -> None:
    """Every judged picture, by pair, method, weight and step."""
    names = [judge.name for judge in judging.JUDGES]
    order = ("content", "style", "size", "method", "style_weight", "steps")
    rows = sorted(_rows(results), key=lambda row: tuple(row[field] for field in order))
    header = f"{'method':<9}{'weight':>8}{'steps':>7}{'s':>8}" + "".join(f"{name[:14]:>16}" for name in names)
    current = None
    for row in rows:
        pair = (row["content"], row["style"], row["size"])
        if pair != current:
            current = pair
            print(f"\n{row['content']} x {row['style']} at {row['size']} px\n{header}")
        cells = "".join(f"{row['scores'][n]:>16.4f}" if n in row["scores"] else f"{'':>16}" for n in names)
        print(f"{row['method']:<9}{row['style_weight']:>8g}{row['steps']:>7}{row['seconds']:>8.1f}{cells}")


def closeness(judge: str, value: float) -> float:
    """A score as a distance (lower is closer) whatever the judge's direction, so curves compare one way."""
    higher = {j.name for j in judging.JUDGES if j.higher_is_better}
    return -value if judge in higher else value


def _points(rows: list[dict[str, Any]], panel: tuple[str, str]) -> list[tuple[float, float]]:
    """(content distance as a closeness, style distance) of each row under a panel's two judges."""
    content_judge, style_judge = panel
    return [(closeness(content_judge, r["scores"][content_judge]), r["scores"][style_judge]) for r in rows]


def _below(points: list[tuple[float, float]], rivals: list[tuple[float, float]]) -> tuple[int, int]:
    """(how many ``points`` have a lower style distance than every rival no closer to the content, how many have
    such a rival at all)."""
    better = comparable = 0
    for x, y in points:
        against = [ry for rx, ry in rivals if rx >= x]
        if against:
            comparable += 1
            better += all(y < ry for ry in against)
    return better, comparable


def _rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The judged entries of a results file (each run's picture with its scores)."""
    return [v for v in results.values() if isinstance(v, dict) and "scores" in v]


def dominance(
    results: dict[str, Any], budget: int = max(SNAPSHOTS), default_budget: int | None = None
) -> list[dict[str, Any]]:
    """For each pair and panel (content judge, style judge): how many of painterly's default points (at
    ``default_budget`` steps, or every budget) have a lower style distance than every paper point (at ``budget``
    steps) that is no closer to the content -- "below the paper's curve at equal or better content fidelity" -- and
    the converse count for the paper's points.  A point with no such point on the other curve (the curves do not
    overlap there) is counted as not comparable.  ``time_ratio``: the default's mean seconds over the paper's."""
    rows = _rows(results)
    found = []
    for pair in sorted({(r["content"], r["style"], r["size"]) for r in rows}):
        mine = [r for r in rows if (r["content"], r["style"], r["size"]) == pair]
        ours = [r for r in mine if r["method"] == "default" and default_budget in (None, r["steps"])]
        paper = [r for r in mine if r["method"] == "paper" and r["steps"] == budget]
        ratio = (_mean_seconds(ours) / _mean_seconds(paper)) if ours and paper else float("nan")
        for panel in PANELS:
            ours_below, ours_comparable = _below(_points(ours, panel), _points(paper, panel))
            paper_below, paper_comparable = _below(_points(paper, panel), _points(ours, panel))
            found.append({"pair": pair, "panel": panel, "budget": budget, "default_budget": default_budget,
                          "default_points": len(ours), "paper_points": len(paper), "time_ratio": ratio,
                          "default_below": ours_below, "default_comparable": ours_comparable,
                          "paper_below": paper_below, "paper_comparable": paper_comparable})  # fmt: skip
    return found


def _mean_seconds(rows: list[dict[str, Any]]) -> float:
    return sum(r["seconds"] for r in rows) / len(rows)


def print_dominance(results: dict[str, Any]) -> None:
    """The dominance counts (see :func:`dominance`) as a table, one line per pair, panel and default budget."""
    for default_budget in sorted({r["steps"] for r in _rows(results) if r["method"] == "default"}):
        for row in dominance(results, default_budget=default_budget):
            pair, (content_judge, style_judge) = row["pair"], row["panel"]
            print(f"{Path(pair[0]).stem} x {Path(pair[1]).stem} {pair[2]} px  {content_judge:>20} / {style_judge:<18}"
                  f"  default {default_budget} below paper {row['budget']}: {row['default_below']}/"
                  f"{row['default_comparable']} comparable (of {row['default_points']});  paper below default: "
                  f"{row['paper_below']}/{row['paper_comparable']} (of {row['paper_points']});  time ratio "
                  f"{row['time_ratio']:.2f}")  # fmt: skip


def at_equal_content(results: dict[str, Any], budget: int = max(SNAPSHOTS)) -> list[dict[str, Any]]:
    """Each default point against the paper's curve (at ``budget`` steps) at the same content distance, per panel.

    The paper's points of a pair, ordered by content distance, are joined by straight lines; where the default's
    content distance falls on that span, ``paper_style`` is the line's style distance there and ``outcome`` is
    ``"below"`` or ``"above"`` the paper.  Outside the span no paper run is as close to (or as far from) the
    content: ``"closer, below"`` when the default is closer to the content than every paper run and has a lower
    style distance than the closest one (it is better on both counts), else ``"unmatched"``."""
    rows = _rows(results)
    found = []
    for pair in sorted({(r["content"], r["style"], r["size"]) for r in rows}):
        mine = [r for r in rows if (r["content"], r["style"], r["size"]) == pair]
        paper = [r for r in mine if r["method"] == "paper" and r["steps"] == budget]
        for ours in (r for r in mine if r["method"] == "default"):
            for panel in PANELS:
                if not all(judge in ours["scores"] for judge in panel):
                    continue
                [(x, y)] = _points([ours], panel)
                curve = sorted(_points([r for r in paper if all(j in r["scores"] for j in panel)], panel))
                paper_style = _interpolate(curve, x)
                if paper_style is not None:
                    outcome = "below" if y < paper_style else "above"
                elif curve and x < curve[0][0]:
                    paper_style, outcome = curve[0][1], "closer, below" if y < curve[0][1] else "unmatched"
                else:
                    paper_style, outcome = float("nan"), "unmatched"
                found.append({"pair": pair, "panel": panel, "weight": ours["style_weight"], "steps": ours["steps"],
                              "default_style": y, "paper_style": paper_style, "outcome": outcome})  # fmt: skip
    return found


def _interpolate(curve: list[tuple[float, float]], x: float) -> float | None:
    """The style distance of the polyline through ``curve`` (points sorted by content distance) at content distance
    ``x``, or None where ``x`` lies outside it."""
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return curve[0][1] if len(curve) == 1 and curve[0][0] == x else None


def print_equal_content(results: dict[str, Any]) -> None:
    """:func:`at_equal_content` counted per panel and default run (weight, budget): how many pairs end how."""
    found = at_equal_content(results)
    for weight, steps in sorted({(f["weight"], f["steps"]) for f in found}):
        print(f"\ndefault at weight {weight:g}, {steps} steps, against the paper's 1000-step curve at equal content "
              "distance (pairs):")  # fmt: skip
        for panel in PANELS:
            mine = [f for f in found if f["panel"] == panel and (f["weight"], f["steps"]) == (weight, steps)]
            outcomes = [f["outcome"] for f in mine]
            counts = ", ".join(f"{name} {outcomes.count(name)}" for name in ("below", "closer, below", "above",
                                                                              "unmatched"))  # fmt: skip
            print(f"  {panel[0]:>20} / {panel[1]:<18} {counts}")


#: Panels of a pair's figure: (content judge, style judge), each judge beside its kind's counterpart.
PANELS: tuple[tuple[str, str], ...] = (
    ("efficientnet_content", "efficientnet_style"),
    ("random_vgg19_content", "random_vgg19_style"),
    ("ssim_content", "colour_style"),
    ("edge_agreement", "patch_style"),
    ("edge_agreement", "magenta_style"),
)


def plot(results: dict[str, Any], folder: Path) -> list[Path]:
    """One figure per pair and size: for each panel, style distance against content distance, one curve per
    method and budget (the paper's snapshots separately), each point labelled with its style weight; the legend
    gives each curve's mean seconds.  Content axes run so that right is farther from the content."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(results)
    higher = {judge.name for judge in judging.JUDGES if judge.higher_is_better}
    written = []
    for pair in sorted({(r["content"], r["style"], r["size"]) for r in rows}):
        mine = [r for r in rows if (r["content"], r["style"], r["size"]) == pair]
        figure, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 4))
        for axis, (content_judge, style_judge) in zip(axes, PANELS, strict=True):
            for curve in sorted({(r["method"], r["steps"]) for r in mine}):
                points = sorted((r for r in mine if (r["method"], r["steps"]) == curve and content_judge in r["scores"]
                                 and style_judge in r["scores"]), key=lambda r: r["style_weight"])  # fmt: skip
                if not points:
                    continue
                xs = [r["scores"][content_judge] for r in points]
                ys = [r["scores"][style_judge] for r in points]
                seconds = _mean_seconds(points)
                axis.plot(xs, ys, marker="o", label=f"{curve[0]} {curve[1]} steps ({seconds:.0f} s)")
                for x, y, r in zip(xs, ys, points, strict=True):
                    axis.annotate(f"{r['style_weight']:g}", (x, y), fontsize=6)
            if content_judge in higher:
                axis.invert_xaxis()
            axis.set_xlabel(f"{content_judge} ({'higher' if content_judge in higher else 'lower'} = closer)")
            axis.set_ylabel(f"{style_judge} (lower = closer)")
        # the curves' names once, from a panel that has them (a judge left out of the run leaves its panel empty)
        handles, labels = next((found for found in (axis.get_legend_handles_labels() for axis in axes) if found[0]),
                               ([], []))  # fmt: skip
        if handles:
            figure.legend(handles, labels, fontsize=6, loc="upper left")
        figure.suptitle(f"{pair[0]} x {pair[1]} at {pair[2]} px")
        figure.tight_layout()
        path = folder / f"curves__{Path(pair[0]).stem}__{Path(pair[1]).stem}__{pair[2]}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


#: Today's default style weight, marked in the strips.
DEFAULT_WEIGHT = RunConfig().style_weight


def strips(results: dict[str, Any], folder: Path, cell: int = 160) -> list[Path]:
    """One picture strip per pair and size (issue 19 part 4): a row per method and budget (the paper's snapshots
    first), a column per style weight, today's default weight marked; JPEG, small enough for the docs."""
    from painterly.batch.contact import contact_sheet

    rows = _rows(results)
    written = []
    for pair in sorted({(r["content"], r["style"], r["size"]) for r in rows}):
        mine = sorted((r for r in rows if (r["content"], r["style"], r["size"]) == pair),
                      key=lambda r: (r["method"] != "paper", r["steps"], r["style_weight"]))  # fmt: skip
        cells = []
        for r in mine:
            picture = REPO / r["picture"]
            if not picture.exists():  # pictures are not committed: only where this machine made them
                continue
            mark = " (default)" if r["style_weight"] == DEFAULT_WEIGHT else ""
            cells.append(({"run": f"{r['method']}, {r['steps']} steps", "style weight": f"{r['style_weight']:g}{mark}"},
                          picture, None))  # fmt: skip
        if not cells:
            continue
        title = f"{Path(pair[0]).stem} x {Path(pair[1]).stem}, {pair[2]} px"
        path = folder / f"strip__{Path(pair[0]).stem}__{Path(pair[1]).stem}__{pair[2]}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(cells, cell=cell, title=title).save(path, "JPEG", quality=85)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair-set", choices=["curves", "default"], default="curves",
                        help="curves: CURVE_PAIRS at CURVE_SIZE (the trade-off curves); default: DEFAULT_PAIRS "
                        "at DEFAULT_SIZE (the comparison at the chosen default), in default-pairs.json")  # fmt: skip
    parser.add_argument("--pairs", type=int, default=None, help="only the first N pairs of the set")
    parser.add_argument("--size", type=int, default=None, help="long side in px (the pair set's size)")
    parser.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    parser.add_argument("--methods", nargs="+", choices=["paper", "default"], default=["paper", "default"])
    parser.add_argument("--paper-steps", type=int, default=max(SNAPSHOTS))
    parser.add_argument("--snapshots", type=int, nargs="+", default=list(SNAPSHOTS))
    parser.add_argument("--default-iterations", type=int, default=RunConfig().iterations,
                        help="painterly's default budget (its default)")  # fmt: skip
    parser.add_argument("--judges", nargs="+", choices=[judge.name for judge in judging.JUDGES], default=None)
    parser.add_argument("--results", type=Path, default=None, help="the JSON file (the pair set's)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--show", action="store_true", help="only print the table of the results so far")
    parser.add_argument("--plot", type=Path, default=None, help="also draw the curves, one figure per pair, here")
    parser.add_argument("--strips", type=Path, default=None, help="also write the picture strips, one per pair, here")
    args = parser.parse_args()
    curves = args.pair_set == "curves"
    if args.size is None:
        args.size = judging.CURVE_SIZE if curves else judging.DEFAULT_SIZE
    if args.results is None:
        args.results = RESULTS if curves else DEFAULT_PAIRS_RESULTS
    if max(args.snapshots) > args.paper_steps:
        parser.error("every snapshot must be at most --paper-steps")
    results = load_results(args.results) if args.show else sweep(args)
    table(results)
    print_dominance(results)
    print_equal_content(results)
    if args.plot is not None:
        for path in plot(results, args.plot):
            print(f"plot: {path}")
    if args.strips is not None:
        for path in strips(results, args.strips):
            print(f"strip: {path}")


if __name__ == "__main__":
    main()
