"""VGG-19 feature extractor that returns every requested layer in one pass (an :class:`~painterly.nets.base.Encoder`).

Callers hand in RGB images in [0, 1]; the network's own input convention
(Caffe: BGR, 0-255, mean-subtracted; or torchvision's normalisation) is applied
inside, so no caller ever has to think about it.  The network is built only up
to the deepest layer any loss needs: with the paper's layers (deepest relu5_1)
the last three convolutions of VGG-19 are never run.  Its layers are described
by :data:`painterly.nets.vgg.VGG19_LAYERS`, with the widths of the weights in use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

from painterly.errors import OptionError
from painterly.nets.base import LayerChain, LayerInfo, Pooling, check_layer_names
from painterly.nets.normalization import fold_normalization, mean_activations
from painterly.nets.vgg import LAYER_NAMES, layer_names, validate_layers, vgg_layers
from painterly.nets.weights import Preprocessing, VGGWeights

__all__ = ["LAYER_NAMES", "Pooling", "VGGEncoder", "layer_names", "measure_channel_means", "validate_layers"]

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def measure_channel_means(weights: VGGWeights, images: list[Tensor] | None = None) -> dict[str, Tensor]:
    """Mean ReLU activation of every filter of every conv layer over ``images`` (default: the calibration
    pictures) and positions, keyed by the convolution: what the encoder divides by (normalization.py)."""
    convs = [info.name for info in vgg_layers(weights.depth) if info.name.startswith("conv")]
    relus = {conv: conv.replace("conv", "relu") for conv in convs}
    means = mean_activations(VGGEncoder(weights, relus.values(), normalize=False), images)
    return {conv: means[relu] for conv, relu in relus.items()}


class VGGEncoder(LayerChain):
    """Frozen VGG-19 (or VGG-16, as ``weights.depth`` says) truncated after the deepest of ``layers``.

    ``forward(image)`` returns ``{layer: activation}`` for exactly the requested layers.
    With ``normalize`` (the paper's choice) every filter's mean activation on the
    calibration set is one, which balances the layers' losses (see normalization.py).
    Parameters never require gradients: only the image is optimised.
    """

    def __init__(
        self, weights: VGGWeights, layers: Iterable[str], *, pooling: Pooling = "max", normalize: bool = True
    ) -> None:
        super().__init__()
        table = vgg_layers(weights.depth)
        self.layers = tuple(dict.fromkeys(check_layer_names(layers, table, f"VGG-{weights.depth}")))
        if not self.layers:
            raise OptionError("the encoder needs at least one layer")
        if pooling not in ("max", "avg"):
            raise OptionError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        self.pooling = pooling
        self.preprocessing: Preprocessing = weights.preprocessing
        names = tuple(info.name for info in table)
        deepest = max(names.index(name) for name in self.layers)
        self.names = names[: deepest + 1]
        self._computed = self._describe(weights, table[: deepest + 1])
        self.normalized = normalize
        state = weights.state
        means: dict[str, Tensor] = {}
        if normalize:
            convs = [name for name in self.names if name.startswith("conv")]
            means = weights.channel_means or measure_channel_means(weights)
            state = fold_normalization(state, means, convs)
        #: What each requested layer's channels were divided by (the mean activation of the convolution feeding it;
        #: ones when not normalised): SWAG (painterly.nets.swag) puts the channels back in the trained proportions.
        self.feature_scales: dict[str, Tensor] = {}
        for layer in self.layers:
            conv = [name for name in self.names[: self.names.index(layer) + 1] if name.startswith("conv")][-1]
            width = weights.state[f"{conv}.weight"].shape[0]
            mean = means[conv].float() if normalize else torch.ones(width)
            self.feature_scales[layer] = torch.where(mean > 1e-8, mean, torch.ones_like(mean))  # as folded
        modules: list[nn.Module] = []
        for name in self.names:
            if name.startswith("conv"):
                weight = state[f"{name}.weight"]
                # skip_init: no random initialisation (it would be replaced, and would draw from the caller's RNG).
                # The folded tensors become the parameters themselves: no second copy of the network at build time.
                conv = nn.utils.skip_init(nn.Conv2d, weight.shape[1], weight.shape[0], 3, padding=1)
                bias = state[f"{name}.bias"]
                # (unnormalised weights are the caller's own tensors: cloned, so the encoder never aliases them)
                conv.weight = nn.Parameter(weight if normalize else weight.clone(), requires_grad=False)
                conv.bias = nn.Parameter(bias if normalize else bias.clone(), requires_grad=False)
                modules.append(conv)
            elif name.startswith("relu"):
                # In place unless the conv output before it is itself requested: a conv's backward needs
                # only its weights, so overwriting its output saves one activation copy per layer.
                modules.append(nn.ReLU(inplace=name.replace("relu", "conv") not in self.layers))
            else:
                modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        if pooling == "max":
            self._pool_before_relu(modules)
        self.body = nn.ModuleList(modules)
        self.requires_grad_(False)
        self.eval()
        # Both conventions are an affine map per channel: x * scale - offset (then BGR for Caffe).
        if self.preprocessing == "caffe":
            scale = torch.full((1, 3, 1, 1), 255.0)
            offset = torch.tensor(CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1)  # mean in RGB order
        else:
            scale = 1.0 / torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1)
            offset = torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1) * scale
        self._offset: Tensor
        self._scale: Tensor
        self.register_buffer("_offset", offset, persistent=False)
        self.register_buffer("_scale", scale, persistent=False)
        self._collect = frozenset(self.layers)
        #: Run the convolutions in this lower precision (mixed precision; None = float32). The features are handed
        #: out in float32 unless the caller asks otherwise, and the image stays in full precision.
        self.compute_dtype: torch.dtype | None = None
        self._low_precision_body: tuple[torch.dtype, nn.ModuleList] | None = None

    def _pool_before_relu(self, modules: list[nn.Module]) -> None:
        r"""Run each max-pooling before the ReLU that precedes it, where no loss reads that ReLU's or its conv's output.

        Max-pooling and ReLU commute exactly, both being monotone: :math:`\max(\mathrm{relu}(x)) =
        \mathrm{relu}(\max x)`, and the backward sends each window's gradient to the same position, masked by the
        same sign, so features and gradients are bit-identical; the ReLU and its backward then touch a quarter of
        the elements (1 % of an evaluation at 512 and 1024 px, docs/performance.md).  The layer names keep their
        order: the pooling layer's features are still handed out after both modules have run.
        """
        for index, name in enumerate(self.names):
            if name.startswith("pool") and index >= 2:
                relu, conv = self.names[index - 1], self.names[index - 2]
                if relu.startswith("relu") and relu not in self.layers and conv not in self.layers:
                    modules[index - 1], modules[index] = modules[index], modules[index - 1]

    @staticmethod
    def _describe(weights: VGGWeights, layers: tuple[LayerInfo, ...]) -> tuple[LayerInfo, ...]:
        """VGG's description of ``layers`` with the widths of ``weights`` (a ReLU or pooling keeps its conv's)."""
        described, width = [], 3
        for info in layers:
            if info.name.startswith("conv"):
                width = weights.state[f"{info.name}.weight"].shape[0]
            described.append(dataclasses.replace(info, channels=width))
        return tuple(described)

    def preprocess(self, image: Tensor) -> Tensor:
        """RGB [0, 1] -> the network's input convention."""
        x = image * self._scale - self._offset
        return x.flip(1) if self.preprocessing == "caffe" else x  # Caffe wants BGR

    def forward(self, image: Tensor, *, in_compute_dtype: bool = False) -> dict[str, Tensor]:
        """``{layer: features}`` of ``image``; in float32 unless ``in_compute_dtype`` asks for them as computed.

        Under mixed precision the features are computed in bfloat16; ``in_compute_dtype`` hands them out so,
        without float32 copies, for callers whose losses take them (:attr:`LayerLoss.accepts_low_precision`).
        """
        return dict(self.activations(image, in_compute_dtype=in_compute_dtype))

    def activations(self, image: Tensor, *, in_compute_dtype: bool = False) -> Iterator[tuple[str, Tensor]]:
        """``(layer, features)`` for each requested layer, as the pass reaches it (the dtype as in ``forward``).

        A caller that reduces each layer's features as they come (tiling's Gram pass, under ``no_grad``) and lets
        them go keeps only the current activation alive, not every requested layer's.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an N x 3 x H x W image batch, got shape {tuple(image.shape)}")
        x = self.preprocess(image)
        dtype = self.compute_dtype
        body = self.body if dtype is None else self._body_in(dtype)
        x = x if dtype is None else x.to(dtype)
        for name, module in zip(self.names, body, strict=True):
            x = module(x)
            if name in self._collect:
                yield name, x if dtype is None or in_compute_dtype else x.float()
