"""Seamless tiling: the objective and its gradient for images larger than memory allows (theory.md §10).

The untiled objective keeps every activation of the whole image alive for the
backward pass, so its memory grows with the pixels.  Here the image is split into
*cores* that partition it; each core is encoded inside a *window* (the core plus a
margin of context), so only one window's activations are ever alive.  Two passes
per evaluation keep the style statistics global:

1. without autograd, every window's features on its core are summed into the
   image's Gram matrices :math:`G_l = \\frac1{N_l}\\sum_{\\text{cores}} F F^\\top`,
   which fixes the style loss and its gradient :math:`\\partial L/\\partial G_l`;
2. with autograd, every window is encoded again and back-propagated with the exact
   feature gradients of its core positions,
   :math:`\\partial L/\\partial F = \\frac{2}{N_l}(\\partial L/\\partial G_l) F` for style and
   :math:`\\frac{2}{|P_l|}(F - P)` for content, and its pixel gradient is added into the image's.

The formulas are the losses' own (:class:`~painterly.losses.core.GramStatisticLoss`,
:class:`~painterly.losses.core.PositionwiseLoss`), the ones their whole-image backward
uses; the terms are :class:`~painterly.objective.whole.Term` and
:class:`~painterly.objective.whole.PixelTerm` objects, as in the untiled objective, and a
term of a loss without such a gradient is refused (:meth:`TiledObjective.can_tile`).

Windows start on multiples of the deepest layer's stride, so their pooling grids
are the whole image's and, with a margin as wide as the receptive field reaches
(:func:`exact_margin`, from the encoder's :class:`~painterly.nets.base.LayerInfo`),
features and gradients equal the untiled ones; a narrower margin leaves small
errors along core borders.  The core grid is shifted at every evaluation (by an
offset derived from the image itself, so the objective stays a deterministic
function of the image and a resumed run repeats an uninterrupted one), hence no
seam stays in one place.  The shift takes a few positions per axis (:data:`GRID_POSITIONS`), so
windows come in a few shapes and the memory one frees fits the next.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from painterly.engine.allocator import release_free_memory
from painterly.errors import OptionError
from painterly.losses.core import ContentLoss, GramLoss, GramStatisticLoss, LayerLoss, PositionwiseLoss
from painterly.nets.base import Encoder
from painterly.objective.whole import PixelTerm, Term, make_pixel_terms

__all__ = [
    "GRID_POSITIONS",
    "Tile",
    "TiledObjective",
    "exact_margin",
    "grid_step",
    "plan_tiles",
    "tiled_features",
    "tiled_grams",
]

#: Positions per axis the moving grid takes at most (run revision 5): shifts by about a quarter of a core.
#: Every window's shape follows from the grid's position, and glibc's heap serves the next window best from blocks
#: of the shapes it has just freed.  Shifting in steps of the deepest stride instead (as revisions 1-4 did) made
#: hundreds of shapes, and the heap's unusable free pieces grew step by step; with four positions the peak stays
#: flat (docs/performance.md, tiling, round 5).
GRID_POSITIONS = 4


def grid_step(core: int, align: int, positions: int = GRID_POSITIONS) -> int:
    """The distance between the grid's positions: ``core / positions`` rounded up to a multiple of ``align``.

    Rounded up, so the grid takes at most ``positions`` positions per axis: ``core // step`` of them.
    """
    return max(align, math.ceil(core / positions / align) * align)


def exact_margin(encoder: Encoder, layers: Sequence[str]) -> int:
    """The narrowest margin with which every window computes ``layers`` on its core as the whole image does.

    The widest :attr:`~painterly.nets.base.LayerInfo.reach` among them, rounded up to the deepest stride that
    windows are aligned to (theory.md §10): 80 px for VGG-19's ``relu5_1`` (reach 70 px, stride 16).
    """
    reaches = {info.name: info.reach for info in encoder.computed_layers}
    missing = [layer for layer in layers if layer not in reaches]
    if missing:
        raise ValueError(f"the encoder computes no layer {', '.join(missing)}")
    reach = max((reaches[layer] for layer in layers), default=0)
    return math.ceil(reach / encoder.max_stride) * encoder.max_stride


@dataclass(frozen=True)
class Tile:
    """One core (the pixels it owns) and its window (the pixels encoded to compute the core), as (y0, y1, x0, x1)."""

    core: tuple[int, int, int, int]
    window: tuple[int, int, int, int]

    def core_at(self, stride: int) -> tuple[slice, slice]:
        """The core's positions in the window's feature map at a layer of this ``stride``."""
        y0, y1, x0, x1 = self.core
        wy, _, wx, _ = self.window
        return slice((y0 - wy) // stride, (y1 - wy) // stride), slice((x0 - wx) // stride, (x1 - wx) // stride)

    def core_in_image(self, stride: int) -> tuple[slice, slice]:
        """The core's positions in the whole image's feature map at a layer of this ``stride``."""
        y0, y1, x0, x1 = self.core
        return slice(y0 // stride, y1 // stride), slice(x0 // stride, x1 // stride)


def _cuts(length: int, core: int, offset: int, align: int) -> list[tuple[int, int]]:
    """Core boundaries along one axis; a last sliver narrower than ``align`` joins the core before it."""
    edges = [0, *range(offset or core, length, core)]
    if len(edges) > 1 and length - edges[-1] < align:
        edges.pop()
    return list(itertools.pairwise([*edges, length]))


def plan_tiles(
    height: int, width: int, core: int, margin: int, *, offset: tuple[int, int] = (0, 0), align: int
) -> list[Tile]:
    """Cores of ``core`` px (shifted by ``offset``) partitioning the image, each with ``margin`` px of context.

    ``core``, ``margin`` and ``offset`` must be multiples of ``align`` (the deepest layer's stride), so every
    window starts where the whole image's pooling grid does.
    """
    if core % align or margin % align or offset[0] % align or offset[1] % align:
        raise ValueError(f"core {core}, margin {margin} and offset {offset} must be multiples of {align}")
    tiles = []
    for y0, y1 in _cuts(height, core, offset[0] % core, align):
        for x0, x1 in _cuts(width, core, offset[1] % core, align):
            window = (max(0, y0 - margin), min(height, y1 + margin), max(0, x0 - margin), min(width, x1 + margin))
            tiles.append(Tile(core=(y0, y1, x0, x1), window=window))
    return tiles


def _window(image: Tensor, tile: Tile) -> Tensor:
    y0, y1, x0, x1 = tile.window
    return image[..., y0:y1, x0:x1]


def flat_core(features: Tensor, tile: Tile, stride: int, dtype: torch.dtype) -> Tensor:
    """The core's features as a B x C x positions matrix in ``dtype``, with at most one copy.

    Laid out as reshaping the core's float32 features always was: a view where the core spans its window's width
    (transposed, for ``channels_last`` features), else a contiguous copy; a Gram product of the same values in the
    same layout rounds the same way, so runs of earlier revisions compute as they did.
    """
    rows, cols = tile.core_at(stride)
    core = features[..., rows, cols]
    if not (core.is_contiguous() or core.is_contiguous(memory_format=torch.channels_last)):
        core = core.to(dtype, memory_format=torch.contiguous_format)  # the copy reshape would make, in dtype
    return core.to(dtype).reshape(core.shape[0], core.shape[1], -1)


def tiled_grams(encoder: Encoder, image: Tensor, layers: Sequence[str], core: int, margin: int) -> dict[str, Tensor]:
    """Gram matrices :math:`F F^\\top / N` of the whole image at ``layers`` (1 x C x C), one window at a time."""
    height, width = image.shape[-2:]
    return grams_over(encoder, image, layers, plan_tiles(height, width, core, margin, align=encoder.max_stride))


@torch.no_grad()
def tiled_features(encoder: Encoder, image: Tensor, layers: Sequence[str], core: int, margin: int) -> dict[str, Tensor]:
    """The whole image's feature maps at ``layers``, assembled from the windows' cores."""
    height, width = image.shape[-2:]
    wanted = set(layers)
    full: dict[str, Tensor] = {}
    for tile in plan_tiles(height, width, core, margin, align=encoder.max_stride):
        # Each layer's core is copied out as the pass reaches it (in float32: the values a float32 copy of the
        # features holds) and nothing else of the layer is kept, as in the Gram pass (grams_over).
        for layer, features in encoder.activations(_window(image, tile), in_compute_dtype=True):
            if layer not in wanted:
                continue
            stride = encoder.stride(layer)
            if layer not in full:
                channels = features.shape[1]
                full[layer] = image.new_zeros(image.shape[0], channels, height // stride, width // stride)
            rows, cols = tile.core_in_image(stride)
            full[layer][..., rows, cols] = features[..., *tile.core_at(stride)]
    return full


class _KnownGradient(torch.autograd.Function):
    """A loss value whose gradient with respect to ``image`` was computed beforehand (tile by tile)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, image: Tensor, value: Tensor, grad: Tensor) -> Tensor:
        ctx.save_for_backward(grad)
        return value.clone()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None, None]:
        (grad,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * grad_output, None, None


def _untileable(loss: LayerLoss, kind: str) -> OptionError:
    """The refusal of a loss the tiled evaluator cannot take in a term of ``kind``, in one sentence."""
    instead = "the mse content loss" if kind == "content" else "the gram style loss"
    return OptionError(
        f"tiling cannot evaluate the {loss.name} {kind} loss, which has no feature gradient one window can compute "
        f"alone; use {instead}, or no tiling"
    )


class TiledObjective:
    """Callable ``image -> (total, parts)`` like :class:`painterly.objective.whole.Objective`, in bounded memory.

    It evaluates the same kinds of terms: :class:`~painterly.objective.whole.Term` objects whose loss owns a feature
    gradient windows can share (:meth:`can_tile`: content MSE, the Gram loss; several styles alike), and the
    pixel terms (total variation, Laplacian), which act on the whole image as in the untiled objective; and
    luminance-only transfer.  A term of another loss is refused (:class:`~painterly.errors.OptionError`).  The
    feature gradients are formed in the features' own dtype (:attr:`low_precision` decides it), whatever the
    losses' ``accepts_low_precision`` and ``gradient_dtype``, which are the untiled objective's choices.
    """

    def __init__(
        self,
        encoder: Encoder,
        terms: Sequence[Term],
        pixel_terms: Sequence[PixelTerm] = (),
        *,
        core: int,
        margin: int,
        gram_core: int | None = None,
        low_precision: bool = False,
        grid_step: int | None = None,
        luminance_only: bool = False,
    ) -> None:
        self.encoder = encoder
        for term in terms:
            if not self.can_tile(term.loss):
                raise _untileable(term.loss, term.kind)
        self.terms = list(terms)
        self.pixel_terms = list(pixel_terms)
        self.core, self.margin = core, margin
        #: Cores of the first pass (the image's Gram matrices; default ``core``): it keeps no activations for a
        #: backward, so its windows can be wider for the same memory and spend less on margins
        #: (painterly.plan.memory.gram_pass_core).  Any partition gives the same sums up to float rounding and margins.
        self.gram_core = core if gram_core is None else gram_core
        #: Second pass on the features as computed (bfloat16 under mixed precision) with the gradient going back
        #: in their dtype, as the untiled objective does, instead of on float32 copies (run revision 4).
        self.low_precision = low_precision
        #: The grid's shift moves in steps of this many pixels (a multiple of the deepest stride). The default, that
        #: stride, is how runs before revision 5 moved it; runs of revision 5 pass :func:`grid_step`'s few positions.
        self.grid_step = encoder.max_stride if grid_step is None else grid_step
        if self.grid_step <= 0 or self.grid_step % encoder.max_stride or self.grid_step > core:
            raise ValueError(
                f"grid step {self.grid_step} must be a positive multiple of the stride {encoder.max_stride} "
                f"no larger than the core ({core})"
            )
        self.luminance_only = luminance_only
        self.last_offset: tuple[int, int] = (0, 0)

    @staticmethod
    def can_tile(loss: LayerLoss, kind: str | None = None) -> bool:
        """Whether a term of ``loss`` can be evaluated window by window: decided by its type, the closed-form feature
        gradient it owns (theory.md §10).

        A :class:`~painterly.losses.core.PositionwiseLoss` gives each core's gradient from the core alone, a
        :class:`~painterly.losses.core.GramStatisticLoss` from the core and the whole image's Gram matrix; any other
        loss needs autograd through the whole image's features.  With ``kind``, whether :meth:`build` can take it in
        that role: a style's target is a statistic of another image, so a ``"style"`` loss must be a Gram statistic
        loss, and a ``"content"`` loss, compared position by position, a positionwise one.
        """
        if kind == "style":
            return isinstance(loss, GramStatisticLoss)
        if kind == "content":
            return isinstance(loss, PositionwiseLoss)
        return isinstance(loss, (PositionwiseLoss, GramStatisticLoss))

    @classmethod
    def build(
        cls,
        encoder: Encoder,
        *,
        content: Tensor,
        styles: Sequence[Tensor],
        content_layer_weights: dict[str, float],
        style_layer_weights: Sequence[dict[str, float]],
        core: int,
        margin: int,
        gram_core: int | None = None,
        low_precision: bool = False,
        grid_step: int | None = None,
        tv_weight: float = 0.0,
        laplacian_weight: float = 0.0,
        luminance_only: bool = False,
        content_loss: LayerLoss | None = None,
        style_loss: LayerLoss | None = None,
    ) -> TiledObjective:
        """Targets as in :meth:`Objective.build`, but encoded window by window (content and styles alike).

        Encoding the targets keeps no activations for a backward, so it uses the first pass's cores (``gram_core``).
        ``content_loss`` (default :class:`~painterly.losses.core.ContentLoss`) and ``style_loss`` (default
        :class:`~painterly.losses.core.GramLoss`) must suit their role (:meth:`can_tile`); any other is refused, with an
        :class:`~painterly.errors.OptionError`, before anything is encoded.
        """
        content_loss = ContentLoss() if content_loss is None else content_loss
        style_loss = GramLoss() if style_loss is None else style_loss
        for kind, loss in (("content", content_loss), ("style", style_loss)):
            if not cls.can_tile(loss, kind):
                raise _untileable(loss, kind)
        layers = [layer for layer, weight in content_layer_weights.items() if weight]
        gram_core = core if gram_core is None else gram_core
        content_features = tiled_features(encoder, content, layers, gram_core, margin)
        terms = []
        for layer in layers:
            target = content_loss.prepare(content_features[layer])
            terms.append(Term("content", layer, content_layer_weights[layer], content_loss, target))
        for style, weights in zip(styles, style_layer_weights, strict=True):
            used = [layer for layer, weight in weights.items() if weight]
            grams = tiled_grams(encoder, style, used, gram_core, margin)  # what GramStatisticLoss.prepare makes
            terms += [Term("style", layer, weights[layer], style_loss, grams[layer]) for layer in used]
        return cls(
            encoder, terms, make_pixel_terms(content, tv_weight, laplacian_weight), core=core, margin=margin,
            gram_core=gram_core, low_precision=low_precision, grid_step=grid_step, luminance_only=luminance_only,
        )  # fmt: skip

    def _offset_for(self, image: Tensor) -> tuple[int, int]:
        """A grid shift in multiples of :attr:`grid_step`, derived from a sparse sample of the image's pixels."""
        sample = image[..., :: max(1, image.shape[-2] // 61), :: max(1, image.shape[-1] // 67)]
        digest = hashlib.blake2b(sample.detach().float().cpu().numpy().tobytes(), digest_size=8).digest()
        step = self.grid_step
        choices = self.core // step  # at least 1: __init__ holds the step within the core
        return (digest[0] % choices) * step, (digest[1] % choices) * step

    def value_and_grad(self, image: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """The feature terms' losses of ``image`` by kind and their sum's gradient, one window's activations alive at
        a time."""
        encoder = self.encoder
        self.last_offset = self._offset_for(image)
        height, width = image.shape[-2:]
        tiles = plan_tiles(height, width, self.core, self.margin, offset=self.last_offset, align=encoder.max_stride)
        gram_terms = [(term, term.loss) for term in self.terms if isinstance(term.loss, GramStatisticLoss)]
        positionwise = [(term, term.loss) for term in self.terms if isinstance(term.loss, PositionwiseLoss)]
        gram_layers = list(dict.fromkeys(term.layer for term, _ in gram_terms))
        # Pass 1: the image's own Gram matrices, global over all cores: its own, wider ones, shifted alike, or one
        # window, unshifted, where one core holds the whole image (no border there, so no seam to move).
        offset = (0, 0) if self.gram_core >= max(image.shape[-2:]) else self.last_offset
        gram_tiles = plan_tiles(height, width, self.gram_core, self.margin, offset=offset, align=encoder.max_stride)
        grams = grams_over(encoder, image, gram_layers, gram_tiles)
        # Its windows differ in shape from the second pass's: handing their buffers back before that pass keeps the
        # heap from growing over a run (docs/performance.md, "Figures behind the code's constants").
        release_free_memory()
        values = {kind: image.new_zeros(()) for kind in dict.fromkeys(term.kind for term in self.terms)}
        # dL/dG per layer, summed over the layer's terms (one per style) so each window forms one product, with the
        # loss (the layer's first) whose feature_grad turns it into dL/dF.
        gram_grads: dict[str, tuple[GramStatisticLoss, Tensor]] = {}
        for term, gram_loss in gram_terms:
            value, gram_grad = gram_loss.value_and_gram_grad(grams[term.layer][0], term.target[0], term.weight)
            values[term.kind] = values[term.kind] + value
            if term.layer in gram_grads:
                first, total = gram_grads[term.layer]
                gram_grads[term.layer] = (first, total + gram_grad)
            else:
                gram_grads[term.layer] = (gram_loss, gram_grad)
        positions = {layer: _positions(image, encoder.stride(layer)) for layer in grams}
        # Pass 2: each window's pixel gradient from the exact feature gradients of its core.
        grad = torch.zeros_like(image)
        for tile in tiles:
            window = _window(image, tile).detach().requires_grad_(True)
            with torch.enable_grad():  # even when the caller evaluates under no_grad
                features = encoder(window, in_compute_dtype=self.low_precision)
            outputs, output_grads = [], []
            for layer in dict.fromkeys([*gram_layers, *(term.layer for term, _ in positionwise)]):
                stride = encoder.stride(layer)
                rows, cols = tile.core_at(stride)
                core_features = features[layer][..., rows, cols]
                if core_features.numel() == 0:
                    continue
                core_grad = torch.zeros_like(features[layer])
                with torch.no_grad():
                    if layer in gram_grads:
                        gram_loss, gram_grad = gram_grads[layer]
                        flat = core_features.reshape(core_features.shape[0], core_features.shape[1], -1)
                        # in the features' dtype, as GramLoss's backward product (theory.md §7)
                        step = gram_loss.feature_grad(gram_grad, flat, positions[layer], flat.dtype)
                        core_grad[..., rows, cols] += step.reshape(core_features.shape)
                    for term, loss in positionwise:
                        if term.layer == layer:
                            target = term.target[..., *tile.core_in_image(stride)]
                            value, step = loss.value_and_feature_grad(
                                core_features, target, term.weight, term.target.numel()
                            )
                            values[term.kind] = values[term.kind] + value
                            core_grad[..., rows, cols] += step
                outputs.append(features[layer])
                output_grads.append(core_grad)
            if outputs:
                torch.autograd.backward(outputs, output_grads)
                assert window.grad is not None  # the backward just filled it
                grad[..., tile.window[0] : tile.window[1], tile.window[2] : tile.window[3]] += window.grad
            del features, outputs, output_grads, window  # one window's tensors alive at a time
        release_free_memory()
        return values, grad

    def __call__(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        judged = image.mean(1, keepdim=True).expand_as(image) if self.luminance_only else image
        parts, grad = self.value_and_grad(judged.detach())
        total = _KnownGradient.apply(judged, sum(parts.values(), judged.new_zeros(())), grad)
        for pixel_term in self.pixel_terms:  # on the judged image, as Objective does (grey under luminance-only)
            parts[pixel_term.loss.name] = pixel_term(judged)
            total = total + parts[pixel_term.loss.name]
        return total, parts


def _positions(image: Tensor, stride: int) -> int:
    """Positions of the whole image's feature map at a layer of this stride (pooling rounds down)."""
    return (image.shape[-2] // stride) * (image.shape[-1] // stride)


@torch.no_grad()
def grams_over(encoder: Encoder, image: Tensor, layers: Sequence[str], tiles: Sequence[Tile]) -> dict[str, Tensor]:
    """Sum each window's core Gram products, then divide by the whole image's positions (pass 1)."""
    if not layers:
        return {}
    sums: dict[str, Tensor] = {}
    wanted = set(layers)
    for tile in tiles:
        # Each layer's core Gram product is formed as the pass reaches it, from the features as computed (bfloat16
        # under mixed precision) with only the core copied, to float32; then the features are let go, so one
        # window's current activation is alive at a time (memory.gram_pass_core sizes the windows on that).
        for layer, features in encoder.activations(_window(image, tile), in_compute_dtype=True):
            if layer in wanted:
                flat = flat_core(features, tile, encoder.stride(layer), torch.float32)
                product = torch.bmm(flat, flat.transpose(1, 2))
                sums[layer] = sums[layer] + product if layer in sums else product
                del flat, product
    return {layer: sums[layer] / _positions(image, encoder.stride(layer)) for layer in layers}
