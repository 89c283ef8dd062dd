"""The floor every speed figure in bench/ is measured against: the encoder's bare forward + backward."""

from __future__ import annotations

from collections.abc import Callable

import torch

from painterly.nets.encoder import VGGEncoder


def bare_pass(encoder: VGGEncoder, image: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``encoder`` at ``image`` (which requires grad), as a callable to time.

    The features are taken as computed (bfloat16 under mixed precision, no float32 copies) and a gradient is
    injected at each, made once here: the network's own work and nothing else. (Summing the features instead,
    as rounds 1 and 2 did, adds float32 copies and a broadcast gradient's accumulation.)
    """
    with torch.no_grad():
        injected = [torch.ones_like(f) for f in encoder(image, in_compute_dtype=True).values()]

    def forward_backward() -> None:
        torch.autograd.backward(list(encoder(image, in_compute_dtype=True).values()), injected)

    return forward_backward
