"""Throughput of a batch on this machine: the inline executor, separate `painterly` calls, and the Ray executor.

Usage:  python bench/batch.py [--jobs 20] [--size 256] [--iterations 100] [--modes inline cli ray paired] [--force]

The same jobs for each mode: contents × styles from shared/data (five photos by four artworks for 20 jobs, so
styles repeat across jobs as in a real grid), the real VGG-19, every other setting its default.

- ``inline``: :func:`painterly.batch.run_batch` with an :class:`InlineExecutor`: one warm session, the network loaded
  once, each artwork's targets reused by every later job with it.
- ``cli``: one ``painterly CONTENT STYLE -o OUT`` process per job, as a shell loop would run them: each loads
  Python, torch and the weights, and encodes its style again.
- ``ray``: :func:`run_batch` with a :class:`RayExecutor` on a Ray started here, one actor holding all the machine's
  CPUs (more actors on one CPU only share its cores); Ray's start is timed apart from the jobs.
- ``paired``: each job all three ways, back to back in rotating order, so that on a shared machine the three runs
  of a job see about the same load; the ratios within a job are the fair comparison there.

On a machine shared with other busy processes, run it with ``OMP_WAIT_POLICY=PASSIVE``: by default libgomp's
threads spin between parallel regions, which on an oversubscribed CPU wastes most of each time slice, and it does so
in a process's main thread but not in other threads (where libgomp sees more threads than CPUs and throttles the
spinning), so a Ray actor (whose methods run in a worker thread) looked several times faster than the same job
inline (docs/batch.md; the first, spinning measurement is kept in bench/results/batch/shared-spinning/).

Each mode's figures go to ``bench/results/batch/<mode>.json`` as soon as it ends; a mode whose file exists is not run
again (``--force`` runs it again), so a long benchmark stopped halfway continues where it stopped.  The jobs run in
a scratch folder (``--work``), fresh for each mode.  Quote the figures with the CPU and whether the machine was
shared: compare modes as ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results" / "batch"
CONTENTS = ("tubingen.jpg", "chelsea_cat.jpg", "golden_gate.jpg", "astronaut.jpg", "coffee.jpg",
            "hoovertowernight.jpg")  # fmt: skip
STYLES = ("starry_night.jpg", "great_wave_hokusai.jpg", "the_scream.jpg", "udnie_picabia.jpg",
          "composition_vii_kandinsky.jpg")  # fmt: skip


def pairs(count: int) -> list[tuple[Path, Path]]:
    """``count`` (content, style) pairs, contents slowest, four styles per content (a grid, styles repeating)."""
    per_content = 4 if count >= 4 else count
    grid = [(DATA / "content" / c, DATA / "style" / s) for c in CONTENTS for s in STYLES[:per_content]]
    if count > len(grid):
        raise SystemExit(f"at most {len(grid)} jobs from shared/data")
    return grid[:count]


def run_inline(jobs: list[Any], work: Path) -> dict[str, Any]:
    from painterly.batch.driver import run_batch
    from painterly.batch.executors import InlineExecutor

    began = time.perf_counter()
    executor = InlineExecutor()
    summary = run_batch(jobs, work, executor=executor, contact_sheet=False)
    total = time.perf_counter() - began
    hits, misses = executor.session.targets.hits, executor.session.targets.misses
    executor.close()
    return {"total_s": total, "done": len(summary.done), "failed": [r.reason for r in summary.failed],
            "job_s": job_seconds(work), "target_cache": {"hits": hits, "misses": misses}}  # fmt: skip


def run_cli(pairs_: list[tuple[Path, Path]], work: Path, size: int, iterations: int) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    seconds: list[float] = []
    failed: list[str] = []
    began = time.perf_counter()
    for index, (content, style) in enumerate(pairs_):
        start = time.perf_counter()
        command = [sys.executable, "-m", "painterly", str(content), str(style), "-o", str(work / f"{index:02d}.png"),
                   "--size", str(size), "--iterations", str(iterations), "-q", "--overwrite",
                   "--trace", str(work / f"{index:02d}.jsonl")]  # fmt: skip
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")}
        )
        seconds.append(time.perf_counter() - start)
        if done.returncode:
            failed.append(done.stderr.strip()[-300:])
        print(f"  cli job {index + 1}/{len(pairs_)}: {seconds[-1]:.1f} s", flush=True)
    steps = [last_step_seconds(work / f"{index:02d}.jsonl") for index in range(len(pairs_))]
    return {"total_s": time.perf_counter() - began, "done": len(pairs_) - len(failed), "failed": failed,
            "job_s": seconds, "steps_s": steps,
            "overhead_s": [a - b for a, b in zip(seconds, steps, strict=True)]}  # fmt: skip


def run_paired(jobs: list[Any], pairs_: list[tuple[Path, Path]], work: Path, size: int, iterations: int) -> dict:
    """Each job three ways, back to back: on the warm inline session (a one-job batch on the same executor), as its
    own `painterly` call, and on the warm Ray actor (a one-job batch on the same Ray executor), in an order that
    rotates from job to job.  On a shared machine the load changes by the minute; the three runs of one job see
    about the same, so their ratios are the fair comparison."""
    import ray

    from painterly.batch.driver import run_batch
    from painterly.batch.executors import InlineExecutor
    from painterly.batch.ray_executor import RayExecutor

    cpus = os.cpu_count() or 1
    inline = InlineExecutor()
    seconds: dict[str, list[float]] = {"inline": [], "cli": [], "ray": []}
    began = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - began
    ray_executor = RayExecutor(workers=1, cpus_per_worker=cpus)
    for index, (job, pair) in enumerate(zip(jobs, pairs_, strict=True)):
        order = ["inline", "cli", "ray"]
        order = order[index % 3 :] + order[: index % 3]
        for mode in order:
            began = time.perf_counter()
            if mode == "cli":
                run_cli([pair], work / f"cli{index:02d}", size, iterations)
            else:
                executor = inline if mode == "inline" else ray_executor
                run_batch([job], work / mode, executor=executor, contact_sheet=False)
            seconds[mode].append(time.perf_counter() - began)
        print(
            f"  job {index + 1}/{len(jobs)}: " + ", ".join(f"{m} {seconds[m][-1]:.1f} s" for m in seconds), flush=True
        )
    inline.close()
    ray_executor.close()
    ray.shutdown()
    figures: dict[str, Any] = {"total_s": sum(seconds["inline"]), "ray_start_s": ray_start, "done": len(jobs),
                               "job_s": seconds["inline"], "seconds": seconds}  # fmt: skip
    for mode in ("cli", "ray"):
        ratios = sorted(b / a for a, b in zip(seconds["inline"], seconds[mode], strict=True))
        figures[f"{mode}_total_s"] = sum(seconds[mode])
        figures[f"median_{mode}_over_inline"] = ratios[len(ratios) // 2]
    for mode in ("inline", "ray"):  # the optimisation's share of each job, from the traces
        figures[f"{mode}_steps_s"] = [
            last_step_seconds(p) for p in sorted((work / mode / "jobs").glob("*/trace.jsonl"))
        ]
    figures["cli_steps_s"] = [last_step_seconds(work / f"cli{i:02d}" / "00.jsonl") for i in range(len(jobs))]
    figures["steps_s"] = figures["inline_steps_s"]
    return figures


def run_ray(jobs: list[Any], work: Path) -> dict[str, Any]:
    import ray

    from painterly.batch.driver import run_batch
    from painterly.batch.ray_executor import RayExecutor

    cpus = os.cpu_count() or 1
    began = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter()
    executor = RayExecutor(workers=1, cpus_per_worker=cpus)
    summary = run_batch(jobs, work, executor=executor, contact_sheet=False)
    ran = time.perf_counter()
    executor.close()
    ray.shutdown()
    return {"total_s": ran - began, "ray_start_s": started - began, "jobs_total_s": ran - started,
            "done": len(summary.done), "failed": [r.reason for r in summary.failed], "job_s": job_seconds(work),
            "actors": 1, "cpus_per_actor": cpus}  # fmt: skip


def job_seconds(folder: Path) -> list[float]:
    """Each finished job's own seconds, as its settings.json records them (the worker's time, setup included)."""
    return [json.loads(p.read_text())["seconds"] for p in sorted((folder / "jobs").glob("*/settings.json"))]


def last_step_seconds(trace: Path) -> float:
    """Seconds from a run's first optimiser step's start to its last step's end, from its trace (0 when missing)."""
    lines = trace.read_text().splitlines() if trace.exists() else []
    return float(json.loads(lines[-1])["seconds"]) if lines else 0.0


