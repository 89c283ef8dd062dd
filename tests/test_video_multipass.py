"""The multi-pass mode (passes in alternating directions, starts blended with the warped neighbour, the temporal term
from a later pass), resuming within and between passes and within a frame, the whole-clip memory estimate, and the
progress a continued run starts from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from painterly.apps.cli import main
from painterly.config import RunConfig
from painterly.errors import OptionError
from painterly.run import Interrupted
from painterly.session import JobEstimate, Session
from painterly.video import clip as clip_module
from painterly.video.clip import clip_memory_bytes, default_temporal_from, frames_kept, stylize_clip, work_folder
from painterly.video.io import read_video, write_video

from .conftest import EXAMPLES
from .video_clips import pan, planned_without_a_network

STYLE = [EXAMPLES / "starry_night.jpg"]
CONFIG = RunConfig(size=64, iterations=7, check_memory=False)


class PassSession(Session):
    """A stand-in for style transfer whose result tells the passes apart: the first ``frames`` jobs (pass 1) give
    each frame's content halved, later jobs a quarter; records every job's content, start, terms and steps."""

    def __init__(self, frames: int, stop_after: int | None = None) -> None:
        super().__init__("cpu")
        self.frames, self.stop_after = frames, stop_after
        self.jobs: list[dict[str, Any]] = []

    def estimate(self, content: Any, styles: Any, config: RunConfig) -> JobEstimate:
        return planned_without_a_network(content, config)

    def run(self, content: Any, styles: Any, config: RunConfig, **kwargs: Any) -> Image.Image:  # type: ignore[override]
        if self.stop_after is not None and len(self.jobs) >= self.stop_after:
            raise Interrupted(0, Image.new("RGB", (1, 1)), None)
        picture = np.asarray(Image.open(content).convert("RGB"))
        start = None if config.init in ("content", "noise") else np.asarray(Image.open(config.init).convert("RGB"))
        self.jobs.append({"content": picture, "start": start, "terms": list(kwargs.get("pixel_terms", ())),
                          "steps": config.iterations})  # fmt: skip
        return Image.fromarray(picture // (2 if len(self.jobs) <= self.frames else 4))


def _clip(tmp_path: Path, frames: int) -> Path:
    write_video(tmp_path / "clip", pan(frames, 2), 10)  # a folder: exact frames
    return tmp_path / "clip"


def _index_of(job: dict[str, Any], inputs: list[np.ndarray]) -> int:
    return next(i for i, frame in enumerate(inputs) if np.array_equal(frame, job["content"]))


def test_passes_alternate_direction_and_blend_each_start_with_the_warped_neighbour(tmp_path: Path) -> None:
    clip = _clip(tmp_path, 4)
    session = PassSession(4)
    stylize_clip(clip, STYLE, tmp_path / "out", session=session, config=CONFIG, passes=3, steps_per_pass=5,
                 temporal_weight=50.0, temporal_from=3)  # fmt: skip
    inputs = [job["content"] for job in session.jobs[:4]]  # pass 1 runs forward: frames 0..3
    assert len(session.jobs) == 12 and all(job["steps"] == 5 for job in session.jobs), "3 passes x 4 frames"
    order = [_index_of(job, inputs) for job in session.jobs]
    assert order == [0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3], "forward, backward, forward"
    first, second, third = session.jobs[:4], session.jobs[4:8], session.jobs[8:]
    assert all(job["start"] is None and job["terms"] == [] for job in first), "pass 1: every frame on its own"
    # Pass 2 (blend 1): its first frame starts from its own pass-1 result; the next ones from the pass-2 neighbour
    # moved onto them where the flow is reliable (a quarter of the content), their pass-1 result (a half) elsewhere.
    assert np.array_equal(second[0]["start"], inputs[3] // 2)
    inner = (slice(4, -4), slice(6, -6))
    for job, frame in zip(second[1:], (2, 1, 0), strict=True):
        error_to_neighbour = np.abs(job["start"][inner].astype(int) - inputs[frame][inner] // 4).mean()
        assert error_to_neighbour < 3, "started from the warped pass-2 neighbour"
    assert all(job["terms"] == [] for job in second), "no temporal term before pass temporal_from"
    # The last pass (blend 0) starts every frame from its own previous result, under the temporal term.
    assert all(np.array_equal(job["start"], inputs[f] // 4) for job, f in zip(third, (0, 1, 2, 3), strict=True))
    assert third[0]["terms"] == [] and all(len(job["terms"]) == 1 for job in third[1:])
    assert third[1]["terms"][0].weight == 50.0 and len(third[1]["terms"][0].loss.warped) == 1
    out = read_video(tmp_path / "out").frames
    assert [np.array_equal(a, b // 4) for a, b in zip(out, inputs, strict=True)] == [True] * 4, "the last pass"
    assert not work_folder(tmp_path / "out").exists()


def test_the_temporal_term_starts_at_8_of_15_passes_scaled() -> None:
    assert [default_temporal_from(p) for p in (2, 4, 8, 15)] == [2, 3, 5, 8]


def test_a_stopped_multi_pass_run_continues_in_its_pass_with_the_same_frames(tmp_path: Path) -> None:
    clip = _clip(tmp_path, 3)
    options: dict[str, Any] = {"config": CONFIG, "passes": 3, "temporal_from": 2}
    whole = PassSession(3)
    stylize_clip(clip, STYLE, tmp_path / "whole", session=whole, **options)
    # Stopped in pass 2, then in pass 3 (after pass 1's folder is gone); the stand-in's result depends on how many
    # jobs it has run, so a session continuing after pass 1 is told there is no pass 1 left (frames=0).
    with pytest.raises(Interrupted):
        stylize_clip(clip, STYLE, tmp_path / "again", session=PassSession(3, stop_after=4), **options)
    with pytest.raises(Interrupted):
        stylize_clip(clip, STYLE, tmp_path / "again", session=PassSession(0, stop_after=3), **options)
    folder = work_folder(tmp_path / "again")
    assert sorted(p.name for p in folder.glob("pass_*")) == ["pass_02", "pass_03"], "pass 1 went once 2 was done"
    assert frames_kept(tmp_path / "again", passes=3, frames=3) == 7, "the bar continues at 7 of 9"
    resumed = PassSession(0)
    stylize_clip(clip, STYLE, tmp_path / "again", session=resumed, **options)
    assert len(resumed.jobs) == 2, "only the frames not kept are made"
    a, b = read_video(tmp_path / "whole").frames, read_video(tmp_path / "again").frames
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_frame_stopped_part_way_continues_from_its_checkpoint(tmp_path: Path, weights_file: Path) -> None:
    clip = _clip(tmp_path, 3)
    config = RunConfig(size=32, start_size=None, iterations=6, weights=str(weights_file), mixed_precision=False)
    stylize_clip(clip, STYLE, tmp_path / "whole", config=config, session=Session("cpu"))
    steps = 0

    def stop_in_frame_two() -> bool:
        nonlocal steps
        steps += 1
        return steps > 6 + 3  # frame 1's six steps, then three of frame 2

    with pytest.raises(Interrupted):
        stylize_clip(clip, STYLE, tmp_path / "again", config=config, session=Session("cpu"),
                     should_stop=stop_in_frame_two)  # fmt: skip
    folder = work_folder(tmp_path / "again")
    assert (folder / "job_000002.ckpt").is_file() and (folder / "frame_000001.png").is_file()
    assert frames_kept(tmp_path / "again") == 1
    stylize_clip(clip, STYLE, tmp_path / "again", config=config, session=Session("cpu"))
    a, b = read_video(tmp_path / "whole").frames, read_video(tmp_path / "again").frames
    assert len(a) == 3 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_clip_memory_counts_every_frame_only_in_multi_pass() -> None:
    frame = 100 * 2**20
    single = [clip_memory_bytes(frame, 256, 192, frames=n, passes=1, source_pixels=1920 * 1080) for n in (10, 1000)]
    multi = [clip_memory_bytes(frame, 256, 192, frames=n, passes=4, source_pixels=1920 * 1080) for n in (10, 1000)]
    assert single[0] == single[1] > frame, "single pass keeps a window of frames"
    assert multi[1] - multi[0] == 990 * 256 * 192 * 3, "multi-pass keeps every frame at the result's size"


def test_a_clip_that_would_not_fit_is_refused_in_one_sentence_before_any_frame(
    tmp_path: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = _clip(tmp_path, 3)
    monkeypatch.setattr(clip_module, "clip_memory_bytes", lambda *args, **kwargs: 2**60)  # an exbibyte
    config = RunConfig(size=32, iterations=2, weights=str(weights_file))
    refusal = r"^3 frames at 32x24 in 2 passes need about 1073741824\.0 GiB but only [0-9.]+ GiB is free; use"
    with pytest.raises(OptionError, match=refusal):
        stylize_clip(clip, STYLE, tmp_path / "out", config=config, passes=2)
    assert not list(work_folder(tmp_path / "out").glob("pass_*/*.png")), "refused before the first frame"
    stylize_clip(clip, STYLE, tmp_path / "unchecked", config=config.replace(check_memory=False, iterations=1))
    code = main(["video", str(clip), str(STYLE[0]), "-o", str(tmp_path / "cli.mp4"), "--weights", str(weights_file),
                 "--size", "32", "--iterations", "2", "-q"])  # fmt: skip
    error = capsys.readouterr().err.strip()
    assert code == 2 and "3 frames at 32x24 in 1 pass need about" in error and "\n" not in error


def test_the_video_command_runs_several_passes_on_the_tiny_network(tmp_path: Path, weights_file: Path, capsys) -> None:
    clip = _clip(tmp_path, 3)
    out = tmp_path / "out.gif"
    code = main(["video", str(clip), str(STYLE[0]), "-o", str(out), "--weights", str(weights_file), "--size", "32",
                 "--start-size", "none", "--passes", "2", "--pass-iterations", "2", "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert len(read_video(out).frames) == 3 and not work_folder(out).exists()
    assert main(["video", str(clip), str(STYLE[0]), "-o", str(tmp_path / "bad.gif"), "--passes", "0"]) == 2
    assert "passes and steps per pass must be 1 or more" in capsys.readouterr().err


def test_a_continued_video_command_starts_its_bar_at_the_frames_already_done(
    tmp_path: Path, weights_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = _clip(tmp_path, 4)
    out = tmp_path / "out.gif"
    config = RunConfig(size=32, start_size=None, iterations=2, weights=str(weights_file))
    done: list[int] = []
    with pytest.raises(Interrupted):
        stylize_clip(clip, STYLE, out, config=config, should_stop=lambda: len(done) >= 2,
                     on_frame=lambda count, _total, _kept: done.append(count))  # fmt: skip
    capsys.readouterr()
    code = main(["video", str(clip), str(STYLE[0]), "-o", str(out), "--weights", str(weights_file), "--size", "32",
                 "--start-size", "none", "--iterations", "2"])  # fmt: skip
    bar = capsys.readouterr().err
    assert code == 0 and "2/4" in bar and "4/4" in bar and "0/4" not in bar and "1/4" not in bar
