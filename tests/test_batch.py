"""painterly.batch: the grid, the sweep grammar, job files, job keys, the job store, and the driver's skip, retry
and resume with a tiny network (the Ray executor's tests are in test_batch_ray.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.batch.contact import Cell, contact_sheet
from painterly.batch.driver import run_batch
from painterly.batch.executors import InlineExecutor
from painterly.batch.grid import JobSpec, expand_inputs, make_grid
from painterly.batch.jobfile import read_job_file
from painterly.batch.keys import job_key
from painterly.batch.runner import checkpoint_path
from painterly.batch.store import JobStore
from painterly.batch.sweep import combinations, parse_sweep, parse_sweeps
from painterly.config import RunConfig
from painterly.errors import ImageError, OptionError
from painterly.events import Event, StopToken
from painterly.records import StepRecord

from .conftest import make_image
from .sketch_pictures import RAINBOW, drawing, patches


@pytest.fixture
def tiny(weights_file: Path) -> RunConfig:
    """Settings that run in a fraction of a second with the tiny random network."""
    return RunConfig(weights=str(weights_file), size=32, start_size=None, iterations=6, seed=1)


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of two contents and a folder of two styles (and a text file the folder expansion passes over)."""
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    contents.mkdir()
    styles.mkdir()
    make_image(contents / "a.png", (40, 32), seed=1)
    make_image(contents / "b.jpg", (36, 36), seed=2)
    make_image(styles / "wave.png", (40, 40), seed=3)
    make_image(styles / "starry.png", (32, 40), seed=4)
    (styles / "notes.txt").write_text("not an image")
    return contents, styles


# --- the sweep grammar -------------------------------------------------------------------------------------------


def test_a_sweep_parses_each_value_by_the_fields_own_type() -> None:
    assert parse_sweep("style_weight=10,50,200").values == (10.0, 50.0, 200.0)
    assert parse_sweep("size=384,512").values == (384, 512)
    assert parse_sweep("start-size=none,128").values == (None, 128)  # dashes as on the command line; none
    assert parse_sweep("line_search=true,off").values == (True, False)
    assert parse_sweep("optimizer=lbfgs,adam").values == ("lbfgs", "adam")
    layers = parse_sweep("style_layers=relu1_1+relu2_1,relu3_1")
    assert layers.values == (("relu1_1", "relu2_1"), ("relu3_1",))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("stlye_weight=1,2", "unknown option stlye_weight"),
        ("size=8,512", "size must be at least 16 pixels, not 8"),
        ("style_weight=much", "'much' is not a number"),
        ("size=1.5", "'1.5' is not a whole number"),
        ("optimizer=newton", "unknown optimizer 'newton'"),
        ("size", "write FIELD=VALUE,VALUE"),
        ("size=none", "none is not a value this option takes"),
        ("checkpoint=a.ckpt", "cannot be swept"),
        ("size=256,256", "a value is given twice"),
    ],
)
def test_a_bad_sweep_is_refused_in_one_sentence(text: str, says: str) -> None:
    with pytest.raises(OptionError, match=None) as refused:
        parse_sweep(text)
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_sweeps_multiply_and_a_field_is_swept_once() -> None:
    sweeps = parse_sweeps(["style_weight=10,50", "size=64,128,256"])
    found = list(combinations(sweeps))
    assert len(found) == 6 and found[0] == {"style_weight": 10.0, "size": 64} and found[1]["size"] == 128
    assert list(combinations([])) == [{}]
    with pytest.raises(OptionError, match="given twice"):
        parse_sweeps(["size=64", "size=128"])


# --- the grid and job files ----------------------------------------------------------------------------------------


def test_the_grid_is_contents_by_styles_by_sweeps(inputs: tuple[Path, Path], tiny: RunConfig) -> None:
    contents, styles = inputs
    grid = make_grid([contents], [styles / "*.png"], tiny, parse_sweeps(["style_weight=10,50,200"], tiny))
    assert len(grid) == 2 * 2 * 3
    assert grid[0].label == {"content": "a", "style": "starry", "style_weight": "10"}
    assert [job.config.style_weight for job in grid[:3]] == [10.0, 50.0, 200.0]
    assert {Path(job.content).name for job in grid} == {"a.png", "b.jpg"}
    assert all(job.config.size == 32 for job in grid), "the sweep changes only its field"