def split(figures: dict[str, Any], folder: Path) -> None:
    """A batch mode's per-job seconds split into the optimisation (its trace) and the rest (setup: loading,
    encoding the inputs, writing the result), from the job folders."""
    steps = [last_step_seconds(p) for p in sorted((folder / "jobs").glob("*/trace.jsonl"))]
    figures["steps_s"] = steps
    figures["overhead_s"] = [a - b for a, b in zip(figures["job_s"], steps, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--modes", nargs="+", choices=["inline", "cli", "ray", "paired"],
                        default=["inline", "cli", "ray", "paired"])  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "painterly-bench-batch")
    parser.add_argument("--force", action="store_true", help="run modes whose results exist again")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    # Ray's workers are new processes: they must import this checkout's painterly too, not an installed one
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    from painterly.batch.grid import JobSpec
    from painterly.config import RunConfig
    from painterly.engine.precision import cpu_description

    config = RunConfig(size=args.size, iterations=args.iterations)
    chosen = pairs(args.jobs)
    jobs = [JobSpec(str(c), (str(s),), config, {"content": c.stem, "style": s.stem}) for c, s in chosen]
    RESULTS.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    for mode in args.modes:
        path = RESULTS / f"{mode}.json"
        if path.exists() and not args.force:
            print(f"{mode}: kept {path} (--force runs it again)")
            continue
        work = args.work / mode
        shutil.rmtree(work, ignore_errors=True)
        print(f"{mode}: {len(jobs)} jobs of {args.size} px, {args.iterations} steps ...", flush=True)
        if mode == "inline":
            figures = run_inline(jobs, work)
        elif mode == "cli":
            figures = run_cli(chosen, work, args.size, args.iterations)
        elif mode == "paired":
            figures = run_paired(jobs, chosen, work, args.size, args.iterations)
        else:
            figures = run_ray(jobs, work)
        figures.update(mode=mode, jobs=len(jobs), size=args.size, iterations=args.iterations,
                       cpu=cpu_description(), cpus=os.cpu_count(), load_before=load, load_after=os.getloadavg(),
                       when=time.strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
        if mode in ("inline", "ray"):
            split(figures, work)
        figures["s_per_job"] = figures["total_s"] / len(jobs)
        figures["steps_s_per_job"] = sum(figures["steps_s"]) / len(jobs)
        path.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"{mode}: {figures['total_s']:.1f} s in all, {figures['s_per_job']:.2f} s per job", flush=True)
    report()


