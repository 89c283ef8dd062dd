"""``random-vgg19``: VGG-19's topology with seeded random weights, no download (He, Wang & Hopcroft, NeurIPS 2016).

He, Wang & Hopcroft (arXiv 1606.04801) found that a VGG architecture with *random* weights transfers style
"highly competitive" with the pretrained one, provided the weights are scaled so the activations keep their
magnitude from layer to layer (Gatys et al. had reported random weights failing without it).  Here:

* every convolution's weights are drawn from He et al. 2015's normal distribution (standard deviation
  :math:`\\sqrt{2 / (9 c_{in})}`, which keeps a ReLU network's activation variance through the layers), biases 0,
  from one :class:`torch.Generator` seeded with :data:`RANDOM_VGG19_SEED`; the input convention is torchvision's
  (RGB, normalised by ImageNet's mean and standard deviation), so the input is about zero-mean, unit-variance;
* each filter's mean ReLU activation is then measured on the bundled calibration pictures and folded into the
  weights exactly as for the pretrained VGG-19 (:mod:`painterly.nets.normalization`), so every filter's mean
  activation over those pictures is one at every layer: the same balance between the layers' losses as the
  pretrained network's.  The means are rounded to bfloat16 (8 significant bits) before they are kept, so the last
  bits of the measurement (thread counts, CPU kernels) do not change the network.

The weights are generated on first use in a process (a few seconds on a CPU: one pass of the calibration
pictures) and kept for the rest of it; nothing is downloaded or written.
"""

from __future__ import annotations

import functools
import hashlib

import torch

from painterly.nets.encoder import measure_channel_means
from painterly.nets.vgg import VGG19_BLOCKS, VGG19_CONV_LAYERS
from painterly.nets.weights import MEAN_PREFIX, VGGWeights

__all__ = ["RANDOM_VGG19_SEED", "random_vgg19_sha256", "random_vgg19_weights"]

#: The seed of random-vgg19's weights (the arXiv number of He, Wang & Hopcroft's paper, 1606.04801).
RANDOM_VGG19_SEED = 1606


@functools.cache
def random_vgg19_weights() -> VGGWeights:
    """VGG-19 with He-initialised weights drawn from :data:`RANDOM_VGG19_SEED`, every filter's mean activation on the
    calibration pictures scaled to one (generated once per process)."""
    generator = torch.Generator().manual_seed(RANDOM_VGG19_SEED)
    widths = [width for _, count, width in VGG19_BLOCKS for _ in range(count)]
    state: dict[str, torch.Tensor] = {}
    in_channels = 3
    for name, width in zip(VGG19_CONV_LAYERS, widths, strict=True):
        std = (2.0 / (9 * in_channels)) ** 0.5
        state[f"{name}.weight"] = torch.randn(width, in_channels, 3, 3, generator=generator) * std
        state[f"{name}.bias"] = torch.zeros(width)
        in_channels = width
    source = f"random-vgg19 (seed {RANDOM_VGG19_SEED})"
    raw = VGGWeights(state=state, preprocessing="torchvision", source=source)
    means = {name: value.to(torch.bfloat16).float() for name, value in measure_channel_means(raw).items()}
    return VGGWeights(state=state, preprocessing="torchvision", source=source, channel_means=means)


@functools.cache
def random_vgg19_sha256() -> str:
    """The sha256 of random-vgg19's weights and channel means (what a picture's provenance records)."""
    weights = random_vgg19_weights()
    digest = hashlib.sha256()
    tensors = {**weights.state, **{f"{MEAN_PREFIX}{k}": v for k, v in (weights.channel_means or {}).items()}}
    for name, tensor in sorted(tensors.items()):
        digest.update(name.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()