def test_inputs_that_name_nothing_are_refused(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    with pytest.raises(ImageError, match="file not found"):
        expand_inputs([tmp_path / "missing.jpg"], "content")
    with pytest.raises(ImageError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.tiff")], "style")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="holds no images"):
        expand_inputs([tmp_path / "empty"], "content")
    assert len(expand_inputs([inputs[0], inputs[0] / "a.png"], "content")) == 2, "each file once"


def test_a_job_file_holds_one_run_config_per_line(tmp_path: Path, inputs: tuple[Path, Path], tiny: RunConfig) -> None:
    contents = inputs[0]
    lines = [
        json.dumps(
            {
                "content": "contents/a.png",
                "styles": ["styles/wave.png", "styles/starry.png"],
                "style_blend": [0.7, 0.3],
                "size": 48,
                "label": {"series": "A"},
            }
        ),
        "# a comment, then a blank line",
        "",
        json.dumps({"content": str(contents / "b.jpg"), "styles": "styles/wave.png"}),
    ]
    (tmp_path / "jobs.jsonl").write_text("\n".join(lines))
    jobs = read_job_file(tmp_path / "jobs.jsonl", tiny)
    assert len(jobs) == 2
    assert jobs[0].content == str(contents / "a.png") and len(jobs[0].styles) == 2
    assert jobs[0].config.size == 48 and jobs[0].config.style_blend == (0.7, 0.3)
    assert jobs[0].label["series"] == "A"
    assert jobs[1].config.size == 32, "a line leaves the command line's settings as they are"
    (tmp_path / "bad.jsonl").write_text(lines[0] + "\n" + json.dumps({"content": "x", "styles": "y", "sise": 3}))
    with pytest.raises(OptionError, match=r"bad.jsonl, line 2: unknown option\(s\) sise"):
        read_job_file(tmp_path / "bad.jsonl")
    (tmp_path / "broken.jsonl").write_text("{not json")
    with pytest.raises(OptionError, match="line 1: not JSON"):
        read_job_file(tmp_path / "broken.jsonl")


def test_a_job_file_line_can_colour_a_sketch(tmp_path: Path, inputs: tuple[Path, Path], tiny: RunConfig) -> None:
    line = {"kind": "colorize", "content": "contents/a.png", "styles": "styles/wave.png", "fill": "blur",
            "line_width": 1, "size": 48}  # fmt: skip
    (tmp_path / "jobs.jsonl").write_text(json.dumps(line) + "\n" + json.dumps({**line, "kind": "stylize"}))
    with pytest.raises(OptionError, match=r"line 2: unknown option\(s\) fill, line_width"):
        read_job_file(tmp_path / "jobs.jsonl", tiny)  # colorize's options belong to a colorize line only
    (tmp_path / "jobs.jsonl").write_text(json.dumps(line))
    (job,) = read_job_file(tmp_path / "jobs.jsonl", tiny)
    assert job.kind == "colorize" and job.options["fill"] == "blur" and job.options["line_width"] == 1
    assert job.options["saturation"] == 1.2, "completed with colorize's defaults"
    assert job.config.size == 48 and job.config.iterations == 6, "the command line's settings stand"
    assert job.config.style_weight == 10.0, "where the command line kept stylize's default, colorize's stands"
    assert read_job_file(tmp_path / "jobs.jsonl")[0].config.iterations == 200
    for extra, says in [({"init": "noise"}, "colorize() sets the stylize option 'init' itself"),
                        ({"saturation": -1}, "saturation must be between 0 and 10, not -1"),
                        ({"kind": "sculpt"}, "a job's kind is one of stylize, colorize, not 'sculpt'")]:  # fmt: skip
        (tmp_path / "bad.jsonl").write_text(json.dumps({**line, **extra}))
        with pytest.raises(OptionError, match=None) as refused:
            read_job_file(tmp_path / "bad.jsonl", tiny)
        assert str(refused.value).startswith("job file") and says in str(refused.value)


def test_a_spec_is_plain_json_and_one_stored_before_kinds_is_a_style_transfer(tiny: RunConfig) -> None:
    colour = JobSpec("s.png", ("a.png",), tiny, {"content": "s"}, kind="colorize", options={"fill": "white"})
    assert JobSpec.from_dict(json.loads(json.dumps(colour.to_dict()))) == colour
    assert colour.options["despeckle"] == 0 and not colour.resumable
    old = {"content": "c.png", "styles": ["a.png"], "config": tiny.to_dict(), "label": {"content": "c"}}
    loaded = JobSpec.from_dict(old)
    assert loaded == JobSpec("c.png", ("a.png",), tiny, {"content": "c"}) and loaded.kind == "stylize"
    assert loaded.options == {} and loaded.resumable
    with pytest.raises(OptionError, match="only a colorize job takes colorize's options"):
        JobSpec("c.png", ("a.png",), tiny, options={"fill": "blur"})
    with pytest.raises(OptionError, match="sets the stylize option 'init' itself"):
        JobSpec("c.png", ("a.png",), tiny.replace(init="noise"), kind="colorize")


# --- job keys -----------------------------------------------------------------------------------------------------


def test_a_colouring_jobs_key_holds_its_kind_and_options_and_a_transfers_key_is_unchanged(
    inputs: tuple[Path, Path], tiny: RunConfig
) -> None:
    from painterly.batch.keys import canonical_job

    contents, styles = inputs
    paint = JobSpec(str(contents / "a.png"), (str(styles / "wave.png"),), tiny)
    colour = JobSpec(paint.content, paint.styles, tiny, kind="colorize")
    assert set(canonical_job(paint)) == {"content", "styles", "settings", "recipe", "weights_sha256"}
    assert canonical_job(colour)["kind"] == "colorize" and canonical_job(colour)["options"]["fill"] == "regions"
    assert job_key(colour) != job_key(paint)
    assert job_key(JobSpec(paint.content, paint.styles, tiny, kind="colorize", options={"fill": "blur"})) != job_key(
        colour
    )
    assert job_key(JobSpec(paint.content, paint.styles, tiny, kind="colorize", options={"fill": "regions"})) == (
        job_key(colour)
    ), "a default spelled out"


def test_a_key_depends_on_bytes_and_settings_not_on_paths_or_output_fields(
    tmp_path: Path, inputs: tuple[Path, Path], tiny: RunConfig, weights_file: Path
) -> None:
    contents, styles = inputs
    job = JobSpec(str(contents / "a.png"), (str(styles / "wave.png"),), tiny)
    key = job_key(job)
    assert len(key) == 16 and job_key(job) == key
    moved = tmp_path / "elsewhere.png"
    moved.write_bytes((contents / "a.png").read_bytes())
    assert job_key(JobSpec(str(moved), job.styles, tiny)) == key, "the same bytes elsewhere: the same job"
    assert job_key(JobSpec(job.content, job.styles, tiny.replace(style_weight=50.0))) == key, "a default spelled out"
    assert job_key(JobSpec(job.content, job.styles, tiny.replace(checkpoint="x.ckpt", checkpoint_every=5))) == key
    assert job_key(JobSpec(job.content, job.styles, tiny, {"content": "renamed"})) == key, "labels are not the job"
    assert job_key(JobSpec(job.content, job.styles, tiny.replace(style_weight=51.0))) != key
    assert job_key(JobSpec(job.content, (str(styles / "starry.png"),), tiny)) != key
    changed = bytearray(moved.read_bytes())
    changed[-20] ^= 1
    moved.write_bytes(bytes(changed))
    assert job_key(JobSpec(str(moved), job.styles, tiny)) != key, "one changed byte"
    other_weights = tmp_path / "other.pt"
    other_weights.write_bytes(weights_file.read_bytes() + b"\0")
    assert job_key(JobSpec(job.content, job.styles, tiny.replace(weights=str(other_weights)))) != key


def test_a_key_includes_the_recipe_row_and_the_default_weights_digest(
    inputs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from painterly.batch import keys
    from painterly.plan.stages import CURRENT_REVISION, RECIPES

    contents, styles = inputs
    job = JobSpec(str(contents / "a.png"), (str(styles / "wave.png"),), RunConfig(network="random-vgg19"))
    key = job_key(job)
    changed = dataclasses.replace(RECIPES[CURRENT_REVISION], final_stage_share=0.5)
    monkeypatch.setitem(keys.RECIPES, CURRENT_REVISION, changed)
    assert job_key(job) != key
    monkeypatch.setitem(keys.RECIPES, CURRENT_REVISION, RECIPES[CURRENT_REVISION])
    monkeypatch.setattr(keys, "default_weights_sha256", lambda network: "0" * 64)
    assert job_key(job) != key


# --- the job store ------------------------------------------------------------------------------------------------


def test_the_store_keeps_states_in_wal_mode_and_recovers_a_killed_drivers_jobs(
    tmp_path: Path, inputs: tuple[Path, Path], tiny: RunConfig
) -> None:
    job = JobSpec(str(inputs[0] / "a.png"), (str(inputs[1] / "wave.png"),), tiny, {"content": "a"})
    path = tmp_path / "jobs.sqlite"
    with JobStore.open(path) as store:
        assert store.add([("k1", job), ("k2", job)]) == 2
        assert store.add([("k1", job)]) == 0, "a known key keeps its state"
        store.started("k1")
        store.started("k2")
        store.failed("k2", "style image x.png: not an image")
    # a killed driver: nothing more was written; the file itself says what was committed
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with JobStore.open(path) as store:
        rows = {row.key: row for row in store.rows()}
        assert rows["k1"].state == "interrupted" and rows["k1"].attempts == 1
        assert rows["k2"].state == "failed" and rows["k2"].reason == "style image x.png: not an image"
        assert rows["k1"].spec == job
        assert store.counts() == {"pending": 0, "running": 0, "done": 0, "failed": 1, "interrupted": 1}


# --- the driver: results, skip, retry, resume ---------------------------------------------------------------------


def _image_bytes(folder: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted((folder / "jobs").glob("*/image.png"))}


def test_a_batch_writes_each_result_and_one_bad_input_fails_only_its_own_job(
    tmp_path: Path, inputs: tuple[Path, Path], tiny: RunConfig
) -> None:
    contents, styles = inputs
    (styles / "broken.png").write_bytes(b"\x89PNG not really")
    jobs = make_grid([contents / "a.png"], [styles], tiny)
    out = tmp_path / "out"
    summary = run_batch(jobs, out)
    assert len(summary.done) == 2 and len(summary.failed) == 1 and not summary.skipped
    failure = summary.failed[0]
    assert failure.label["style"] == "broken" and "broken.png" in str(failure.reason) and "\n" not in failure.reason
    for report in summary.done:
        folder = out / "jobs" / report.key
        assert {p.name for p in folder.iterdir()} == {"image.png", "settings.json", "trace.jsonl", "losses.json"}
        settings = json.loads((folder / "settings.json").read_text())
        assert settings["settings"]["history_size"] is not None, "automatic values are resolved"
        assert settings["settings"]["mixed_precision"] is False and settings["label"] == report.label
        assert settings["content"] == str(contents / "a.png") and settings["weights_sha256"]
        trace = (folder / "trace.jsonl").read_text().splitlines()
        assert (
            len(trace) == 6
            and json.loads(trace[-1])["total"] == json.loads((folder / "losses.json").read_text())["total"]
        )
    assert not list((out / "work").glob("*.ckpt")), "a finished job's checkpoint is gone"
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.width > 2 * 256 and sheet.height > 256
    assert json.loads((out / "summary.json").read_text())["failed"][0]["label"]["style"] == "broken"


def test_running_again_skips_what_is_done_and_retries_failures_up_to_the_limit(
    tmp_path: Path, inputs: tuple[Path, Path], tiny: RunConfig
) -> None:
    contents, styles = inputs
    (styles / "broken.png").write_bytes(b"\x89PNG not really")
    jobs = make_grid([contents / "a.png"], [styles], tiny)
    out = tmp_path / "out"
    run_batch(jobs, out, max_attempts=2, contact_sheet=False)
    before = _image_bytes(out)
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "jobs").rglob("*")}
    again = run_batch(jobs, out, max_attempts=2, contact_sheet=False)
    assert not again.done and len(again.failed) == 1, "the failed job was tried a second time"
    assert sorted(r.reason for r in again.skipped) == ["done before", "done before"]
    third = run_batch(jobs, out, max_attempts=2, contact_sheet=False)
    assert not third.done and not third.failed
    assert [r.reason for r in third.skipped if r.reason != "done before"] == [
        f"failed 2 times: {again.failed[0].reason}"
    ]
    assert _image_bytes(out) == before and {p: p.stat().st_mtime_ns for p in (out / "jobs").rglob("*")} == mtimes
    assert "1 failed" not in third.text() and "failed 2 times" in third.text()


def test_an_interrupted_job_continues_from_its_checkpoint_and_ends_as_an_uninterrupted_one(
    tmp_path: Path, inputs: tuple[Path, Path], tiny: RunConfig
) -> None:
    contents, styles = inputs
    jobs = make_grid([contents / "a.png"], [styles / "wave.png", styles / "starry.png"], tiny)
    reference = run_batch(jobs, tmp_path / "reference", contact_sheet=False)
    assert len(reference.done) == 2
    token = StopToken()

    def stop_at_step_4(event: Event) -> None:
        if isinstance(event, StepRecord) and event.step == 4:
            token.request()

    out = tmp_path / "out"
    stopped = run_batch(jobs, out, executor=InlineExecutor(checkpoint_every=2, sink=stop_at_step_4),
                        should_stop=token, contact_sheet=False)  # fmt: skip
    assert not stopped.done and len(stopped.interrupted) == 2, "one stopped mid-run, one never started"
    first = stopped.interrupted[0].key
    assert checkpoint_path(out / "work", first).exists()
    with JobStore.open(out / "jobs.sqlite") as store:
        assert store.get(first).state == "interrupted"  # type: ignore[union-attr]
    resumed = run_batch(jobs, out, contact_sheet=False)
    assert len(resumed.done) == 2
    settings = json.loads((out / "jobs" / first / "settings.json").read_text())
    assert settings["resumed_at_step"] == 4
    assert len((out / "jobs" / first / "trace.jsonl").read_text().splitlines()) == 6, "the whole trace, both parts"
    for key in (r.key for r in reference.done):
        ours = np.asarray(Image.open(out / "jobs" / key / "image.png"))
        theirs = np.asarray(Image.open(tmp_path / "reference" / "jobs" / key / "image.png"))
        assert np.array_equal(ours, theirs), "resumed from the checkpoint, bit for bit"


def test_a_job_left_running_by_a_killed_driver_is_run_again(
    tmp_path: Path, inputs: tuple[Path, Path], tiny: RunConfig
) -> None:
    jobs = make_grid([inputs[0] / "a.png"], [inputs[1] / "wave.png"], tiny)
    out = tmp_path / "out"
    key = job_key(jobs[0])
    with JobStore.open(out / "jobs.sqlite") as store:  # what a driver killed mid-job leaves behind
        store.add([(key, jobs[0])])
        store.started(key)
    summary = run_batch(jobs, out, contact_sheet=False)
    assert [r.key for r in summary.done] == [key]
    with JobStore.open(out / "jobs.sqlite") as store:
        row = store.get(key)
        assert row is not None and row.state == "done" and row.attempts == 2


def test_a_batch_colours_a_sketch_that_a_stop_starts_again_and_its_picture_reproduces(
    tmp_path: Path, tiny: RunConfig
) -> None:
    from painterly import reproduce
    from painterly.sketch.colorize import line_f1

    sketch, style = tmp_path / "sketch.png", tmp_path / "art.png"
    drawing().save(sketch)
    patches(RAINBOW).save(style)
    job = JobSpec(str(sketch), (str(style),), tiny.replace(size=48), {"content": "sketch"}, kind="colorize",
                  options={"saturation": 1.5})  # fmt: skip
    token = StopToken()

    def stop_at_step_4(event: Event) -> None:
        if isinstance(event, StepRecord) and event.step == 4:
            token.request()

    out = tmp_path / "out"
    stopped = run_batch([job], out, executor=InlineExecutor(checkpoint_every=2, sink=stop_at_step_4),
                        should_stop=token, contact_sheet=False)  # fmt: skip
    (report,) = stopped.interrupted
    assert report.reason == "stopped; a sketch's colouring keeps no checkpoint, so it starts again from the beginning"
    assert not list((out / "work").glob("*.ckpt"))
    with JobStore.open(out / "jobs.sqlite") as store:
        assert "starts again from the beginning" in str(store.get(report.key).reason)  # type: ignore[union-attr]
    again = run_batch([job], out, contact_sheet=False)
    assert [r.key for r in again.done] == [report.key]
    folder = out / "jobs" / report.key
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["kind"] == "colorize" and settings["resumed_at_step"] == 0
    assert settings["settings"]["saturation"] == 1.5 and settings["settings"]["sketch"] == str(sketch)
    assert len((folder / "trace.jsonl").read_text().splitlines()) == 6, "one whole run's trace"
    with Image.open(folder / "image.png") as opened:
        picture = opened.convert("RGB")
    assert line_f1(picture, drawing())["f1"] > 0.9
    assert np.array_equal(np.asarray(reproduce(folder / "image.png")), np.asarray(picture)), "its provenance"


def test_a_killed_drivers_colouring_job_says_it_starts_again(tmp_path: Path, tiny: RunConfig) -> None:
    paint = JobSpec("c.png", ("a.png",), tiny)
    colour = JobSpec("s.png", ("a.png",), tiny, kind="colorize")
    with JobStore.open(tmp_path / "jobs.sqlite") as store:
        store.add([("paint", paint), ("colour", colour)])
        store.started("paint")
        store.started("colour")
    with JobStore.open(tmp_path / "jobs.sqlite") as store:  # the driver was killed: both were left running
        reasons = {row.key: (row.state, row.reason) for row in store.rows()}
    assert reasons == {
        "paint": ("interrupted", "the batch was stopped while it ran"),
        "colour": ("interrupted", "the batch was stopped while it ran; a sketch's colouring keeps no checkpoint, so "
                                  "it starts again from the beginning"),
    }  # fmt: skip


def test_one_driver_per_batch_folder(tmp_path: Path, inputs: tuple[Path, Path], tiny: RunConfig) -> None:
    import fcntl

    from painterly.errors import OutputError

    out = tmp_path / "out"
    out.mkdir()
    with open(out / "batch.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(OutputError, match="in use by another painterly batch"):
            run_batch(make_grid([inputs[0] / "a.png"], [inputs[1] / "wave.png"], tiny), out)


def test_the_contact_sheet_lays_out_contents_by_styles(tmp_path: Path) -> None:
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (64, 48), (255, 0, 0)).save(red)
    Image.new("RGB", (48, 64), (0, 0, 255)).save(blue)
    cells: list[Cell] = [
        ({"content": "a", "style": "s1"}, red, None),
        ({"content": "a", "style": "s2"}, blue, None),
        ({"content": "b", "style": "s1"}, None, "broken"),
        ({"content": "b", "style": "s2"}, red, None),
    ]
    sheet = np.asarray(contact_sheet(cells, cell=100))
    reds = np.argwhere((sheet[..., 0] > 200) & (sheet[..., 1] < 50) & (sheet[..., 2] < 50))
    blues = np.argwhere((sheet[..., 2] > 200) & (sheet[..., 0] < 50) & (sheet[..., 1] < 50))
    assert reds[:, 0].min() < blues[:, 0].max() < reds[:, 0].max(), "rows: content a above b"
    assert blues[:, 1].min() > reds[:, 1].min(), "columns: style s1 left of s2"
    blue_height = blues[:, 0].max() - blues[:, 0].min() + 1
    assert blue_height == 100, "a picture smaller than its cell is enlarged to fill it (48x64 in a 100 px cell)"


# --- the command line ---------------------------------------------------------------------------------------------


def test_painterly_batch_runs_a_sweep_and_a_second_call_skips_it(
    tmp_path: Path, inputs: tuple[Path, Path], weights_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from painterly.apps.cli import main

    contents, styles = inputs
    argv = ["batch", str(contents / "a.png"), "-s", str(styles / "wave.png"), "-o", str(tmp_path / "out"),
            "--sweep", "style_weight=10,100", "--weights", str(weights_file), "--size", "32", "--start-size", "none",
            "--iterations", "3", "-q"]  # fmt: skip
    assert main(argv) == 0
    assert "2 done, 0 failed, 0 skipped" in capsys.readouterr().out
    assert len(list((tmp_path / "out" / "jobs").iterdir())) == 2 and (tmp_path / "out" / "contact_sheet.png").exists()
    assert main(argv) == 0
    assert "0 done, 0 failed, 2 skipped" in capsys.readouterr().out
    assert main([*argv[:-1], "--sweep", "style_weigth=1"]) == 2
    assert "unknown option style_weigth" in capsys.readouterr().err


def test_painterly_batch_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    from painterly.apps.cli import main

    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    shown = capsys.readouterr().out
    assert "examples:" in shown and "--sweep style_weight=10,50,200" in shown and "--jobs jobs.jsonl" in shown
    assert "resuming:" in shown and "--executor ray" in shown


def test_the_ray_executor_without_ray_says_how_to_install_it(
    tmp_path: Path, inputs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from painterly.apps.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as when it is not installed
    code = main(["batch", str(inputs[0]), "-s", str(inputs[1]), "-o", str(tmp_path / "out"), "--executor", "ray"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error == (
        "painterly: error: --executor ray needs Ray, which is not installed: pip install 'painterly[ray]'"
    )