def report() -> None:
    """The modes measured so far, side by side (seconds per job, and each against inline)."""
    found = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    if not found:
        return
    base = found.get("inline", {}).get("s_per_job")
    print(f"{'mode':8} {'jobs':>5} {'total s':>9} {'s / job':>8} {'vs inline':>10} {'steps s / job':>14} "
          f"{'rest s / job':>13}")  # fmt: skip
    for mode in ("inline", "cli", "ray"):
        if mode in found:
            row = found[mode]
            ratio = f"{row['s_per_job'] / base:.2f}x" if base else "-"
            steps = row.get("steps_s_per_job", float("nan"))
            print(f"{mode:8} {row['jobs']:>5} {row['total_s']:9.1f} {row['s_per_job']:8.2f} {ratio:>10} {steps:14.2f} "
                  f"{row['s_per_job'] - steps:13.2f}")  # fmt: skip
    if "ray" in found:
        print(f"ray start: {found['ray']['ray_start_s']:.1f} s (counted in its total)")
    if "paired" in found:
        row = found["paired"]
        print(
            f"paired, {row['jobs']} jobs three ways in turns: inline {row['total_s']:.1f} s, separate calls "
            f"{row['cli_total_s']:.1f} s (median job {row['median_cli_over_inline']:.2f}x inline), ray "
            f"{row['ray_total_s']:.1f} s (median job {row['median_ray_over_inline']:.2f}x inline)"
        )
        for mode in ("inline", "cli", "ray"):
            steps = row[f"{mode}_steps_s"]
            print(f"  {mode}: optimisation {sum(steps):.1f} s of {sum(row['seconds'][mode]):.1f} s")


if __name__ == "__main__":
    main()
