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
  bits of the measurement (thread counts, CPU kernels) do not change the network;
* a filter nearly silent on the calibration pictures is divided by a floor, a tenth of its layer's median mean
  (:data:`SILENT_FILTER_FLOOR`), not by its own mean: He-initialised ReLU filters are often nearly dead (27 of
  conv2_1's 128 below that floor, 138 of conv4_1's 512), and one with a mean of 4e-6 was multiplied 256 000 times;
  on a photo that wakes it (the cat with the Great Wave) its Gram term reached 7e9, and the run ended in noise
  (docs/networks.md).  With the floor that run's style loss falls from 60 to 2.

The weights are generated once (several seconds on a CPU, mostly the calibration pass) and kept in the cache
directory, one file per seed and torch version (torch's random streams are only promised within a version), so
later processes read them in a fraction of a second; an unreadable or unwritable cache only costs that time again.
Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path

import torch

from painterly.io.atomic import atomic_write_bytes
from painterly.nets.encoder import measure_channel_means
from painterly.nets.vgg import VGG19_BLOCKS, VGG19_CONV_LAYERS
from painterly.nets.weights import VGGWeights, cache_dir, weights_digest

__all__ = [
    "RANDOM_VGG19_SEED",
    "SILENT_FILTER_FLOOR",
    "floor_silent_means",
    "generate_random_vgg19_weights",
    "random_vgg19_cache_path",
    "random_vgg19_sha256",
    "random_vgg19_weights",
]

#: A filter's mean activation is taken as at least this fraction of its layer's median mean (see the docstring).
SILENT_FILTER_FLOOR = 0.1

#: The seed of random-vgg19's weights (the arXiv number of He, Wang & Hopcroft's paper, 1606.04801).
RANDOM_VGG19_SEED = 1606


def random_vgg19_cache_path(seed: int = RANDOM_VGG19_SEED) -> Path:
    """Where the generated weights are kept between processes: one file per seed and torch version."""
    return cache_dir() / f"random-vgg19-seed{seed}-torch{torch.__version__}.pt"


@functools.cache
def random_vgg19_weights(seed: int = RANDOM_VGG19_SEED) -> VGGWeights:
    """random-vgg19's weights: read from the cache, else generated (:func:`generate_random_vgg19_weights`) and
    cached (once per process either way).  Another ``seed`` gives another network of the same kind: the
    independent quality judges (bench/judges.py) average over a few seeds that no run optimises with."""
    path = random_vgg19_cache_path(seed)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        return VGGWeights(state=stored["state"], preprocessing="torchvision", source=_source(seed),
                          channel_means=floor_silent_means(stored["means"]))  # fmt: skip
    except Exception:  # missing, damaged, or from a layout of another version: make them again
        pass
    weights = generate_random_vgg19_weights(seed)
    buffer = io.BytesIO()
    torch.save({"state": weights.state, "means": weights.channel_means}, buffer)
    with contextlib.suppress(OSError):  # a read-only cache costs only the time to generate them next time
        atomic_write_bytes(path, buffer.getvalue())
    return weights


def _source(seed: int) -> str:
    return f"random-vgg19 (seed {seed})"


def generate_random_vgg19_weights(seed: int = RANDOM_VGG19_SEED) -> VGGWeights:
    """VGG-19 with He-initialised weights drawn from ``seed`` (:data:`RANDOM_VGG19_SEED` for the network
    ``random-vgg19``), every filter's mean activation on the calibration pictures scaled to one."""
    generator = torch.Generator().manual_seed(seed)
    widths = [width for _, count, width in VGG19_BLOCKS for _ in range(count)]
    state: dict[str, torch.Tensor] = {}
    in_channels = 3
    for name, width in zip(VGG19_CONV_LAYERS, widths, strict=True):
        std = (2.0 / (9 * in_channels)) ** 0.5
        state[f"{name}.weight"] = torch.randn(width, in_channels, 3, 3, generator=generator) * std
        state[f"{name}.bias"] = torch.zeros(width)
        in_channels = width
    raw = VGGWeights(state=state, preprocessing="torchvision", source=_source(seed))
    means = {name: value.to(torch.bfloat16).float() for name, value in measure_channel_means(raw).items()}
    return VGGWeights(state=state, preprocessing="torchvision", source=_source(seed),
                      channel_means=floor_silent_means(means))  # fmt: skip


def floor_silent_means(means: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each layer's means raised to at least :data:`SILENT_FILTER_FLOOR` times the layer's median (idempotent)."""
    return {name: torch.maximum(value, SILENT_FILTER_FLOOR * value.median()) for name, value in means.items()}


@functools.cache
def random_vgg19_sha256() -> str:
    """The sha256 of random-vgg19's weights and channel means (what a picture's provenance records)."""
    return weights_digest(random_vgg19_weights())
