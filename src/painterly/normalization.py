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
"""

from __future__ import annotations

from importlib import resources

import torch
from torch import Tensor

from painterly.weights import VGG19_CONV_LAYERS, VGGWeights

__all__ = ["calibration_images", "channel_means", "fold_normalization"]


def calibration_images() -> list[Tensor]:
    """The bundled calibration pictures as 1 x 3 x H x W tensors in [0, 1]."""
    from PIL import Image

    from painterly.images import pil_to_tensor

    folder = resources.files("painterly") / "data" / "calibration"
    images = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".jpg"):
            with entry.open("rb") as handle, Image.open(handle) as picture:
                images.append(pil_to_tensor(picture.convert("RGB")))
    return images


def channel_means(weights: VGGWeights, images: list[Tensor] | None = None) -> dict[str, Tensor]:
    """Mean ReLU activation of every filter of every conv layer over ``images`` and positions."""
    from painterly.encoder import VGGEncoder  # local: the encoder itself folds these means

    images = calibration_images() if images is None else images
    relus = [name.replace("conv", "relu") for name in VGG19_CONV_LAYERS]
    encoder = VGGEncoder(weights, relus, normalize=False)
    sums = {
        name: torch.zeros(weights.state[f"{name}.bias"].shape[0], dtype=torch.float64) for name in VGG19_CONV_LAYERS
    }
    with torch.no_grad():
        for image in images:
            features = encoder(image)
            for conv, relu in zip(VGG19_CONV_LAYERS, relus, strict=True):
                sums[conv] += features[relu].double().mean(dim=(0, 2, 3))
    return {name: (total / len(images)).float() for name, total in sums.items()}


def fold_normalization(
    state: dict[str, Tensor], means: dict[str, Tensor], layers: int = len(VGG19_CONV_LAYERS)
) -> dict[str, Tensor]:
    r"""Rescale conv weights so each ReLU output channel is divided by its mean.

    With :math:`s_l = 1/m_l` (1 for dead filters):
    :math:`W'_l[o, i] = s_l[o]\,W_l[o, i] / s_{l-1}[i]`, :math:`b'_l = s_l b_l`, :math:`s_0 = 1`.
    Only the first ``layers`` convolutions are folded (an encoder truncated early needs no more).
    """
    folded: dict[str, Tensor] = {}
    previous = torch.ones(3)
    for name in VGG19_CONV_LAYERS[:layers]:
        mean = means[name]
        scale = torch.where(mean > 1e-8, 1.0 / mean.clamp_min(1e-8), torch.ones_like(mean))
        weight = state[f"{name}.weight"]
        folded[f"{name}.weight"] = weight * scale.view(-1, 1, 1, 1) / previous.view(1, -1, 1, 1)
        folded[f"{name}.bias"] = state[f"{name}.bias"] * scale
        previous = scale
    return folded
