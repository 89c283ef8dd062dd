"""Synthetic clips for the video tests, made from the repository's example pictures so the true flow is known.

A pan is a window sliding across a larger picture (every point moves by the same shift); a moving square is a
patch of one picture sliding over a still background of another (the flow is the shift on the square and zero
elsewhere, and the strip it uncovers is the true disocclusion).  Everything stays at most 64 px wide.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from painterly.config import RunConfig
from painterly.plan.stages import stage_shape
from painterly.session import JobEstimate

from .conftest import EXAMPLES

HEIGHT, WIDTH = 48, 64


def picture(name: str, size: tuple[int, int]) -> np.ndarray:
    """An example picture resized to ``size`` (width, height), RGB uint8."""
    with Image.open(EXAMPLES / name) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BICUBIC))


def pan(frames: int, shift: int, height: int = HEIGHT, width: int = WIDTH) -> list[np.ndarray]:
    """A window moving right by ``shift`` px per frame: the content moves left, true forward flow (-shift, 0); each
    new frame reveals a ``shift``-px strip at its right edge."""
    big = picture("tubingen.jpg", (width + shift * frames + 16, height + 16))
    return [big[8 : 8 + height, 8 + shift * t : 8 + shift * t + width].copy() for t in range(frames)]


#: Where the moving square is: rows, its left column in frame 0, side, and its shift per frame.
SQUARE_TOP, SQUARE_LEFT, SQUARE_SIDE, SQUARE_STEP = 14, 12, 20, 4


def moving_square(frames: int) -> list[np.ndarray]:
    """A textured square moving right by :data:`SQUARE_STEP` px per frame over a still background."""
    background = picture("tubingen.jpg", (WIDTH, HEIGHT))
    square = picture("starry_night.jpg", (SQUARE_SIDE, SQUARE_SIDE))
    clip = []
    for t in range(frames):
        frame = background.copy()
        left = SQUARE_LEFT + SQUARE_STEP * t
        frame[SQUARE_TOP : SQUARE_TOP + SQUARE_SIDE, left : left + SQUARE_SIDE] = square
        clip.append(frame)
    return clip


def square_flows(t: int) -> tuple[np.ndarray, np.ndarray]:
    """The true flows between frames ``t`` and ``t + 1`` of :func:`moving_square`: forward on frame t's grid (the
    square moves +step), backward on frame t+1's (the square moves -step), zero on the background."""
    forward = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    backward = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    rows = slice(SQUARE_TOP, SQUARE_TOP + SQUARE_SIDE)
    left = SQUARE_LEFT + SQUARE_STEP * t
    forward[rows, left : left + SQUARE_SIDE, 0] = SQUARE_STEP
    backward[rows, left + SQUARE_STEP : left + SQUARE_STEP + SQUARE_SIDE, 0] = -SQUARE_STEP
    return forward, backward


def revealed_by_square(t: int) -> np.ndarray:
    """The pixels of frame ``t + 1`` that the square covered in frame t and uncovered now (boolean H x W)."""
    mask = np.zeros((HEIGHT, WIDTH), bool)
    left = SQUARE_LEFT + SQUARE_STEP * t
    mask[SQUARE_TOP : SQUARE_TOP + SQUARE_SIDE, left : left + SQUARE_STEP] = True
    return mask


def write_clip_with_sine(
    path: Path, frames: list[np.ndarray], fps: int = 10, *, audio_codec: str = "aac", rate: int = 44100
) -> float:
    """Write ``frames`` as H.264 in MP4 (or VP9 in WebM) with a mono 440 Hz sine as long as the video; its seconds."""
    seconds = len(frames) / fps
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264" if path.suffix == ".mp4" else "libvpx-vp9", rate=Fraction(fps))
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        audio = out.add_stream(audio_codec, rate=rate)
        audio.layout = "mono"
        for frame in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode(None))
        t = np.arange(int(seconds * rate)) / rate
        samples = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        sound = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        sound.sample_rate = rate
        sound.pts = 0
        out.mux(audio.encode(sound))
        out.mux(audio.encode(None))
    return seconds


def audio_seconds_and_pitch(path: Path) -> tuple[str, float, float]:
    """The codec, seconds and dominant frequency (Hz) of a file's first audio stream, decoded."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        # Decoders of AAC and Opus give planar samples: row 0 is the first channel.
        chunks = [frame.to_ndarray()[0].astype(np.float64) for frame in container.decode(stream)]
        rate = stream.rate
    samples = np.concatenate(chunks)
    spectrum = np.abs(np.fft.rfft(samples))
    return codec, len(samples) / rate, float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def planned_without_a_network(content: Image.Image, config: RunConfig) -> JobEstimate:
    """What ``Session.estimate`` says of a job, for stand-in sessions that run no network: the plan's result size
    (painterly.plan.stages), no memory."""
    return JobEstimate(stage_shape(content.size, config.size), 0, None)
