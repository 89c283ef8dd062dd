"""Video files in and out: frames as RGB ``uint8`` arrays (H x W x 3), with the clip's frame rate, size and audio.

Why PyAV: its wheel brings its own FFmpeg (libx264, libvpx, the GIF codec), so no system ffmpeg is needed and the
frames arrive as numpy arrays without a subprocess.  OpenCV also bundles an FFmpeg; it is used for optical flow only
(painterly.video.flow), never for files, so one FFmpeg decides how every file is read and written.

Containers written, chosen by the output's name: ``.mp4`` (H.264, yuv420p, which needs even sizes: an odd width or
height gets its last column or row repeated once), ``.webm`` (VP9), ``.gif`` (a palette per frame; GIF keeps frame
times in hundredths of a second, so 24 fps is written as 25) and a name without a suffix: a folder of PNG frames
with ``video.json`` holding the frame rate.  Every write lands whole or not at all (a temporary file or folder
beside the target, then a rename).  The audio of the source clip is copied where its codec fits the container,
transcoded where it does not (AAC in MP4, Opus in WebM), and dropped with a note for GIF and folders.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import av.error
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from PIL import Image

from painterly.errors import ImageError, OutputError
from painterly.io.atomic import atomic_open

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "FOLDER_INFO",
    "AudioInfo",
    "Clip",
    "VideoError",
    "VideoInfo",
    "iter_frames",
    "output_kind",
    "probe_video",
    "read_video",
    "write_video",
]

log = logging.getLogger("painterly")

#: The frame rate of a folder of frames that has no ``video.json`` (the film standard; a folder records none).
DEFAULT_FOLDER_FPS = Fraction(24)
#: The file in a folder of frames that keeps its frame rate, written by :func:`write_video`.
FOLDER_INFO = "video.json"
#: Image files a folder of frames may hold, read in the order of their names.
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Output suffix -> container kind; a name without a suffix is a folder of frames.
OUTPUT_KINDS = {".mp4": "mp4", ".m4v": "mp4", ".webm": "webm", ".gif": "gif"}
#: Audio codecs each container takes as they are (copied packet for packet); others are transcoded.
AUDIO_FITS = {"mp4": {"aac", "mp3", "alac"}, "webm": {"opus", "vorbis"}}
#: The codec and sample rate audio is transcoded to, per container (Opus runs at 48 kHz).
AUDIO_TRANSCODE: dict[str, tuple[str, int | None]] = {"mp4": ("aac", None), "webm": ("libopus", 48000)}
#: FFmpeg's decoder names that differ from the codec's own name.
DECODER_CODECS = {"mp3float": "mp3"}


class VideoError(ImageError):
    """An input clip is missing, not a video, has no frames, or cannot be decoded."""


@dataclass(frozen=True)
class AudioInfo:
    """The first audio stream of a clip: its codec, sample rate and channel count."""

    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class VideoInfo:
    """What a clip is, read before decoding it: the size and rate every output keeps, and its audio."""

    path: Path
    width: int
    height: int
    fps: Fraction
    #: Frames as the container states them (None where it does not say; a folder counts its files).
    frames: int | None
    #: Seconds, where known.
    duration: float | None
    #: The video codec (``"frames"`` for a folder of images).
    codec: str
    audio: AudioInfo | None = None


@dataclass
class Clip:
    """A clip read into memory: its frames (RGB ``uint8``, H x W x 3), frame rate and where it started."""

    frames: list[np.ndarray]
    fps: Fraction
    info: VideoInfo
    #: Seconds into the source where the first frame is (``start`` of :func:`read_video`).
    start: float = 0.0
    notes: list[str] = field(default_factory=list)


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith("."))


def _folder_fps(folder: Path) -> Fraction:
    info = folder / FOLDER_INFO
    if not info.is_file():
        return DEFAULT_FOLDER_FPS
    try:
        fps = Fraction(json.loads(info.read_text())["fps"])
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError) as error:
        raise VideoError(f"video {folder}: {FOLDER_INFO} is damaged ({error})") from None
    if fps <= 0:
        raise VideoError(f"video {folder}: {FOLDER_INFO} gives a frame rate of {fps}, which must be positive")
    return fps


def _open(path: Path) -> av.container.InputContainer:
    """Open a video file, or raise a one-sentence :class:`VideoError` saying why not."""
    if not path.exists():
        raise VideoError(f"video {path}: file not found")
    if path.stat().st_size == 0:
        raise VideoError(f"video {path}: file is empty (0 bytes)")
    try:
        container = av.open(str(path), "r")
    except av.error.FFmpegError as error:
        raise VideoError(f"video {path}: not a video file PyAV can read ({error.strerror})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"video {path}: has no video stream")
    return container


def _stream_fps(stream: Any) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return None


def _audio_info(container: av.container.InputContainer) -> AudioInfo | None:
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    name = stream.codec_context.name
    return AudioInfo(DECODER_CODECS.get(name, name), int(stream.rate or 0), int(stream.channels or 0))


def probe_video(path: Path | str) -> VideoInfo:
    """The clip's size, frame rate, frame count, duration, codec and audio, without decoding its frames.

    ``path`` is a video file (anything PyAV reads: MP4, WebM, GIF, AVI, ...) or a folder of frames.
    """
    path = Path(path)
    if path.is_dir():
        files = _frame_files(path)
        if not files:
            raise VideoError(f"video {path}: the folder holds no frames ({', '.join(FRAME_SUFFIXES)} files)")
        try:
            with Image.open(files[0]) as first:
                width, height = first.size
        except OSError as error:
            raise VideoError(f"video {path}: frame {files[0].name} is not an image Pillow can read ({error})") from None
        fps = _folder_fps(path)
        return VideoInfo(path, width, height, fps, len(files), float(len(files) / fps), "frames")
    with _open(path) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        if context is None or not context.width or not context.height:
            raise VideoError(f"video {path}: its video codec cannot be decoded here")
        stated = _stream_fps(stream)
        if stated is None:
            raise VideoError(f"video {path}: states no frame rate")
        fps = stated
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        audio = _audio_info(container)
        return VideoInfo(path, context.width, context.height, fps, stream.frames or None, duration, context.name, audio)


def _check_window(start: float, max_frames: int | None) -> None:
    if not math.isfinite(start) or start < 0:
        raise OutputError(f"the start time must be 0 or more seconds, not {start}")
    if max_frames is not None and max_frames < 1:
        raise OutputError(f"max_frames must be at least 1, not {max_frames}")


def _folder_frames(path: Path, start: float, max_frames: int | None) -> Iterator[np.ndarray]:
    fps = _folder_fps(path)
    files = _frame_files(path)[math.ceil(start * fps - 1e-9) :]
    size: tuple[int, int] | None = None
    for file in files[:max_frames]:
        try:
            with Image.open(file) as image:
                frame = np.asarray(image.convert("RGB"))
        except OSError as error:
            raise VideoError(f"video {path}: frame {file.name} is not an image Pillow can read ({error})") from None
        if size is None:
            size = frame.shape[:2]
        elif frame.shape[:2] != size:
            raise VideoError(f"video {path}: frame {file.name} is {frame.shape[1]}x{frame.shape[0]}, not the first "
                             f"frame's {size[1]}x{size[0]}")  # fmt: skip
        yield frame


def _file_frames(path: Path, start: float, max_frames: int | None) -> Iterator[np.ndarray]:
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = _stream_fps(stream) or DEFAULT_FOLDER_FPS
        if start > 0:
            # To the key frame before the start (decoding from there is exact); a file that cannot seek is decoded
            # from its beginning, and the frames before the start are skipped either way.
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(int(start * av.time_base))
        count = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                time = frame.time if frame.time is not None else index / fps
                if time < start - 0.5 / fps:
                    continue
                yield frame.to_ndarray(format="rgb24")
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
        except av.error.FFmpegError as error:
            raise VideoError(f"video {path}: cannot be decoded after {count} frames ({error.strerror})") from None


def iter_frames(path: Path | str, *, start: float = 0.0, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """The clip's frames from ``start`` seconds on, at most ``max_frames`` of them, as RGB ``uint8`` arrays.

    One at a time, so a long clip need not fit in memory.  Raises :class:`VideoError` if no frame comes.
    """
    path = Path(path)
    _check_window(start, max_frames)
    frames = _folder_frames(path, start, max_frames) if path.is_dir() else _file_frames(path, start, max_frames)
    count = 0
    for frame in frames:
        count += 1
        yield frame
    if count == 0:
        where = f" after the start at {start:g} s" if start else ""
        raise VideoError(f"video {path}: has no frames{where}")


def read_video(path: Path | str, *, start: float = 0.0, max_frames: int | None = None) -> Clip:
    """The whole clip (or ``max_frames`` from ``start`` seconds) in memory, with its frame rate and audio."""
    info = probe_video(path)
    frames = list(iter_frames(path, start=start, max_frames=max_frames))
    return Clip(frames, info.fps, info, start)


def output_kind(path: Path | str) -> str:
    """``"mp4"``, ``"webm"``, ``"gif"`` or ``"folder"`` (a name without a suffix), by the output's name."""
    path = Path(path)
    if not path.suffix:
        return "folder"
    kind = OUTPUT_KINDS.get(path.suffix.lower())
    if kind is None:
        raise OutputError(
            f"output {path}: unknown extension {path.suffix!r}; use one of {', '.join(OUTPUT_KINDS)} or a folder name"
        )
    return kind


