"""The Ray executor against a real local Ray (conftest.ray_cluster: started once for the run; in CI a missing Ray
fails these tests).  Few and quick: the tiny network, two actors of one CPU each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from painterly.batch.driver import run_batch
from painterly.batch.grid import make_grid
from painterly.batch.ray_executor import RayExecutor
from painterly.config import RunConfig

from .conftest import make_image


@pytest.fixture
def grid(tmp_path: Path, weights_file: Path) -> list[Any]:
    (tmp_path / "in").mkdir()
    contents = [make_image(tmp_path / "in" / f"c{i}.png", (40, 32), seed=i) for i in range(2)]
    styles = [make_image(tmp_path / "in" / f"s{i}.png", (32, 32), seed=10 + i) for i in range(2)]
    config = RunConfig(weights=str(weights_file), size=32, start_size=None, iterations=4, seed=1)
    return make_grid(contents, styles, config)


def test_a_batch_on_ray_writes_every_result_like_the_inline_executor(
    ray_cluster: Any, tmp_path: Path, grid: list[Any]
) -> None:
    executor = RayExecutor(workers=2, cpus_per_worker=1)
    try:
        assert len(executor.actors) == 0
        summary = run_batch(grid, tmp_path / "ray", executor=executor, contact_sheet=False)
    finally:
        executor.close()
    assert len(summary.done) == 4 and not summary.failed
    workers = set()
    for report in summary.done:
        folder = tmp_path / "ray" / "jobs" / report.key
        settings = json.loads((folder / "settings.json").read_text())
        assert settings["content"] in {job.content for job in grid}, "the user's paths, not a node's copies"
        files = {job.content for job in grid} | {s for job in grid for s in job.styles} | {grid[0].config.weights}
        assert set(settings["inputs"]) <= files, "the picture's record names the user's files"
        workers.add(settings["worker"])
        assert len((folder / "trace.jsonl").read_text().splitlines()) == 4
    assert len(workers) == 2, "both actors worked"
    inline = run_batch(grid, tmp_path / "inline", contact_sheet=False)
    assert sorted(r.key for r in inline.done) == sorted(r.key for r in summary.done), "the same jobs, the same keys"
    for report in summary.done:
        ours = np.asarray(Image.open(tmp_path / "ray" / "jobs" / report.key / "image.png"), dtype=np.int16)
        theirs = np.asarray(Image.open(tmp_path / "inline" / "jobs" / report.key / "image.png"), dtype=np.int16)
        # the same picture: an actor computes with one thread, this process with more, so sums round differently
        assert np.abs(ours - theirs).mean() < 0.5, "the same job computes the same picture on an actor"


def test_a_sketch_coloured_on_ray_keeps_its_kind_and_names_the_users_files(
    ray_cluster: Any, tmp_path: Path, weights_file: Path
) -> None:
    from painterly.batch.grid import JobSpec
    from painterly.sketch.colorize import line_f1

    from .sketch_pictures import RAINBOW, drawing, patches

    sketch, style = tmp_path / "sketch.png", tmp_path / "art.png"
    drawing().save(sketch)
    patches(RAINBOW).save(style)
    config = RunConfig(weights=str(weights_file), size=48, start_size=None, iterations=4, seed=1)
    job = JobSpec(str(sketch), (str(style),), config, {"content": "sketch"}, kind="colorize", options={"fill": "blur"})
    executor = RayExecutor(workers=1, cpus_per_worker=1)
    try:
        summary = run_batch([job], tmp_path / "ray", executor=executor, contact_sheet=False)
    finally:
        executor.close()
    (report,) = summary.done
    folder = tmp_path / "ray" / "jobs" / report.key
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["kind"] == "colorize" and settings["settings"]["fill"] == "blur", "the actor coloured the sketch"
    assert settings["settings"]["sketch"] == str(sketch.resolve()), "the user's sketch, not the node's copy"
    assert set(settings["inputs"]) <= {str(sketch.resolve()), str(style.resolve()), str(weights_file)}
    with Image.open(folder / "image.png") as picture:
        assert line_f1(picture.convert("RGB"), drawing())["f1"] > 0.9


def test_a_lost_workers_job_is_retried_on_another_actor(ray_cluster: Any, tmp_path: Path, grid: list[Any]) -> None:
    executor = RayExecutor(workers=2, cpus_per_worker=1)
    killed: list[str] = []
    original_run = executor.run

    def run_and_kill_the_first(tasks: Any, work: Path, *, on_start: Any, should_stop: Any) -> Any:
        def start(key: str) -> None:
            on_start(key)
            if not killed:  # the worker of the first job dies while it runs
                killed.append(key)
                ray_cluster.kill(executor.running[key], no_restart=True)

        return original_run(tasks, work, on_start=start, should_stop=should_stop)

    executor.run = run_and_kill_the_first  # type: ignore[method-assign]
    try:
        summary = run_batch(grid[:3], tmp_path / "out", executor=executor, contact_sheet=False)
    finally:
        executor.close()
    assert killed and len(summary.done) == 3 and not summary.failed
    from painterly.batch.store import JobStore

    with JobStore.open(tmp_path / "out" / "jobs.sqlite") as store:
        row = store.get(killed[0])
        assert row is not None and row.state == "done" and row.attempts == 2, "started twice: lost, then retried"


def test_stopping_the_driver_leaves_the_remote_jobs_checkpoint_and_the_next_run_continues_it(
    ray_cluster: Any, tmp_path: Path, grid: list[Any]
) -> None:
    import threading
    import time

    from painterly.batch.executors import InlineExecutor
    from painterly.batch.runner import trace_path
    from painterly.events import StopToken

    long_job = [grid[0].__class__(grid[0].content, grid[0].styles, grid[0].config.replace(iterations=200))]
    out, token = tmp_path / "out", StopToken()
    executor = RayExecutor(workers=1, cpus_per_worker=1, checkpoint_every=1000)
    started: list[str] = []

    def stop_once_it_steps() -> None:  # Ctrl-C on the driver, once the remote job has made a few steps
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            trace = trace_path(out / "work", started[0]) if started else None
            if trace is not None and trace.exists() and len(trace.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        token.request()

    stopper = threading.Thread(target=stop_once_it_steps)
    original_run = executor.run

    def run(tasks: Any, work: Path, *, on_start: Any, should_stop: Any) -> Any:
        def start(key: str) -> None:
            on_start(key)
            started.append(key)

        return original_run(tasks, work, on_start=start, should_stop=should_stop)

    executor.run = run  # type: ignore[method-assign]
    stopper.start()
    try:
        stopped = run_batch(long_job, out, executor=executor, should_stop=token, contact_sheet=False)
    finally:
        stopper.join()
        executor.close()
    assert [r.key for r in stopped.interrupted] == started and not stopped.done
    assert (out / "work" / f"{started[0]}.ckpt").exists(), "the remote job wrote its checkpoint when stopped"
    resumed = run_batch(long_job, out, executor=InlineExecutor(), contact_sheet=False)
    settings = json.loads((out / "jobs" / started[0] / "settings.json").read_text())
    assert len(resumed.done) == 1 and 3 <= settings["resumed_at_step"] < 200
