"""Stylising a clip frame by frame, each frame held to its neighbours' results by the temporal term.

Why this shape (Ruder, Dosovitskiy & Brox 2016): stylising each frame alone lands each in a different local optimum
and the clip flickers.  Two ways of tying frames together are offered:

- **Single pass** (``passes=1``): frame ``i`` starts from the previous result warped onto it by the optical flow
  (computed on the input frames at the result's size), and its objective gains the temporal term against the
  results of frames ``i - 1``, ``i - 2`` and ``i - 4`` warped the same way, weighted by the consistency masks
  (long-term weights).
- **Multi-pass** (``passes=N``, the paper's ``artistic_video_multiPass.lua``): the first pass stylises every frame
  on its own; the passes after it run through the clip in alternating directions, and each frame starts from its
  own result of the previous pass blended with the neighbour just finished in this pass, warped onto it, where the
  flow is reliable: ``x' = δ c ω + (1 - δ c) x_prev`` (δ the blend weight, 1, and 0 on the last pass; c the
  consistency mask; ω the warped neighbour).  From pass :func:`default_temporal_from` on, the temporal term
  against that warped neighbour joins the objective.  Errors made early in the clip thus spread both ways instead
  of only forward.

Each frame is one job of a :class:`~painterly.session.Session`, so the encoder and the style targets are made once
for the whole clip.  Before the first frame the whole clip's memory is estimated (:func:`clip_memory_bytes`) and a
clip that would not fit is refused in one sentence.

Resumable: every finished frame is written (as an 8-bit PNG, atomically) into a work folder beside the output with
the settings that made it (multi-pass: one folder per pass, the one before the current kept until the current is
complete); the next frame is computed from those files, so a run stopped by Ctrl-C or a crash and started again
with the same command continues at the next frame and gives the same frames as an uninterrupted run.  A frame
stopped by Ctrl-C part way writes its run's checkpoint (painterly.io.checkpoint) and continues from it.  The folder
is removed once the clip is written.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from painterly.config import RunConfig
from painterly.errors import OptionError, OutputError
from painterly.io.atomic import atomic_write_bytes, atomic_write_with
from painterly.io.checkpoint import CheckpointError, file_sha256, load_checkpoint
from painterly.objective.whole import PixelTerm
from painterly.session import JobEstimate, Session
from painterly.video.consistency import consistency_mask
from painterly.video.flow import Preset, dis_flow
from painterly.video.io import iter_frames, output_kind, probe_video, write_video
from painterly.video.temporal import LONG_TERM_OFFSETS, earlier_frames, long_term_weights, temporal_term
from painterly.video.warp import warp

__all__ = [
    "DEFAULT_BLEND_WEIGHT",
    "DEFAULT_TEMPORAL_WEIGHT",
    "ClipProgress",
    "clip_memory_bytes",
    "default_temporal_from",
    "frame_count",
    "frames_kept",
    "stylize_clip",
    "work_folder",
]

log = logging.getLogger("painterly")

#: The temporal term's weight by default, from bench/video.py's sweep (docs/video.md): on its pan, weights up to 100
#: steadied the clip no more than the warped start alone (weight 0), 1000 halved the warping error again (12x below
#: frames stylised alone, 22x below frames given 3x the steps) at a style loss within 7 % of the better of those
#: baselines, and 10000 cost 66 % in style loss; on the real clip 1000 cut the error 25x.
DEFAULT_TEMPORAL_WEIGHT = 1000.0
#: Multi-pass: how much of the warped neighbour a frame starts from where the flow is reliable (the paper's
#: ``blendWeight``); the last pass uses 0, so it refines each frame from its own previous result.
DEFAULT_BLEND_WEIGHT = 1.0
#: The paper's multi-pass schedule: 15 passes, the temporal term from pass 8 on (it scales with ``passes`` here).
PAPER_PASSES, PAPER_TEMPORAL_FROM = 15, 8

#: Called after each frame with (frames done, frames in all or None, whether this one was kept from before); in
#: multi-pass mode a frame counts once per pass.
ClipProgress = Callable[[int, int | None, bool], None]


def work_folder(output: Path) -> Path:
    """Where the finished frames of a clip being stylised to ``output`` are kept until the clip is written."""
    return output.with_name(f"{output.name}.frames")


def default_temporal_from(passes: int) -> int:
    """The first pass (1-based) with the temporal term: the paper's 8 of 15, scaled (8 passes: 5; 2 passes: 2)."""
    return max(2, math.ceil(passes * PAPER_TEMPORAL_FROM / PAPER_PASSES))