def _rgb_frames(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Check each frame is an H x W x 3 ``uint8`` array of the first frame's size."""
    size: tuple[int, ...] | None = None
    for index, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise OutputError(f"frame {index} is {frame.dtype} {frame.shape}, not an H x W x 3 uint8 RGB array")
        if size is None:
            size = frame.shape
        elif frame.shape != size:
            raise OutputError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, not the first frame's "
                              f"{size[1]}x{size[0]}")  # fmt: skip
        yield frame


def _palette_frame(frame: np.ndarray) -> av.VideoFrame:
    """A GIF frame: the frame reduced to its own 256-colour palette (Pillow's median cut)."""
    quantized = Image.fromarray(frame).quantize(256)
    palette = np.zeros((256, 4), np.uint8)
    colours = np.asarray(quantized.getpalette() or [], np.uint8).reshape(-1, 3)[:256]
    palette[:, 0] = 255  # PyAV takes the palette as ARGB
    palette[: len(colours), 1:] = colours
    # PyAV's stubs do not know pal8's (image, palette) pair.
    return av.VideoFrame.from_ndarray((np.asarray(quantized), palette), format="pal8")  # type: ignore[arg-type]


def _gif_fps(fps: Fraction) -> Fraction:
    """The rate a GIF can keep: frame times are whole hundredths of a second, and players slow down below 2."""
    return Fraction(100, max(2, round(100 / fps)))


