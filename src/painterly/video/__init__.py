"""Video: clips in and out (io), optical flow (flow), where the flow is reliable (consistency), warping by a flow
(warp), the temporal term that keeps a stylised clip stable from frame to frame (temporal), and stylising a clip
with it, in one pass or several (clip).

Needs the optional extra: ``pip install 'painterly[video]'`` (PyAV and OpenCV).  Its modules' public names are
re-exported here for users; the modules themselves import each other by module (``painterly.video.<module>``), never
this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.errors import MissingExtraError

try:  # before the modules, so a missing extra is one sentence wherever painterly.video is first imported
    import av  # noqa: F401
    import cv2  # noqa: F401
except ModuleNotFoundError as missing:
    raise MissingExtraError(
        f"painterly's video support needs PyAV and OpenCV ({missing.name} is not installed): "
        "pip install 'painterly[video]'"
    ) from None

from painterly.video.clip import (
    DEFAULT_BLEND_WEIGHT,
    DEFAULT_TEMPORAL_WEIGHT,
    ClipProgress,
    clip_memory_bytes,
    default_temporal_from,
    frame_count,
    frames_kept,
    stylize_clip,
    work_folder,
)
from painterly.video.consistency import (
    DISOCCLUSION_ABSOLUTE,
    DISOCCLUSION_RELATIVE,
    MOTION_BOUNDARY_ABSOLUTE,
    MOTION_BOUNDARY_RELATIVE,
    SMOOTHING_SIGMA,
    ConsistencyParts,
    consistency_mask,
    consistency_parts,
)
from painterly.video.flow import DIS_PRESETS, MIN_FLOW_SIDE, FlowPair, dis_flow, flow_pair, to_grey
from painterly.video.io import (
    DEFAULT_FOLDER_FPS,
    FOLDER_INFO,
    AudioInfo,
    Clip,
    VideoError,
    VideoInfo,
    iter_frames,
    output_kind,
    probe_video,
    read_video,
    write_video,
)
from painterly.video.temporal import (
    LONG_TERM_OFFSETS,
    TemporalLoss,
    earlier_frames,
    long_term_weights,
    temporal_term,
    temporal_value_and_grad,
)
from painterly.video.warp import flow_tensor, sample_grid, warp

__all__ = [
    "DEFAULT_BLEND_WEIGHT",
    "DEFAULT_FOLDER_FPS",
    "DEFAULT_TEMPORAL_WEIGHT",
    "DISOCCLUSION_ABSOLUTE",
    "DISOCCLUSION_RELATIVE",
    "DIS_PRESETS",
    "FOLDER_INFO",
    "LONG_TERM_OFFSETS",
    "MIN_FLOW_SIDE",
    "MOTION_BOUNDARY_ABSOLUTE",
    "MOTION_BOUNDARY_RELATIVE",
    "SMOOTHING_SIGMA",
    "AudioInfo",
    "Clip",
    "ClipProgress",
    "ConsistencyParts",
    "FlowPair",
    "TemporalLoss",
    "VideoError",
    "VideoInfo",
    "clip_memory_bytes",
    "consistency_mask",
    "consistency_parts",
    "default_temporal_from",
    "dis_flow",
    "earlier_frames",
    "flow_pair",
    "flow_tensor",
    "frame_count",
    "frames_kept",
    "iter_frames",
    "long_term_weights",
    "output_kind",
    "probe_video",
    "read_video",
    "sample_grid",
    "stylize_clip",
    "temporal_term",
    "temporal_value_and_grad",
    "to_grey",
    "warp",
    "work_folder",
    "write_video",
]
