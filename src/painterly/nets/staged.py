"""An encoder for any network that is a chain of stages, each stage's output an addressable layer.

VGG-19 has its own encoder (:class:`painterly.nets.encoder.VGGEncoder`), which folds Gatys et al.'s normalisation
into its convolutions.  Every other network (EfficientNet-Lite0, the torchvision-layout networks, the random
multi-scale layer) is described as a chain of ``(LayerInfo, module)`` stages: the module maps the previous stage's
output to this one's, however it branches inside (an inception block, a residual block), and the
:class:`~painterly.nets.base.LayerInfo` says where its positions sit and how far they see.  This encoder runs the
chain only through the deepest requested layer and hands out the requested stages' outputs.

Balance between layers: a network whose activations cannot be rescaled inside (batch normalisation, residual sums,
negative linear-bottleneck outputs) gets Gatys et al.'s rule applied to what it hands out instead: each requested
layer's channels are divided by their mean magnitude on the calibration pictures (``feature_means``,
:func:`painterly.nets.normalization.mean_activations` with ``magnitude``), so every channel's mean magnitude is one,
as every VGG filter's mean activation is.  Only the features a loss reads are scaled; the chain runs as trained.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from painterly.errors import OptionError
from painterly.nets.base import LayerChain, LayerInfo, check_layer_names

__all__ = ["InputConvention", "StagedEncoder"]


class InputConvention:
    """How a network wants its input: RGB [0, 1] times ``scale``, minus ``mean``, divided by ``std`` (per channel),
    channels reversed when ``bgr``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], *, scale: float = 1.0, bgr: bool = False) -> None:
        self.mean, self.std, self.scale, self.bgr = tuple(mean), tuple(std), scale, bgr

    def affine(self) -> tuple[Tensor, Tensor]:
        """``(multiplier, offset)`` of the per-channel map ``x * multiplier - offset`` (in RGB order)."""
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        multiplier = self.scale / std
        return multiplier, torch.tensor(self.mean).view(1, 3, 1, 1) / std


class StagedEncoder(LayerChain):
    """A frozen chain of stages truncated after the deepest of ``layers`` (an :class:`~painterly.nets.base.Encoder`).

    ``stages``: every addressable layer of the network in forward order with the module that computes it from the
    previous one (the first from the preprocessed image).  ``feature_means``: each layer's per-channel mean
    magnitude on the calibration pictures; requested layers are divided by it (None: handed out as computed, what
    the measurement itself uses).
    """

    def __init__(
        self,
        stages: Sequence[tuple[LayerInfo, nn.Module]],
        layers: Iterable[str],
        *,
        title: str,
        convention: InputConvention,
        feature_means: Mapping[str, Tensor] | None = None,
    ) -> None:
        super().__init__()
        infos = [info for info, _ in stages]
        self.title = title
        self.layers = tuple(dict.fromkeys(check_layer_names(layers, infos, title)))
        if not self.layers:
            raise OptionError("the encoder needs at least one layer")
        names = [info.name for info in infos]
        deepest = max(names.index(name) for name in self.layers)
        self.names = tuple(names[: deepest + 1])
        self._computed = tuple(infos[: deepest + 1])
        self.body = nn.ModuleList(module for _, module in stages[: deepest + 1])
        self.requires_grad_(False)
        self.eval()
        multiplier, offset = convention.affine()
        self.bgr = convention.bgr
        self._multiplier: Tensor
        self._offset: Tensor
        self.register_buffer("_multiplier", multiplier, persistent=False)
        self.register_buffer("_offset", offset, persistent=False)
        # keyed by the layer's position: a parameter's name cannot hold a dot, a layer's may (ResNet's layer3.2)
        self._inverse_means = nn.ParameterDict()
        if feature_means is not None:
            for name in self.layers:
                mean = feature_means[name].float()
                inverse = torch.where(mean > 1e-8, 1.0 / mean.clamp_min(1e-8), torch.ones_like(mean))
                self._inverse_means[self._key(name)] = nn.Parameter(inverse.view(1, -1, 1, 1), requires_grad=False)
        #: What each requested layer's channels are divided by (ones where no means were given): SWAG
        #: (painterly.nets.swag) puts the channels back in the trained proportions.
        self.feature_scales: dict[str, Tensor] = {
            name: (1.0 / self._inverse_means[self._key(name)].detach().flatten())
            if self._key(name) in self._inverse_means
            else torch.ones(next(info.channels for info in infos if info.name == name))
            for name in self.layers
        }  # fmt: skip
        self._collect = frozenset(self.layers)
        #: Run the stages in this lower precision (mixed precision; None = float32); features are handed out in
        #: float32 unless the caller asks for them as computed.
        self.compute_dtype: torch.dtype | None = None
        self._low_precision_body: tuple[torch.dtype, nn.ModuleList] | None = None

    def _key(self, name: str) -> str:
        """The key of ``name``'s inverse means: its position in the chain."""
        return f"stage{self.names.index(name)}"

    def preprocess(self, image: Tensor) -> Tensor:
        """RGB [0, 1] -> the network's input convention."""
        x = image * self._multiplier - self._offset
        return x.flip(1) if self.bgr else x

    def forward(self, image: Tensor, *, in_compute_dtype: bool = False) -> dict[str, Tensor]:
        """``{layer: features}`` of ``image`` for the requested layers, from one pass."""
        return dict(self.activations(image, in_compute_dtype=in_compute_dtype))

    def activations(self, image: Tensor, *, in_compute_dtype: bool = False) -> Iterator[tuple[str, Tensor]]:
        """``(layer, features)`` for each requested layer as the pass reaches it (float32 unless
        ``in_compute_dtype`` and a lower :attr:`compute_dtype`)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an N x 3 x H x W image batch, got shape {tuple(image.shape)}")
        dtype = self.compute_dtype
        body = self.body if dtype is None else self._body_in(dtype)
        x = self.preprocess(image)
        x = x if dtype is None else x.to(dtype)
        for name, module in zip(self.names, body, strict=True):
            x = module(x)
            if name in self._collect:
                key = self._key(name)
                features = x * self._inverse_means[key].to(x.dtype) if key in self._inverse_means else x
                yield name, features if dtype is None or in_compute_dtype else features.float()
