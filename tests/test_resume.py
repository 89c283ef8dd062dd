"""Interruption and resume: a stopped run continues exactly; Ctrl-C in the CLI never loses work."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import Interrupted, resume, stylize
from painterly.io.checkpoint import CheckpointError, load_checkpoint
from painterly.nets.weights import VGGWeights

from .conftest import make_image, run_for


def _stop_after(count: int):
    seen = {"steps": 0}

    def on_step(record) -> None:
        seen["steps"] = record.step

    return on_step, (lambda: seen["steps"] >= count)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("stop_at", [1, 4, 9], ids=["mid-first-stage", "stage-boundary", "mid-last-stage"])
def test_interrupted_then_resumed_equals_uninterrupted(pair, tmp_path, weights_file, optimizer, stop_at) -> None:
    options = {"weights": str(weights_file), "size": 48, "start_size": 24, "iterations": 12, "init": "noise",
               "seed": 5, "optimizer": optimizer}  # fmt: skip
    # stages 24 / 34 / 48 px get 2 / 2 / 8 steps
    uninterrupted = np.asarray(stylize(*pair, **options))
    checkpoint = tmp_path / "run.ckpt"
    on_step, should_stop = _stop_after(stop_at)
    with pytest.raises(Interrupted) as info:
        stylize(*pair, **options, checkpoint=checkpoint, on_step=on_step, should_stop=should_stop)
    assert info.value.step == stop_at and info.value.checkpoint == checkpoint and checkpoint.exists()
    assert isinstance(info.value.image, Image.Image)
    steps_after: list[int] = []
    resumed = resume(checkpoint, on_step=lambda r: steps_after.append(r.step))
    assert steps_after == list(range(stop_at + 1, 13)), "the resumed run continues the step count"
    assert np.array_equal(np.asarray(resumed), uninterrupted)


def test_a_content_initialised_pyramid_resumes_exactly_across_a_stage_boundary(pair, tmp_path, weights_file) -> None:
    # Later stages start from the upsampled result with the content's detail put back: a resumed run must too.
    options = {"weights": str(weights_file), "size": 48, "start_size": 24, "iterations": 12, "init": "content"}
    uninterrupted = np.asarray(stylize(*pair, **options))
    checkpoint = tmp_path / "run.ckpt"
    on_step, should_stop = _stop_after(3)  # stages 2 / 2 / 8: mid-second, so the resumed run starts the third
    with pytest.raises(Interrupted):
        stylize(*pair, **options, checkpoint=checkpoint, on_step=on_step, should_stop=should_stop)
    assert load_checkpoint(checkpoint).stage == 1
    assert np.array_equal(np.asarray(resume(checkpoint)), uninterrupted)


def test_periodic_checkpoints_are_resumable(pair, tmp_path: Path, weights_file: Path) -> None:
    checkpoint = tmp_path / "run.ckpt"
    options = {"weights": str(weights_file), "size": 32, "start_size": None, "iterations": 6, "seed": 1}
    final = np.asarray(stylize(*pair, **options, checkpoint=checkpoint, checkpoint_every=2))
    state = load_checkpoint(checkpoint)
    assert state.step == 4 and state.stage_steps_done == 4, "the last periodic checkpoint before the end"
    assert np.array_equal(np.asarray(resume(checkpoint)), final)


def test_changed_input_refuses_to_resume(pair, tmp_path: Path, weights_file: Path) -> None:
    checkpoint = tmp_path / "run.ckpt"
    on_step, should_stop = _stop_after(2)
    with pytest.raises(Interrupted):
        stylize(*pair, weights=str(weights_file), size=32, iterations=6, checkpoint=checkpoint,
                on_step=on_step, should_stop=should_stop)  # fmt: skip
    make_image(pair[1], (40, 40), seed=99)
    with pytest.raises(CheckpointError, match="has changed"):
        resume(checkpoint)


def test_checkpointing_objects_is_refused_before_work(pair, tmp_path: Path, tiny_weights: VGGWeights) -> None:
    from painterly import OptionError

    with pytest.raises(OptionError, match="checkpoints need image files"):
        stylize(*pair, weights=tiny_weights, size=32, iterations=2, checkpoint=tmp_path / "x.ckpt")


def test_ctrl_c_saves_image_and_checkpoint_and_resume_finishes(pair, tmp_path: Path, weights_file: Path) -> None:
    out, trace = tmp_path / "out.png", tmp_path / "trace.jsonl"
    command = [sys.executable, "-m", "painterly", str(pair[0]), str(pair[1]), "-o", str(out), "--weights",
               str(weights_file), "--size", "48", "--start-size", "none", "--iterations", "100000", "-q",
               "--trace", str(trace)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not trace.exists() or len(trace.read_text().splitlines()) < 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    partial, checkpoint = tmp_path / "out_partial.png", tmp_path / "out.png.ckpt"
    assert partial.exists() and checkpoint.exists() and not out.exists()
    assert "painterly resume" in err and "Traceback" not in err
    stopped_at = load_checkpoint(checkpoint).step
    assert stopped_at >= 3

    # Resume, then stop again with SIGTERM: still nothing lost, the step count carries on.
    process = subprocess.Popen([sys.executable, "-m", "painterly", "resume", str(checkpoint), "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(trace.read_text().splitlines()) < stopped_at + 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    steps = [json.loads(line)["step"] for line in trace.read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1)), "one trace, steps continuing across the resume"
    assert load_checkpoint(checkpoint).step > stopped_at


def test_resume_is_exact_with_random_patch_sampling_and_leaves_the_callers_rng_alone(tmp_path, weights_file) -> None:
    content = make_image(tmp_path / "c.png", (96, 72), seed=3)
    style = make_image(tmp_path / "s.png", (120, 120), seed=4)  # > 4096 relu1_1 patches: MRF samples them
    options = {"weights": str(weights_file), "size": 96, "start_size": 48, "iterations": 8, "seed": 2,
               "style_loss": "mrf", "style_layers": ["relu1_1", "relu2_1"]}  # fmt: skip
    before = torch.get_rng_state()
    uninterrupted = np.asarray(stylize(content, style, **options))
    assert torch.equal(torch.get_rng_state(), before), "stylize() does not reseed the caller's generator"
    checkpoint = tmp_path / "run.ckpt"
    on_step, should_stop = _stop_after(6)  # in the second stage, whose targets are rebuilt on resume
    with pytest.raises(Interrupted):
        stylize(content, style, **options, checkpoint=checkpoint, on_step=on_step, should_stop=should_stop)
    assert np.array_equal(np.asarray(resume(checkpoint)), uninterrupted)


def test_checkpoint_resumes_from_another_directory(pair, tmp_path, weights_file, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    on_step, should_stop = _stop_after(2)
    with pytest.raises(Interrupted):
        stylize(pair[0].name, pair[1].name, weights=weights_file.name, size=32, iterations=4,
                checkpoint="run.ckpt", on_step=on_step, should_stop=should_stop)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resume(tmp_path / "run.ckpt").size == (32, 24)


def test_cli_resumes_a_checkpoint_written_by_the_api(pair, tmp_path, weights_file) -> None:
    from painterly.apps.cli import main

    checkpoint = tmp_path / "api-run.ckpt"
    on_step, should_stop = _stop_after(2)
    with pytest.raises(Interrupted):
        stylize(*pair, weights=str(weights_file), size=32, iterations=4, checkpoint=checkpoint,
                on_step=on_step, should_stop=should_stop)  # fmt: skip
    assert main(["resume", str(checkpoint), "-q"]) == 0
    assert (tmp_path / "api-run.png").exists() and not checkpoint.exists()


def test_a_checkpoint_older_than_the_tiling_options_resumes_as_it_was_made(pair, tmp_path, weights_file) -> None:
    # How runs were made before these options existed: float32, never tiled, revision 1 (halving, plain upsampling).
    options = {"weights": str(weights_file), "size": 32, "start_size": 16, "iterations": 12, "seed": 2,
               "mixed_precision": False, "tile_size": 0, "history_size": 20}  # fmt: skip
    legacy = run_for(*pair, **options, revision=1)
    assert legacy.steps_per_stage == [8, 4], "halving, not 70 % for the final stage"
    uninterrupted = np.asarray(legacy.execute())
    checkpoint = tmp_path / "run.ckpt"
    on_step, should_stop = _stop_after(6)  # in the first stage: the second starts by upsampling, as it used to
    with pytest.raises(Interrupted):
        legacy = run_for(*pair, **options, revision=1, checkpoint=str(checkpoint))
        legacy.execute(should_stop=should_stop, on_step=on_step)
    state = load_checkpoint(checkpoint)
    for newer in ("tile_size", "tile_margin", "tile_plan", "mixed_precision", "revision"):
        del state.config[newer]  # as written before these options existed
    assert np.array_equal(np.asarray(resume(state)), uninterrupted)