def _add_audio(
    out: av.container.OutputContainer, kind: str, source: av.container.InputContainer, notes: list[str]
) -> tuple[Any, Any, bool] | None:
    """The output audio stream for ``source``'s first audio stream: ``(input, output, copied)``."""
    stream = source.streams.audio[0]
    name = stream.codec_context.name
    codec = DECODER_CODECS.get(name, name)
    if codec in AUDIO_FITS[kind]:
        return stream, out.add_stream_from_template(stream), True
    target, rate = AUDIO_TRANSCODE[kind]
    output = cast(AudioStream, out.add_stream(target, rate=rate or stream.rate))
    output.layout = stream.layout if target != "libopus" or stream.channels <= 2 else "stereo"
    notes.append(f"audio transcoded from {codec} to {target.removeprefix('lib')}: {kind.upper()} cannot carry {codec}")
    return stream, output, False


def _mux_audio(
    out: av.container.OutputContainer, audio: tuple[Any, Any, bool], source: av.container.InputContainer,
    start: float, end: float,
) -> None:  # fmt: skip
    """The source's audio between ``start`` and ``end`` seconds, moved to begin at 0: copied or re-encoded."""
    stream, output, copied = audio
    with contextlib.suppress(av.error.FFmpegError):
        source.seek(int(start * av.time_base))
    shift = round(start / stream.time_base)
    for packet in source.demux(stream):
        if packet.pts is None:
            continue
        time = float(packet.pts * stream.time_base)
        if time >= end:
            break
        if time < start:
            continue
        if copied:
            packet.pts -= shift
            packet.dts = None if packet.dts is None else packet.dts - shift
            packet.stream = output
            out.mux(packet)
            continue
        for frame in packet.decode():
            frame.pts = None
            out.mux(output.encode(frame))
    if not copied:
        out.mux(output.encode(None))


