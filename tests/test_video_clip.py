"""Stylising a clip: the frame loop (which terms and starts each frame gets, resuming after a stop) with a stand-in
session, then the ``painterly video`` command end to end on the tiny network."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from painterly.apps.cli import main
from painterly.config import RunConfig
from painterly.errors import OutputError
from painterly.run import Interrupted
from painterly.session import JobEstimate, Session
from painterly.video.clip import DEFAULT_TEMPORAL_WEIGHT, stylize_clip, work_folder
from painterly.video.io import probe_video, read_video, write_video
from painterly.video.temporal import TemporalLoss

from .conftest import EXAMPLES
from .video_clips import pan, planned_without_a_network, write_clip_with_sine


class RecordingSession(Session):
    """Gives back each frame darkened (a stand-in for a style transfer), recording what every job was given."""

    def __init__(self) -> None:
        super().__init__("cpu")
        self.jobs: list[dict[str, Any]] = []

    def estimate(self, content: Any, styles: Any, config: RunConfig) -> JobEstimate:
        return planned_without_a_network(content, config)

    def run(self, content: Any, styles: Any, config: RunConfig, **kwargs: Any) -> Image.Image:  # type: ignore[override]
        should_stop = kwargs.get("should_stop")
        if should_stop is not None and should_stop():
            raise Interrupted(0, content, None)
        start = None if config.init in ("content", "noise") else np.asarray(Image.open(config.init).convert("RGB"))
        picture = np.asarray(Image.open(content).convert("RGB"))
        self.jobs.append({"terms": list(kwargs.get("pixel_terms", ())), "start": start, "content": picture,
                          "config": config})  # fmt: skip
        return Image.fromarray(picture // 2)


#: The stand-in session runs no network, so the clip's memory check (which plans the first frame's run) is off.
SMALL = RunConfig(size=64, check_memory=False)


def _clip(tmp_path: Path, frames: Sequence[np.ndarray]) -> Path:
    write_video(tmp_path / "clip", frames, 10)  # a folder: exact frames
    return tmp_path / "clip"


def test_each_frame_after_the_first_starts_from_the_warped_result_under_the_long_term_terms(tmp_path: Path) -> None:
    clip = _clip(tmp_path, pan(6, 2))
    session = RecordingSession()
    stylize_clip(clip, [EXAMPLES / "starry_night.jpg"], tmp_path / "out", session=session, config=SMALL)
    assert len(session.jobs) == 6
    assert session.jobs[0]["terms"] == [] and session.jobs[0]["start"] is None
    counts = [len(job["terms"][0].loss.warped) for job in session.jobs[1:]]
    assert counts == [1, 2, 2, 3, 3], "frames i-1, i-2 and i-4 where they exist"
    loss = session.jobs[1]["terms"][0].loss
    assert isinstance(loss, TemporalLoss) and session.jobs[1]["terms"][0].weight == DEFAULT_TEMPORAL_WEIGHT
    # Frame 1 starts from result 0 moved along the flow: the darkened frame 0 shifted by the pan's 2 px.
    expected = np.asarray(session.jobs[1]["content"]) // 2
    start = session.jobs[1]["start"]
    assert np.abs(start[:, 4:-6].astype(int) - expected[:, 4:-6]).mean() < 3
    assert len(read_video(tmp_path / "out").frames) == 6 and not work_folder(tmp_path / "out").exists()


def test_a_stopped_run_continues_at_the_next_frame_with_the_same_frames(tmp_path: Path) -> None:
    clip = _clip(tmp_path, pan(5, 2))
    style = [EXAMPLES / "starry_night.jpg"]
    whole = RecordingSession()
    stylize_clip(clip, style, tmp_path / "whole", session=whole, config=SMALL)
    stopped = RecordingSession()
    finished: list[int] = []
    with pytest.raises(Interrupted):
        stylize_clip(clip, style, tmp_path / "again", session=stopped, config=SMALL,
                     should_stop=lambda: len(finished) >= 3,
                     on_frame=lambda done, total, kept: finished.append(done))  # fmt: skip
    kept = sorted(p.name for p in work_folder(tmp_path / "again").glob("frame_*.png"))
    assert kept == ["frame_000001.png", "frame_000002.png", "frame_000003.png"] and not (tmp_path / "again").exists()
    resumed = RecordingSession()
    stylize_clip(clip, style, tmp_path / "again", session=resumed, config=SMALL)
    assert len(resumed.jobs) == 2, "only the frames not kept are made"
    a, b = read_video(tmp_path / "whole").frames, read_video(tmp_path / "again").frames
    assert len(a) == len(b) == 5 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(Interrupted):  # the work folder is kept for these settings only
        stylize_clip(clip, style, tmp_path / "third", session=RecordingSession(), config=SMALL,
                     should_stop=lambda: True)  # fmt: skip
    with pytest.raises(OutputError, match="other settings; pass --overwrite"):
        stylize_clip(clip, style, tmp_path / "third", session=RecordingSession(), config=SMALL.replace(size=32))


def test_the_video_command_stylises_a_clip_keeping_rate_and_sound(tmp_path: Path, weights_file: Path, capsys) -> None:
    clip = tmp_path / "clip.mp4"
    write_clip_with_sine(clip, pan(3, 2), fps=10)
    out = tmp_path / "out.mp4"
    code = main(["video", str(clip), str(EXAMPLES / "starry_night.jpg"), "-o", str(out), "--weights",
                 str(weights_file), "--size", "32", "--start-size", "none", "--iterations", "3", "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    info = probe_video(out)
    assert (info.frames, info.fps, info.width, info.height) == (3, 10, 32, 24)
    assert info.audio is not None and info.audio.codec == "aac"
    assert not work_folder(out).exists()
    assert main(["video", str(clip), str(EXAMPLES / "starry_night.jpg"), "-o", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["video", str(tmp_path / "none.mp4"), str(EXAMPLES / "starry_night.jpg")]) == 2
    assert "none.mp4: file not found" in capsys.readouterr().err


def test_without_the_extra_the_video_command_says_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['av'] = None\n"  # as if PyAV were not installed
        "from painterly.apps.cli import main\n"
        "sys.exit(main(['video', 'clip.mp4', 'style.jpg']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().endswith("(av is not installed): pip install 'painterly[video]'")
    assert "\n" not in done.stderr.strip(), "one sentence"