def frame_count(clip: Path, start: float, max_frames: int | None) -> int | None:
    """How many frames a run will stylise, where the clip says how many it has (None where it does not)."""
    info = probe_video(clip)
    if info.frames is None:
        return max_frames
    left = max(0, info.frames - round(start * info.fps))
    return left if max_frames is None else min(left, max_frames)


def _pass_folder(folder: Path, index: int) -> Path:
    return folder / f"pass_{index + 1:02d}"


def frames_kept(output: Path | str, *, passes: int = 1, frames: int | None = None) -> int:
    """Frames (counted once per pass) already finished in ``output``'s work folder: where a continued run's progress
    starts.  Multi-pass needs ``frames``, the clip's frame count, to count the passes whose folders are gone."""
    folder = work_folder(Path(output))
    if passes == 1:
        return len(list(folder.glob("frame_*.png")))
    present = sorted(int(p.name[5:]) for p in folder.glob("pass_*") if p.is_dir() and p.name[5:].isdigit())
    if not present or frames is None:
        return 0
    return (present[0] - 1) * frames + sum(len(list((folder / f"pass_{p:02d}").glob("frame_*.png"))) for p in present)


def _to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    array = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else image
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).unsqueeze(0).float() / 255


def _to_picture(tensor: torch.Tensor) -> Image.Image:
    array = (tensor[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array, "RGB")


def _save_png(path: Path, image: torch.Tensor | Image.Image) -> None:
    picture = image if isinstance(image, Image.Image) else _to_picture(image)
    atomic_write_with(path, lambda handle: picture.save(handle, format="PNG"))


def _read_png(path: Path) -> torch.Tensor:
    with Image.open(path) as finished:
        return _to_tensor(finished)


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


def _check_disk(folder: Path, frames: int | None, width: int, height: int, passes: int) -> None:
    """Refuse before the first frame if the frames (PNG, at most their raw size; multi-pass keeps two passes) and
    the clip would not fit."""
    if frames is None:
        return
    needed = (2 if passes == 1 else 3) * frames * width * height * 3
    free = shutil.disk_usage(folder.parent if folder.parent.exists() else Path(".")).free
    if needed > free:
        raise OutputError(f"output {folder.parent}: the clip needs up to {needed / 1e9:.1f} GB of disk for its "
                          f"frames, and {free / 1e9:.1f} GB are free")  # fmt: skip


def clip_memory_bytes(
    frame_bytes: int, width: int, height: int, *, frames: int | None, passes: int, source_pixels: int
) -> int:
    """The whole clip's peak memory: one frame's run (``frame_bytes``, painterly.plan's estimate) plus what the clip
    keeps beside it, at the result's ``width`` x ``height``.

    Single pass: the last 5 input frames (uint8) and results (float32), and per frame three flows each way (float32,
    2 values a pixel), three masks and three warped results (the long-term terms).  Multi-pass: every input frame at
    the result's size (uint8; passes run both ways), one flow pair, one mask, the warped neighbour, the previous
    pass's frame and the blended start.  Both: the decoded source frame and its RGB copy (``source_pixels`` x 3
    bytes each).
    """
    pixels = width * height
    window = max(LONG_TERM_OFFSETS) + 1
    if passes == 1:
        kept = window * pixels * 3 + window * pixels * 3 * 4
        per_frame = len(LONG_TERM_OFFSETS) * (2 * pixels * 2 * 4 + pixels * 4 + pixels * 3 * 4)
    else:
        kept = (frames or 0) * pixels * 3
        per_frame = 2 * pixels * 2 * 4 + pixels * 4 + 3 * pixels * 3 * 4
    return int(frame_bytes + kept + per_frame + 2 * source_pixels * 3)


def _plan_frames(
    first: np.ndarray, styles: Sequence[Path], config: RunConfig, session: Session, frames: int | None, passes: int
) -> tuple[int, int]:
    """The frames' result size (width, height), from the first frame's planned run; and, before any frame runs, a
    refusal in one sentence of a clip whose estimated peak exceeds the free memory.

    A frame's own estimate comes from the run's plan (planning the first frame's run refuses a frame that alone is
    too large, with the size that fits); the clip's buffers are added to it here.
    """
    planned: JobEstimate = session.estimate(Image.fromarray(first), [str(s) for s in styles], config)
    width, height = planned.shape
    needed = clip_memory_bytes(planned.peak_bytes, width, height, frames=frames, passes=passes,
                               source_pixels=first.shape[0] * first.shape[1])  # fmt: skip
    free = planned.free_bytes
    if config.check_memory and free is not None and needed > free:
        count = f"{frames} frames" if frames is not None else "the clip"
        raise OptionError(f"{count} at {width}x{height} in {passes} pass{'es' if passes > 1 else ''} need about "
                          f"{needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free; use a smaller --size, "
                          "fewer --max-frames, or pass --no-check-memory to try anyway")  # fmt: skip
    return width, height


def _run_frame(
    session: Session, content: np.ndarray, styles: Sequence[Path], config: RunConfig, *, folder: Path, tag: str,
    start: torch.Tensor | None, terms: Sequence[PixelTerm], should_stop: Callable[[], bool] | None,
) -> torch.Tensor:  # fmt: skip
    """One frame's job, resumable within the frame: its content and start are written beside a checkpoint path, so
    a stop part way saves the run's checkpoint and the next call continues from it (the same terms are rebuilt
    from the kept frames).  The job's files are removed once the frame is done."""
    content_file, start_file = folder / f"job_{tag}_content.png", folder / f"job_{tag}_start.png"
    checkpoint_file = folder / f"job_{tag}.ckpt"
    if not content_file.is_file():
        _save_png(content_file, Image.fromarray(content))
    if start is not None and not start_file.is_file():
        _save_png(start_file, start)
    job = config.replace(init=str(start_file) if start is not None else config.init,
                         checkpoint=str(checkpoint_file), checkpoint_every=0)  # fmt: skip
    resume = None
    if checkpoint_file.is_file():
        try:
            resume = load_checkpoint(checkpoint_file)
        except CheckpointError as error:  # a damaged or stale checkpoint costs only this frame's steps
            log.warning(f"{error}; the frame starts afresh")
    revision = None if resume is None else resume.config.get("revision")
    tile_plan = None if resume is None else resume.config.get("tile_plan")
    image = session.run(str(content_file), [str(s) for s in styles], job, revision=revision, tile_plan=tile_plan,
                        resume_from=resume, should_stop=should_stop, pixel_terms=terms)  # fmt: skip
    for leftover in (content_file, start_file, checkpoint_file):
        leftover.unlink(missing_ok=True)
    return _to_tensor(image)


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
    passes: int = 1,
    steps_per_pass: int | None = None,
    blend_weight: float = DEFAULT_BLEND_WEIGHT,
    temporal_from: int | None = None,
    overwrite: bool = False,
    should_stop: Callable[[], bool] | None = None,
    on_frame: ClipProgress | None = None,
) -> list[str]:
    """Stylise ``clip`` (a video file or a folder of frames) in the style of ``styles`` and write it to ``output``.

    Each frame is a job of ``config`` (``size`` is the result's long side).  With ``passes=1`` (single pass) frames
    after the first start from the warped previous result under the temporal term of weight ``temporal_weight``
    (0: no term, but still the warped start).  With ``passes > 1`` (multi-pass) every pass runs ``steps_per_pass``
    steps a frame (None: ``config.iterations``), alternating direction, each frame starting from its previous-pass
    result blended with the warped neighbour (``blend_weight``), with the temporal term from pass ``temporal_from``
    on (None: :func:`default_temporal_from`).  ``start`` and ``max_frames`` choose a piece of the clip.  Finished
    frames are kept in :func:`work_folder` (``output`` + ``.frames``) until the clip is written, so the same call
    after a stop or crash continues at the next frame.  ``should_stop`` is handed to each frame's job (a stop
    raises :class:`painterly.run.Interrupted` after the frames done so far are kept).  Returns the notes of the
    written clip (audio, sizes).
    """
    clip, output = Path(clip), Path(output)
    style_paths = [Path(style) for style in styles]
    config = config or RunConfig()
    session = session or Session(config.device)
    if passes < 1 or (steps_per_pass is not None and steps_per_pass < 1):
        raise OptionError(f"passes and steps per pass must be 1 or more, not {passes} and {steps_per_pass}")
    if temporal_weight < 0 or not 0 <= blend_weight <= 1:
        raise OptionError(f"the temporal weight must be 0 or more ({temporal_weight}) and the blend weight within "
                          f"0..1 ({blend_weight})")  # fmt: skip
    output_kind(output)
    if output.exists() and not overwrite:
        raise OutputError(f"output {output}: exists; pass --overwrite to replace it")
    info = probe_video(clip)
    count = frame_count(clip, start, max_frames)
    folder = work_folder(output)
    multi = {} if passes == 1 else {"passes": passes, "steps_per_pass": steps_per_pass, "blend_weight": blend_weight,
                                    "temporal_from": temporal_from}  # fmt: skip
    settings = _settings(clip, style_paths, config, temporal_weight=temporal_weight, start=start,
                         max_frames=max_frames, flow_preset=flow_preset, **multi)  # fmt: skip
    _check_disk(folder, count, info.width, info.height, passes)
    _prepare_folder(folder, settings, overwrite)
    frames = iter_frames(clip, start=start, max_frames=max_frames)
    if passes == 1:
        done = _single_pass(frames, style_paths, config, session, folder, count, temporal_weight, flow_preset,
                            should_stop, on_frame)  # fmt: skip
        finished = (_frame_file(folder, i) for i in range(done))
    else:
        steps = config.iterations if steps_per_pass is None else steps_per_pass
        done = _multi_pass(list(frames), style_paths, config.replace(iterations=steps), session, folder, passes,
                           blend_weight, temporal_from or default_temporal_from(passes), temporal_weight,
                           flow_preset, should_stop, on_frame)  # fmt: skip
        finished = (_frame_file(_pass_folder(folder, passes - 1), i) for i in range(done))
    pictures = (np.asarray(Image.open(path).convert("RGB")) for path in finished)
    notes = write_video(output, pictures, info.fps, audio_from=clip if clip.is_file() else None, start=start,
                        overwrite=overwrite)  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    return notes


