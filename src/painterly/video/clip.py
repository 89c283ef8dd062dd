"""Stylising a clip frame by frame, each frame after the first held to the earlier results by the temporal term.

Why this shape (Ruder, Dosovitskiy & Brox 2016, single pass): frame ``i`` starts from the previous result warped
onto it by the optical flow (computed on the input frames at the result's size), and its objective gains the
temporal term against the results of frames ``i - 1``, ``i - 2`` and ``i - 4`` warped the same way, weighted by
the consistency masks (long-term weights).  Each frame is one job of a :class:`~painterly.session.Session`, so the
encoder and the style targets are made once for the whole clip.

Resumable: every finished frame is written (as an 8-bit PNG, atomically) into a work folder beside the output with
the settings that made it; the next frame is computed from those files, so a run stopped by Ctrl-C or a crash and
started again with the same command continues at the next frame and gives the same frames as an uninterrupted run.
The folder is removed once the clip is written.  The multi-pass variant is not offered yet.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from painterly.config import RunConfig
from painterly.errors import OutputError
from painterly.io.atomic import atomic_write_bytes, atomic_write_with
from painterly.io.checkpoint import file_sha256
from painterly.session import Session
from painterly.video.consistency import consistency_mask
from painterly.video.flow import Preset, dis_flow
from painterly.video.io import iter_frames, output_kind, probe_video, write_video
from painterly.video.temporal import LONG_TERM_OFFSETS, earlier_frames, long_term_weights, temporal_term
from painterly.video.warp import warp

__all__ = ["DEFAULT_TEMPORAL_WEIGHT", "ClipProgress", "frame_count", "stylize_clip", "work_folder"]

log = logging.getLogger("painterly")

#: The temporal term's weight by default.  Not yet tuned: the benchmark of issue 22 is to sweep it against the
#: warping error and the style loss; until then it is a value under which the term visibly steadies a clip.
DEFAULT_TEMPORAL_WEIGHT = 100.0

#: Called after each frame with (frames done, frames in all or None, whether this one was kept from before).
ClipProgress = Callable[[int, int | None, bool], None]


def work_folder(output: Path) -> Path:
    """Where the finished frames of a clip being stylised to ``output`` are kept until the clip is written."""
    return output.with_name(f"{output.name}.frames")


def frame_count(clip: Path, start: float, max_frames: int | None) -> int | None:
    """How many frames a run will stylise, where the clip says how many it has (None where it does not)."""
    info = probe_video(clip)
    if info.frames is None:
        return max_frames
    left = max(0, info.frames - round(start * info.fps))
    return left if max_frames is None else min(left, max_frames)


def _to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    array = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else image
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).unsqueeze(0).float() / 255


def _to_picture(tensor: torch.Tensor) -> Image.Image:
    array = (tensor[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array, "RGB")


def _save_png(path: Path, image: torch.Tensor) -> None:
    picture = _to_picture(image)
    atomic_write_with(path, lambda handle: picture.save(handle, format="PNG"))


def _settings(clip: Path, styles: Sequence[Path], config: RunConfig, **more: object) -> str:
    """What makes the frames what they are, as JSON: a work folder made under other settings is not reused."""
    record = {
        "clip": file_sha256(clip) if clip.is_file() else str(clip.resolve()),
        "styles": [file_sha256(style) for style in styles],
        "config": json.loads(config.to_json()),
        **more,
    }
    return json.dumps(record, sort_keys=True, default=str)


def _prepare_folder(folder: Path, settings: str, overwrite: bool) -> None:
    record = folder / "settings.json"
    if folder.exists():
        same = record.is_file() and record.read_text() == settings
        if not same and not overwrite:
            raise OutputError(
                f"work folder {folder}: holds frames made with other settings; pass --overwrite to start afresh"
            )
        if not same:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not record.is_file():
        atomic_write_bytes(record, settings.encode())


def _frame_file(folder: Path, index: int) -> Path:
    return folder / f"frame_{index + 1:06d}.png"


def _check_disk(folder: Path, frames: int | None, width: int, height: int) -> None:
    """Refuse before the first frame if the frames (PNG, at most their raw size) and the clip would not fit."""
    if frames is None:
        return
    needed = 2 * frames * width * height * 3
    free = shutil.disk_usage(folder.parent if folder.parent.exists() else Path(".")).free
    if needed > free:
        raise OutputError(f"output {folder.parent}: the clip needs up to {needed / 1e9:.1f} GB of disk for its "
                          f"frames, and {free / 1e9:.1f} GB are free")  # fmt: skip


def stylize_clip(
    clip: Path | str,
    styles: Sequence[Path | str],
    output: Path | str,
    *,
    config: RunConfig | None = None,
    session: Session | None = None,
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
    start: float = 0.0,
    max_frames: int | None = None,
    flow_preset: Preset = "medium",
    overwrite: bool = False,
    should_stop: Callable[[], bool] | None = None,
    on_frame: ClipProgress | None = None,
) -> list[str]:
    """Stylise ``clip`` (a video file or a folder of frames) in the style of ``styles`` and write it to ``output``.

    Each frame is a job of ``config`` (``size`` is the result's long side); frames after the first start from the
    warped previous result under the temporal term of weight ``temporal_weight`` (0: frames are independent but
    still start from the warped previous result).  ``start`` and ``max_frames`` choose a piece of the clip.
    Finished frames are kept in :func:`work_folder` (``output`` + ``.frames``) until the clip is written, so the
    same call after a stop or crash continues at the next frame.  ``should_stop`` is handed to each frame's job
    (a stop raises :class:`painterly.run.Interrupted` after the frames done so far are kept).  Returns the notes of
    the written clip (audio, sizes).
    """
    clip, output = Path(clip), Path(output)
    style_paths = [Path(style) for style in styles]
    config = config or RunConfig()
    session = session or Session(config.device)
    output_kind(output)
    if output.exists() and not overwrite:
        raise OutputError(f"output {output}: exists; pass --overwrite to replace it")
    info = probe_video(clip)
    count = frame_count(clip, start, max_frames)
    folder = work_folder(output)
    settings = _settings(clip, style_paths, config, temporal_weight=temporal_weight, start=start,
                         max_frames=max_frames, flow_preset=flow_preset)  # fmt: skip
    _check_disk(folder, count, info.width, info.height)
    _prepare_folder(folder, settings, overwrite)
    inputs: dict[int, np.ndarray] = {}  # input frames at the result's size, the last few
    results: dict[int, torch.Tensor] = {}  # finished frames (as their files hold them), the last few
    done = 0
    for index, frame in enumerate(iter_frames(clip, start=start, max_frames=max_frames)):
        path = _frame_file(folder, index)
        kept = path.is_file()
        if kept:
            with Image.open(path) as finished:
                result = _to_tensor(finished)
        else:
            result = _stylize_frame(index, frame, style_paths, config, session, inputs, results, temporal_weight,
                                    folder, flow_preset, should_stop)  # fmt: skip
            _save_png(path, result)
            result = _to_tensor(_to_picture(result))  # what the file holds: a resumed run reads the same
        height, width = result.shape[-2:]
        inputs[index] = np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS))
        results[index] = result
        for old in [i for i in results if i < index + 1 - max(LONG_TERM_OFFSETS)]:  # what the next frame needs
            del results[old], inputs[old]
        done += 1
        if on_frame is not None:
            on_frame(done, count, kept)
    frames = (np.asarray(Image.open(_frame_file(folder, i)).convert("RGB")) for i in range(done))
    notes = write_video(output, frames, info.fps, audio_from=clip if clip.is_file() else None, start=start,
                        overwrite=overwrite)  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    return notes


def _stylize_frame(
    index: int, frame: np.ndarray, styles: Sequence[Path], config: RunConfig, session: Session,
    inputs: dict[int, np.ndarray], results: dict[int, torch.Tensor], temporal_weight: float, folder: Path,
    flow_preset: Preset, should_stop: Callable[[], bool] | None,
) -> torch.Tensor:  # fmt: skip
    """One frame's job: alone for the first, else from the warped previous result under the temporal term."""
    content = Image.fromarray(frame)
    if index == 0:
        return _to_tensor(session.run(content, [str(s) for s in styles], config, should_stop=should_stop))
    previous = results[index - 1]
    height, width = previous.shape[-2:]
    here = np.asarray(content.resize((width, height), Image.Resampling.LANCZOS))
    warped, masks = [], []
    for earlier in earlier_frames(index):
        if earlier not in results:
            continue
        back = dis_flow(here, inputs[earlier], flow_preset)  # this frame's grid -> the earlier frame
        forth = dis_flow(inputs[earlier], here, flow_preset)
        masks.append(consistency_mask(back, forth))
        warped.append(warp(results[earlier], back))
    start_file = folder / f"start_{index + 1:06d}.png"
    _save_png(start_file, warped[0])
    terms = [temporal_term(temporal_weight, warped, long_term_weights(masks))] if temporal_weight else []
    try:
        image = session.run(content, [str(s) for s in styles], config.replace(init=str(start_file)),
                            should_stop=should_stop, pixel_terms=terms)  # fmt: skip
    finally:
        start_file.unlink(missing_ok=True)
    return _to_tensor(image)
