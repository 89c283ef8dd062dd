"""Video files in and out with PyAV: round trips keep frame count, rate and size; audio survives; bad input is
refused in one sentence.  The clips are made here (tests/video_clips.py), at most 64 px."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from painterly.errors import ImageError, OutputError
from painterly.video.io import (
    FOLDER_INFO,
    VideoError,
    iter_frames,
    output_kind,
    probe_video,
    read_video,
    write_video,
)

from .video_clips import audio_seconds_and_pitch, moving_square, pan, write_clip_with_sine


def test_pyav_and_opencv_import_together_in_one_process() -> None:
    """Both wheels bundle an FFmpeg; loading both must not clash (OpenCV is used for flow only)."""
    code = "import av, cv2, numpy; cv2.DISOpticalFlow.create(2); av.open; print(av.__version__, cv2.__version__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert cv2.__version__.startswith("4.") and av.__version__


@pytest.mark.parametrize(("name", "fps"), [("clip.mp4", Fraction(24)), ("clip.webm", Fraction(30000, 1001))])
def test_a_round_trip_keeps_frame_count_rate_and_size(tmp_path: Path, name: str, fps: Fraction) -> None:
    frames = pan(6, 2)
    notes = write_video(tmp_path / name, frames, fps)
    clip = read_video(tmp_path / name)
    assert notes == []
    assert len(clip.frames) == 6 and clip.fps == fps
    assert clip.frames[0].shape == frames[0].shape and clip.frames[0].dtype == np.uint8
    assert np.abs(clip.frames[3].astype(int) - frames[3]).mean() < 8, "lossy, but the same picture"
    info = probe_video(tmp_path / name)
    assert (info.width, info.height, info.fps, info.audio) == (64, 48, fps, None)


def test_mp4_gets_even_sizes_by_repeating_the_last_column_and_row(tmp_path: Path) -> None:
    frames = [frame[:47, :63] for frame in pan(3, 2)]
    notes = write_video(tmp_path / "odd.mp4", frames, 10)
    clip = read_video(tmp_path / "odd.mp4")
    assert clip.frames[0].shape == (48, 64, 3) and len(clip.frames) == 3
    assert any("even sizes: 63x47 is written as 64x48" in note for note in notes)
    assert np.abs(clip.frames[1][:, 63].astype(int) - clip.frames[1][:, 62]).mean() < 6, "the edge repeated"
    write_video(tmp_path / "odd.webm", frames, 10)
    assert read_video(tmp_path / "odd.webm").frames[0].shape == (47, 63, 3), "VP9 keeps odd sizes"


def test_a_gif_round_trip_keeps_the_frames_and_a_rate_in_hundredths(tmp_path: Path) -> None:
    frames = [*moving_square(5), moving_square(5)[-1]]  # a repeated frame stays a frame of its own
    assert write_video(tmp_path / "clip.gif", frames, 25) == []
    clip = read_video(tmp_path / "clip.gif")
    assert len(clip.frames) == 6 and clip.fps == 25 and clip.frames[0].shape == (48, 64, 3)
    assert np.abs(clip.frames[2].astype(int) - frames[2]).mean() < 4, "a palette per frame keeps the colours"
    notes = write_video(tmp_path / "film.gif", frames, 24)
    assert read_video(tmp_path / "film.gif").fps == 25 and "24 fps is written as 25 fps" in notes[0]


def test_a_folder_of_frames_keeps_the_exact_frames_and_its_rate(tmp_path: Path) -> None:
    frames = pan(4, 3)
    write_video(tmp_path / "frames", frames, Fraction(30000, 1001))
    assert (tmp_path / "frames" / FOLDER_INFO).is_file() and len(list((tmp_path / "frames").glob("*.png"))) == 4
    clip = read_video(tmp_path / "frames")
    assert clip.fps == Fraction(30000, 1001) and all(
        np.array_equal(a, b) for a, b in zip(clip.frames, frames, strict=True)
    )
    assert [f.shape for f in iter_frames(tmp_path / "frames", start=2 * 1001 / 30000)] == [(48, 64, 3)] * 2
    with pytest.raises(OutputError, match="exists"):
        write_video(tmp_path / "frames", frames, 24)
    write_video(tmp_path / "frames", frames[:2], 24, overwrite=True)
    assert len(read_video(tmp_path / "frames").frames) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"], "no temporary folder left behind"


def test_max_frames_and_start_pick_a_piece_of_the_clip(tmp_path: Path) -> None:
    frames = [np.full((16, 16, 3), 20 * i, np.uint8) for i in range(10)]
    write_video(tmp_path / "steps.mp4", frames, 10)
    piece = read_video(tmp_path / "steps.mp4", start=0.4, max_frames=3)
    assert [round(f.mean() / 20) for f in piece.frames] == [4, 5, 6]
    assert len(read_video(tmp_path / "steps.mp4", max_frames=2).frames) == 2


def test_audio_is_copied_into_mp4_and_transcoded_into_webm(tmp_path: Path) -> None:
    source = tmp_path / "sine.mp4"
    seconds = write_clip_with_sine(source, pan(10, 1), fps=10)
    info = probe_video(source)
    assert info.audio is not None and info.audio.codec == "aac" and info.audio.channels == 1
    frames = read_video(source).frames
    assert write_video(tmp_path / "copy.mp4", frames, info.fps, audio_from=source) == []
    codec, length, pitch = audio_seconds_and_pitch(tmp_path / "copy.mp4")
    assert codec == "aac" and abs(length - seconds) < 0.1 and abs(pitch - 440) < 5
    notes = write_video(tmp_path / "to.webm", frames, info.fps, audio_from=source)
    assert any("transcoded from aac to opus" in note for note in notes)
    codec, length, pitch = audio_seconds_and_pitch(tmp_path / "to.webm")
    assert codec == "opus" and abs(length - seconds) < 0.1 and abs(pitch - 440) < 5


def test_audio_follows_a_piece_of_the_clip_and_is_dropped_with_a_note_where_it_cannot_go(tmp_path: Path) -> None:
    source = tmp_path / "sine.mp4"
    write_clip_with_sine(source, pan(10, 1), fps=10)
    piece = read_video(source, start=0.5, max_frames=3)
    write_video(tmp_path / "piece.mp4", piece.frames, piece.fps, audio_from=source, start=0.5)
    _, length, _ = audio_seconds_and_pitch(tmp_path / "piece.mp4")
    assert abs(length - 0.3) < 0.06
    notes = write_video(tmp_path / "clip.gif", piece.frames, piece.fps, audio_from=source)
    assert notes == ["audio dropped: GIF has no sound"]


def test_bad_input_is_refused_in_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a video at all\n" * 20)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "nothing").mkdir()
    write_video(tmp_path / "ok.mp4", pan(3, 1), 10)
    (tmp_path / "cut.mp4").write_bytes((tmp_path / "ok.mp4").read_bytes()[:600])
    cases = {
        "missing.mp4": "file not found",
        "notes.txt": "not a video file PyAV can read",
        "empty.mp4": "file is empty",
        "nothing": "holds no frames",
        "cut.mp4": "not a video file PyAV can read",
    }
    for name, reason in cases.items():
        with pytest.raises(VideoError, match=reason) as caught:
            read_video(tmp_path / name)
        assert isinstance(caught.value, ImageError) and "\n" not in str(caught.value) and name in str(caught.value)
    with pytest.raises(VideoError, match="has no frames after the start at 5 s"):
        read_video(tmp_path / "ok.mp4", start=5)
    with av.open(str(tmp_path / "sound.m4a"), "w", format="mp4") as out:  # audio alone
        stream = out.add_stream("aac", rate=8000)
        sound = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), format="flt", layout="mono")
        sound.sample_rate, sound.pts = 8000, 0
        out.mux(stream.encode(sound))
        out.mux(stream.encode(None))
    with pytest.raises(VideoError, match=r"sound\.m4a: has no video stream"):
        probe_video(tmp_path / "sound.m4a")


def test_bad_output_is_refused_in_one_sentence(tmp_path: Path) -> None:
    frames = pan(2, 1)
    write_video(tmp_path / "a.mp4", frames, 10)
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        write_video(tmp_path / "a.mp4", frames, 10)
    with pytest.raises(OutputError, match=r"unknown extension '\.avi'"):
        output_kind(tmp_path / "a.avi")
    with pytest.raises(OutputError, match="no frames to write"):
        write_video(tmp_path / "b.mp4", [], 10)
    with pytest.raises(OutputError, match="not the first frame's"):
        write_video(tmp_path / "c.mp4", [frames[0], frames[1][:40]], 10)
    with pytest.raises(OutputError, match="uint8 RGB"):
        write_video(tmp_path / "d.mp4", [frames[0].astype(np.float32)], 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"], "a failed write leaves nothing behind"


@pytest.mark.parametrize("module", ["av", "cv2"])
def test_without_the_extra_importing_painterly_video_says_how_to_install_it(module: str) -> None:
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"  # as if the wheel were not installed
        "from painterly.errors import MissingExtraError, PainterlyError\n"
        "try:\n    import painterly.video.flow\n"
        "except MissingExtraError as error:\n"
        "    assert isinstance(error, PainterlyError) and isinstance(error, ImportError)\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"painterly's video support needs PyAV and OpenCV ({module} is not installed): pip install 'painterly[video]'"
    )