def _resized(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A frame at the result's size: what each frame's run is given as content, and what the flow is computed on."""
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS))


def _single_pass(
    frames: Iterable[np.ndarray], styles: Sequence[Path], config: RunConfig, session: Session, folder: Path,
    count: int | None, temporal_weight: float, flow_preset: Preset, should_stop: Callable[[], bool] | None,
    on_frame: ClipProgress | None,
) -> int:  # fmt: skip
    """The single-pass loop; returns the number of frames done."""
    inputs: dict[int, np.ndarray] = {}  # input frames at the result's size, the last few
    results: dict[int, torch.Tensor] = {}  # finished frames (as their files hold them), the last few
    done, width, height = 0, 0, 0
    for index, frame in enumerate(frames):
        if index == 0:
            width, height = _plan_frames(frame, styles, config, session, count, 1)
        path = _frame_file(folder, index)
        kept = path.is_file()
        here = _resized(frame, width, height)
        if not kept:
            start, terms = None, []
            if index > 0:
                warped, masks = [], []
                for earlier in earlier_frames(index):
                    if earlier not in results:
                        continue
                    back = dis_flow(here, inputs[earlier], flow_preset)  # this frame's grid -> the earlier frame
                    forth = dis_flow(inputs[earlier], here, flow_preset)
                    masks.append(consistency_mask(back, forth))
                    warped.append(warp(results[earlier], back))
                start = warped[0]
                if temporal_weight:
                    terms = [temporal_term(temporal_weight, warped, long_term_weights(masks))]
            result = _run_frame(session, here, styles, config, folder=folder, tag=f"{index + 1:06d}", start=start,
                                terms=terms, should_stop=should_stop)  # fmt: skip
            _save_png(path, result)
        results[index] = _read_png(path)  # what the file holds: a resumed run reads the same
        inputs[index] = here
        for old in [i for i in results if i < index + 1 - max(LONG_TERM_OFFSETS)]:  # what the next frame needs
            del results[old], inputs[old]
        done += 1
        if on_frame is not None:
            on_frame(done, count, kept)
    return done


def _multi_pass(
    frames: list[np.ndarray], styles: Sequence[Path], config: RunConfig, session: Session, folder: Path,
    passes: int, blend_weight: float, temporal_from: int, temporal_weight: float, flow_preset: Preset,
    should_stop: Callable[[], bool] | None, on_frame: ClipProgress | None,
) -> int:  # fmt: skip
    """The multi-pass loop (see the module's docstring); returns the number of frames."""
    count = len(frames)
    if count == 0:
        return 0
    width, height = _plan_frames(frames[0], styles, config, session, count, passes)
    present = sorted(int(p.name[5:]) - 1 for p in folder.glob("pass_*") if p.name[5:].isdigit())
    inputs = [_resized(frame, width, height) for frame in frames]
    del frames  # the frames at the result's size are all the passes need
    # Passes before the first kept folder are complete (a pass's folder goes once the next one is complete), and
    # the pass after a partial one cannot have begun: continue at the first kept pass, skipping its kept frames.
    first = present[0] if present else 0
    done = first * count
    for index in range(first, passes):
        here_folder, before = _pass_folder(folder, index), _pass_folder(folder, index - 1)
        here_folder.mkdir(exist_ok=True)
        order = range(count) if index % 2 == 0 else range(count - 1, -1, -1)
        neighbour: tuple[int, torch.Tensor] | None = None  # the frame finished just before in this pass
        blend = 0.0 if index == passes - 1 else blend_weight
        for frame_index in order:
            path = _frame_file(here_folder, frame_index)
            kept = path.is_file()
            if not kept:
                start, terms = None, []
                if index > 0:
                    start = _read_png(_frame_file(before, frame_index))
                    if neighbour is not None:
                        other, result = neighbour
                        back = dis_flow(inputs[frame_index], inputs[other], flow_preset)
                        forth = dis_flow(inputs[other], inputs[frame_index], flow_preset)
                        mask = consistency_mask(back, forth)
                        warped = warp(result, back)
                        start = blend * mask * warped + (1 - blend * mask) * start
                        if index + 1 >= temporal_from and temporal_weight:
                            terms = [temporal_term(temporal_weight, [warped], [mask])]
                result = _run_frame(session, inputs[frame_index], styles, config, folder=folder,
                                    tag=f"p{index + 1:02d}_{frame_index + 1:06d}", start=start, terms=terms,
                                    should_stop=should_stop)  # fmt: skip
                _save_png(path, result)
            neighbour = (frame_index, _read_png(path))
            done += 1
            if on_frame is not None:
                on_frame(done, passes * count, kept)
        if index > 0:
            shutil.rmtree(before, ignore_errors=True)  # this pass is complete: the one before is no longer needed
    return count
