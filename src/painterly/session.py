"""``Session``: a long-lived worker that runs jobs one after another without loading anything twice.

A session holds the device, the weights and encoders it has loaded (a few, least recently used first out), and a
cache of style targets bounded in bytes (:mod:`painterly.objective.targets`).  A batch over a folder, a web page's
queue or the frames of a video run on one session (a Ray actor holds one), so the second job with the same network
starts without reading 80 MB of weights, and the second job with the same artwork without encoding it again.
:func:`painterly.stylize` and :func:`painterly.resume` run on :func:`default_session`.

What a session keeps never changes a result: a job run on a used session computes exactly what it would on a
fresh one (tests/test_session.py), because every cached thing is looked up by everything it depends on.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from painterly.config import ImageInput, RunConfig
from painterly.events import Sink
from painterly.io.checkpoint import Checkpoint
from painterly.nets.base import Encoder, Pooling
from painterly.nets.registry import network as network_named
from painterly.nets.swag import SoftmaxSmoothedEncoder
from painterly.nets.weights import WeightsObject, cached_weights_path, weights_digest
from painterly.objective.targets import EncoderTargets, TargetCache
from painterly.objective.whole import PixelTerm
from painterly.provenance import default_weights_sha256
from painterly.records import StepRecord
from painterly.run import StyleTransferRun, resolve_device

__all__ = ["DEFAULT_TARGET_CACHE_BYTES", "JobEstimate", "Session", "default_session"]

#: Style targets a session keeps: VGG-19's five default Gram matrices of one style take 2.7 MiB per stage size in
#: float32, so this holds a few dozen artworks at every stage of a default run.
DEFAULT_TARGET_CACHE_BYTES = 256 * 2**20
#: Encoders (and the weights under them) a session keeps loaded.
KEPT_ENCODERS = 2

WeightsSource = str | os.PathLike[str] | WeightsObject | None


@dataclass(frozen=True)
class JobEstimate:
    """What a job will be, planned but not run: the result's size and its memory against the device's free memory."""

    shape: tuple[int, int]  #: (width, height) of the result
    peak_bytes: int  #: the estimated peak of its final stage run whole (painterly.plan.memory)
    free_bytes: int | None  #: the device's free memory when planned (None: unknown)


class Session:
    """The device, loaded weights and encoders, and a bounded cache of style targets, shared by the jobs it runs."""

    def __init__(self, device: str = "auto", *, target_cache_bytes: int = DEFAULT_TARGET_CACHE_BYTES) -> None:
        #: where jobs whose config says device "auto" run
        self.device = resolve_device(device)
        self.targets = TargetCache(target_cache_bytes)
        self._weights: OrderedDict[str, WeightsObject] = OrderedDict()
        self._encoders: OrderedDict[tuple[str, str, tuple[str, ...], str, str], Encoder] = OrderedDict()

    def run(
        self,
        content: ImageInput,
        styles: ImageInput | Sequence[ImageInput],
        config: RunConfig,
        *,
        revision: int | None = None,
        tile_plan: Sequence[int | None] | None = None,
        resume_from: Checkpoint | None = None,
        progress: bool = False,
        on_step: Callable[[StepRecord], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        checkpoint_extra: dict[str, Any] | None = None,
        sinks: Sequence[Sink] = (),
        pixel_terms: Sequence[PixelTerm] = (),
    ) -> Image.Image:
        """Run one job (see :func:`painterly.stylize`); ``revision``, ``tile_plan`` and ``resume_from`` as a
        checkpoint gives them; ``pixel_terms`` join every stage's objective (:class:`StyleTransferRun`)."""
        if config.device == "auto" and resolve_device("auto") != self.device:
            config = config.replace(device=str(self.device))
        state: dict[str, Any] = {"tile_plan": tile_plan} | ({} if revision is None else {"revision": revision})
        run = StyleTransferRun(content, styles, config, session=self, pixel_terms=pixel_terms, **state)
        return run.execute(
            progress=progress, on_step=on_step, should_stop=should_stop, resume_from=resume_from,
            extra=checkpoint_extra, sinks=sinks,
        )  # fmt: skip

    def estimate(
        self, content: ImageInput, styles: ImageInput | Sequence[ImageInput], config: RunConfig
    ) -> JobEstimate:
        """Plan a job without running it (loading what it would load, so its run then starts at once): a caller
        that runs many jobs, the frames of a clip, learns their size and adds its own buffers to their memory.
        Refuses, as :meth:`run` would, a job that alone does not fit."""
        if config.device == "auto" and resolve_device("auto") != self.device:
            config = config.replace(device=str(self.device))
        run = StyleTransferRun(content, styles, config, session=self)
        return JobEstimate(run.plan.stages[-1].shape, run.plan.estimated_bytes, run.free_bytes)

    def encoder_for(
        self, weights: WeightsSource, layers: Sequence[str], pooling: Pooling, device: torch.device, *,
        network: str = "vgg19", swag: bool = False,
    ) -> tuple[Encoder, EncoderTargets]:  # fmt: skip
        """An encoder of the network named ``network`` with ``weights`` (None: the network's own) computing
        ``layers`` (loaded once, kept), its features smoothed by SWAG's softmax when ``swag``, and its view of the
        target cache (style targets are kept apart with and without SWAG)."""
        weights_key = f"{network}|{_weights_key(weights, network)}"
        key = (network, weights_key, tuple(dict.fromkeys(layers)), pooling, str(device))
        if key in self._encoders:
            self._encoders.move_to_end(key)
            encoder = self._encoders[key]
        else:
            loaded = self._load(weights, weights_key, network)
            encoder = network_named(network).build(loaded, key[2], pooling=pooling).to(device)
            self._encoders[key] = encoder
            while len(self._encoders) > KEPT_ENCODERS:
                self._encoders.popitem(last=False)
        if swag:
            smoothed = SoftmaxSmoothedEncoder(encoder)
            return smoothed, EncoderTargets(self.targets, f"{weights_key}|{pooling}|{device}|swag", smoothed)
        return encoder, EncoderTargets(self.targets, f"{weights_key}|{pooling}|{device}", encoder)

    def _load(self, weights: WeightsSource, key: str, network: str) -> WeightsObject:
        if isinstance(weights, WeightsObject):
            return weights
        if key not in self._weights:
            path = None if weights is None else os.fspath(weights)
            self._weights[key] = network_named(network).weights_from(path)
            while len(self._weights) > KEPT_ENCODERS:
                self._weights.popitem(last=False)
        self._weights.move_to_end(key)
        return self._weights[key]

    def close(self) -> None:
        """Let go of everything loaded and cached (the session can still run jobs; it loads them again)."""
        self._encoders.clear()
        self._weights.clear()
        self.targets.clear()


def _weights_key(weights: WeightsSource, network: str = "vgg19") -> str:
    """What identifies weights: the default's recorded sha256 (generated weights: the seed, fixed in the code), a
    file's path, size and modification time (a changed file is loaded again), or an in-memory object's values."""
    if isinstance(weights, WeightsObject):
        return f"object:{getattr(weights, 'preprocessing', network)}:{weights_digest(weights)}"
    if weights is None and network_named(network).weights.generate is not None:
        return "generated"
    if weights is None and network != "vgg19":  # a fetched network's file is known by the digest recorded with it
        return f"default:{default_weights_sha256(network)}"
    if weights is None:
        path = cached_weights_path()
        stamp = f"{path.stat().st_mtime_ns}" if path.exists() else "not fetched"
        return f"default:{default_weights_sha256()}:{stamp}"
    path = Path(weights)
    if not path.is_file():
        return f"file:{path}:missing"  # loading it says so in one sentence
    stat = path.stat()
    return f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


_default: Session | None = None


def default_session() -> Session:
    """The session :func:`painterly.stylize` and :func:`painterly.resume` run on (made on first use)."""
    global _default
    if _default is None:
        _default = Session()
    return _default
