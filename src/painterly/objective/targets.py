"""Style targets kept between jobs: a cache keyed by everything a target depends on, bounded in bytes.

A style's targets (its Gram matrices, or whatever representation its loss prepares) depend only on the style
image as the stage sees it (its pixels after colour control and resizing: the tensor's bytes and shape), the
network that encodes it (weights, layers, pooling, compute dtype, device), and each layer's loss with its
parameters (a mask, a precision flag).  A session that runs many jobs with one artwork (a batch, a web queue,
the frames of a video) encodes it once per stage size.  A loss whose ``prepare`` draws random numbers
(:attr:`~painterly.losses.core.LayerLoss.random_prepare`, e.g. MRF's patch sampling) is looked up under the random
state too, so a cached target is only ever one a fresh run would have made.

The least recently used entries go first once the cache holds more than ``max_bytes``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from painterly.losses.core import LayerLoss
from painterly.nets.base import Encoder

__all__ = ["EncoderTargets", "TargetCache", "target_key", "tensor_digest"]


def tensor_digest(tensor: Tensor) -> str:
    """sha256 of a tensor's values, shape and dtype (what a target computed from it depends on)."""
    data = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tuple(data.shape)}|{data.dtype}".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def _describe(value: object) -> str:
    return f"tensor:{tensor_digest(value)}" if isinstance(value, Tensor) else repr(value)


def target_key(style: Tensor, encoder_key: str, losses: Mapping[str, LayerLoss]) -> str:
    """The cache key of one style's targets at the layers of ``losses`` (``{layer: loss}``), encoded by the
    encoder that ``encoder_key`` names."""
    parts = [tensor_digest(style), str(style.device), encoder_key]
    for layer, loss in losses.items():
        settings = sorted((name, _describe(value)) for name, value in vars(loss).items())
        parts.append(f"{layer}={type(loss).__module__}.{type(loss).__qualname__}{settings}")
    if any(loss.random_prepare for loss in losses.values()):
        parts.append(hashlib.sha256(torch.random.get_rng_state().numpy().tobytes()).hexdigest())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class TargetCache:
    """``{key: {layer: target}}``, least recently used first out beyond ``max_bytes`` (0: keep nothing)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, dict[str, Tensor]] = OrderedDict()
        self.hits = self.misses = 0

    @property
    def bytes(self) -> int:
        return sum(_size(entry) for entry in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_make(self, key: str, make: Callable[[], dict[str, Tensor]]) -> dict[str, Tensor]:
        """The cached targets under ``key``, or ``make()``'s, kept if they fit."""
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        made = make()
        if _size(made) <= self.max_bytes:
            self._entries[key] = made
            while self.bytes > self.max_bytes:
                self._entries.popitem(last=False)
        return made

    def clear(self) -> None:
        self._entries.clear()


def _size(targets: Mapping[str, Tensor] | Sequence[Tensor]) -> int:
    values = targets.values() if isinstance(targets, Mapping) else targets
    return sum(t.numel() * t.element_size() for t in values)


class EncoderTargets:
    """The cache as one encoder's style targets are looked up in it: ``encoder_key`` names the network, weights,
    pooling and device (a session makes it; painterly.session), and the encoder's compute dtype is read at each
    lookup (a run sets it after the encoder is made)."""

    def __init__(self, cache: TargetCache, encoder_key: str, encoder: Encoder) -> None:
        self.cache, self.encoder_key, self.encoder = cache, encoder_key, encoder

    def of(
        self, style: Tensor, losses: Mapping[str, LayerLoss], make: Callable[[], dict[str, Tensor]]
    ) -> dict[str, Tensor]:
        """``make()``'s targets of ``style`` at the layers of ``losses``, or the same made by an earlier job."""
        key = target_key(style, f"{self.encoder_key}|{self.encoder.compute_dtype}", losses)
        return self.cache.get_or_make(key, make)