def _write_container(
    handle: Any, kind: str, frames: Iterator[np.ndarray], fps: Fraction, audio_from: Path | None, start: float,
    notes: list[str],
) -> int:  # fmt: skip
    """Encode ``frames`` into an open file; the number of frames written."""
    first = next(frames)
    frames = _chain(first, frames)
    height, width = first.shape[:2]
    rate = _gif_fps(fps) if kind == "gif" else fps
    if kind == "gif" and rate != fps:
        notes.append(f"GIF keeps frame times in hundredths of a second: {float(fps):g} fps is written as "
                     f"{float(rate):g} fps")  # fmt: skip
    pad = (height % 2, width % 2) if kind == "mp4" else (0, 0)
    if any(pad):
        notes.append(f"H.264 needs even sizes: {width}x{height} is written as {width + pad[1]}x{height + pad[0]}, "
                     "the last column or row repeated")  # fmt: skip
    source = av.open(str(audio_from)) if audio_from is not None and kind in AUDIO_FITS else None
    try:
        with av.open(handle, "w", format=kind) as out:
            codec, pixels, options = {
                "mp4": ("libx264", "yuv420p", {"crf": "18", "preset": "medium"}),
                "webm": ("libvpx-vp9", "yuv420p", {"crf": "30", "b": "0"}),
                "gif": ("gif", "pal8", {}),
            }[kind]
            video = cast(VideoStream, out.add_stream(codec, rate=rate, options=options))
            video.width, video.height, video.pix_fmt = width + pad[1], height + pad[0], pixels
            audio = _add_audio(out, kind, source, notes) if source is not None and source.streams.audio else None
            count = 0
            for frame in frames:
                if any(pad):
                    frame = np.pad(frame, ((0, pad[0]), (0, pad[1]), (0, 0)), mode="edge")
                picture = _palette_frame(frame) if kind == "gif" else av.VideoFrame.from_ndarray(frame, format="rgb24")
                picture.pts = count
                picture.time_base = Fraction(1) / rate
                out.mux(video.encode(picture))
                count += 1
            out.mux(video.encode(None))
            if audio is not None and source is not None:
                _mux_audio(out, audio, source, start, start + float(count / fps))
    finally:
        if source is not None:
            source.close()
    return count


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _write_folder(path: Path, frames: Iterator[np.ndarray], fps: Fraction, overwrite: bool) -> int:
    """PNG frames and ``video.json`` in a folder made beside ``path``, renamed to ``path`` when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        count = 0
        for count, frame in enumerate(frames, 1):
            Image.fromarray(frame).save(partial / f"frame_{count:06d}.png")
        (partial / FOLDER_INFO).write_text(json.dumps({"fps": str(fps), "frames": count}) + "\n")
        if path.exists() and overwrite:
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(partial, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(partial, path)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return count


def write_video(
    path: Path | str,
    frames: Iterable[np.ndarray],
    fps: Fraction | float,
    *,
    audio_from: Path | str | None = None,
    start: float = 0.0,
    overwrite: bool = False,
) -> list[str]:
    """Write ``frames`` (RGB ``uint8``, H x W x 3) at ``fps`` to ``path``, atomically; the notes on what changed.

    The container follows the name (see the module's text).  ``audio_from`` is the source clip whose audio joins the
    output, from ``start`` seconds for as long as the frames last.  Each note (an odd size padded, a GIF's rounded
    frame rate, audio transcoded or dropped) is also logged.  Raises :class:`~painterly.errors.OutputError` if the
    file exists (without ``overwrite``), a frame is not RGB ``uint8`` of the first one's size, or none is given.
    """
    path = Path(path)
    kind = output_kind(path)
    fps = Fraction(fps).limit_denominator(1001 * 1000)
    if fps <= 0:
        raise OutputError(f"output {path}: the frame rate must be positive, not {fps}")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path}: {'folder' if path.is_dir() else 'file'} exists; pass --overwrite to "
                          "replace it")  # fmt: skip
    if kind != "folder" and path.is_dir():
        raise OutputError(f"output {path}: is a folder; give a file name")
    checked = _rgb_frames(frames)
    notes: list[str] = []
    source = Path(audio_from) if audio_from is not None else None
    if source is not None and kind not in AUDIO_FITS and not source.is_dir():
        with _open(source) as container:
            if container.streams.audio:
                notes.append(f"audio dropped: {'a folder of frames' if kind == 'folder' else 'GIF'} has no sound")
    first = next(checked, None)
    if first is None:
        raise OutputError(f"output {path}: no frames to write")
    if kind == "folder":
        _write_folder(path, _chain(first, checked), fps, overwrite)
    else:
        with atomic_open(path) as handle:
            _write_container(handle, kind, _chain(first, checked), fps, source, start, notes)
    for note in notes:
        log.warning(note)
    return notes
