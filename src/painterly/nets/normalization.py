"""Gatys et al.'s *normalised* VGG-19: every filter's mean activation rescaled to one.

The paper (Methods): "We normalized the network by scaling the weights such that
the mean activation of each convolutional filter over images and positions is
equal to one."  Because ReLU and pooling commute with positive scaling, this is
the same network up to a per-channel factor on every activation, and it can be
folded into the convolution weights at no runtime cost (theory.md §1).  Without
it, the raw Caffe activations of relu4_1 are ~20x those of relu1_1 and its Gram
loss ~10^5 times larger, so one layer would drown the other four.

The means are measured on a small calibration set of photos and paintings
shipped with the package (``painterly/data/calibration``), not ImageNet.

This module measures with whatever encoder it is handed and knows no network: the encoder that folds the
means builds the unnormalised network it measures with (:func:`painterly.nets.encoder.measure_channel_means`), and
the weights' conversion is handed that measurer by its caller, so encoder, weights and this module import one
another in one direction only.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import torch
from torch import Tensor

from painterly.nets.base import Encoder

__all__ = ["calibration_images", "fold_normalization", "mean_activations"]


def calibration_images() -> list[Tensor]:
    """The bundled calibration pictures as 1 x 3 x H x W tensors in [0, 1]."""
    from PIL import Image

    from painterly.io.images import pil_to_tensor

    folder = resources.files("painterly") / "data" / "calibration"
    images = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".jpg"):
            with entry.open("rb") as handle, Image.open(handle) as picture:
                images.append(pil_to_tensor(picture.convert("RGB")))
    return images


def mean_activations(
    encoder: Encoder, images: Sequence[Tensor] | None = None, *, magnitude: bool = False
) -> dict[str, Tensor]:
    """Mean activation of every channel of each of ``encoder``'s layers over ``images`` (default: the calibration
    pictures) and positions: each image's mean over its positions, averaged over the images.

    ``magnitude``: the mean of the activations' absolute values instead, the same for a ReLU's output and the
    measure that still says how large a channel is where a layer can be negative (a linear bottleneck's output,
    :class:`painterly.nets.staged.StagedEncoder`)."""
    images = calibration_images() if images is None else images
    sums: dict[str, Tensor] = {}
    with torch.no_grad():
        for image in images:
            for layer, features in encoder(image).items():
                mean = (features.double().abs() if magnitude else features.double()).mean(dim=(0, 2, 3))
                if layer not in sums:
                    sums[layer] = torch.zeros_like(mean)
                sums[layer] += mean
    return {layer: (total / len(images)).float() for layer, total in sums.items()}


def fold_normalization(state: dict[str, Tensor], means: dict[str, Tensor], convs: Sequence[str]) -> dict[str, Tensor]:
    r"""Rescale conv weights so each ReLU output channel is divided by its mean.

    With :math:`s_l = 1/m_l` (1 for dead filters):
    :math:`W'_l[o, i] = s_l[o]\,W_l[o, i] / s_{l-1}[i]`, :math:`b'_l = s_l b_l`, :math:`s_0 = 1`.
    ``convs`` are the convolutions of a chain in forward order, each feeding the next through ReLU and pooling
    (which commute with positive scaling); only they are folded (an encoder truncated early needs no more).
    """
    folded: dict[str, Tensor] = {}
    previous = torch.ones(3)
    for name in convs:
        mean = means[name]
        scale = torch.where(mean > 1e-8, 1.0 / mean.clamp_min(1e-8), torch.ones_like(mean))
        weight = state[f"{name}.weight"]
        folded[f"{name}.weight"] = weight * scale.view(-1, 1, 1, 1) / previous.view(1, -1, 1, 1)
        folded[f"{name}.bias"] = state[f"{name}.bias"] * scale
        previous = scale
    return folded
