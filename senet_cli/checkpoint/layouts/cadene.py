"""Cadene's `pretrainedmodels` SENets, the ports of the SENet authors' released Caffe models
(Cadene/pretrained-models.pytorch, `pretrainedmodels/models/senet.py`); timm keeps the same keys
for its `legacy_se*` / `legacy_senet154` models, so this layout is also what `senet convert` writes
for them when asked for timm's layout.

Names and shapes (from the public file): the stem is a Sequential `layer0` (`conv1`, `bn1` for the
7x7 stem; `conv1..3`, `bn1..3` for SENet-154's three 3x3 convs) with a max-pool in Caffe's ceil
mode; blocks are torchvision's (`conv1..3`, `bn1..3`, `downsample.0/1`) with the SE module as
`se_module.fc1/fc2`, 1x1 convs with bias, reduction 16; the classifier is `last_linear`.

What the names do not say, from the same file: SE-ResNet bottlenecks stride their first 1x1
(variant v1), SE-ResNeXt and SENet-154 their 3x3 (v1.5); all use the Caffe stem pool ("-caffe"
variants: the same 56x56 as torchvision's padded pool for 224 inputs, windows one pixel over, so
the logits differ without it). SENet-154's halved first 1x1, 3x3 projections and dropout are our
`resnext152_64x4d_senet` backbone. Its 7x7 average pool is our adaptive one (the same at 224).
"""

from __future__ import annotations

from typing import Any

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts._keys import (
    RESNET_DEPTHS,
    KeyTable,
    blocks_per_stage,
    is_paper_module,
    reduction_ratio,
)
from senet_cli.errors import ArchitectureError
from senet_cli.options import ModelConfig
from senet_cli.zoo import make_config

_COMMON = (
    ("layer{s}.{b}.se_module.{rest*}", "layer{s}.{b}.se.{rest*}"),
    ("last_linear.{p}", "fc.{p}"),
)
SEVEN_BY_SEVEN = KeyTable((
    ("layer0.conv1.{p}", "conv1.{p}"),
    ("layer0.bn1.{p}", "bn1.{p}"),
    *_COMMON,
))
THREE_CONV_STEM = KeyTable((  # SENet-154: ours is timm's deep stem, conv1 = Sequential(conv, bn, relu, ...) + bn1
    ("layer0.conv1.{p}", "conv1.0.{p}"),
    ("layer0.bn1.{p}", "conv1.1.{p}"),
    ("layer0.conv2.{p}", "conv1.3.{p}"),
    ("layer0.bn2.{p}", "conv1.4.{p}"),
    ("layer0.conv3.{p}", "conv1.6.{p}"),
    ("layer0.bn3.{p}", "bn1.{p}"),
    *_COMMON,
))
SENET154 = "resnext152_64x4d_senet"

# (bottleneck?, groups, blocks per stage) -> our backbone, for Cadene's six models
_BACKBONES: dict[tuple[bool, int, tuple[int, ...]], str] = {
    (True, 1, (3, 4, 6, 3)): "resnet50", (True, 1, (3, 4, 23, 3)): "resnet101", (True, 1, (3, 8, 36, 3)): "resnet152",
    (True, 32, (3, 4, 6, 3)): "resnext50_32x4d", (True, 32, (3, 4, 23, 3)): "resnext101_32x4d",
}
_TIMM_NAMES = {
    "resnet50": "legacy_seresnet50",
    "resnet101": "legacy_seresnet101", "resnet152": "legacy_seresnet152",
    "resnext50_32x4d": "legacy_seresnext50_32x4d", "resnext101_32x4d": "legacy_seresnext101_32x4d",
    SENET154: "legacy_senet154",
}


def claims(shapes: Shapes) -> bool:
    return ("layer0.conv1.weight" in shapes and "last_linear.weight" in shapes
            and any(".se_module.fc1.weight" in key for key in shapes))


def _config(shapes: Shapes) -> ModelConfig:
    blocks = blocks_per_stage(shapes)
    bottleneck = "layer1.0.conv3.weight" in shapes
    groups = shapes["layer1.0.conv1.weight"][0] // shapes["layer1.0.conv2.weight"][1]  # the 3x3's input / per group
    ratio = reduction_ratio(shapes, "se_module.fc1.weight")
    num_classes = shapes["last_linear.weight"][0]
    if "layer0.conv3.weight" in shapes:
        if blocks != (3, 8, 36, 3) or groups != 64:
            raise ArchitectureError("it has SENet-154's three-conv stem but {blocks} blocks in {groups} groups; the "
                                    "zoo has SENet-154 (3, 8, 36, 3 blocks, 64 groups) only", arguments=(),
                                    blocks=blocks, groups=groups)
        return make_config("senet154", ratio=ratio, num_classes=num_classes, variant="v1.5-caffe")
    if not bottleneck:
        raise ArchitectureError("its basic blocks (timm's legacy_seresnet18/34) apply a ReLU before SE, which no "
                                "zoo model does", arguments=())
    backbone = _BACKBONES.get((bottleneck, groups, blocks))
    if backbone is None:
        depth = RESNET_DEPTHS.get((bottleneck, blocks), "?")
        raise ArchitectureError("its {blocks} blocks per stage in {groups} groups (depth {depth}) fit no zoo "
                                "backbone", arguments=(), blocks=blocks, groups=groups, depth=depth)
    # SEResNetBottleneck strides its first 1x1 (Caffe's ResNet); SEResNeXtBottleneck its 3x3.
    variant = "v1-caffe" if bottleneck and groups == 1 else "v1.5-caffe"
    return make_config(f"se_{backbone}", ratio=ratio, num_classes=num_classes, variant=variant)


def to_senet(state: StateDict) -> Mapped:
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    config = _config(shapes)
    table = THREE_CONV_STEM if config.backbone == SENET154 else SEVEN_BY_SEVEN
    stride = "first 1x1 (v1)" if config.variant.startswith("v1-") else "3x3 (v1.5)"
    note = (f"Cadene's layout: stride on the bottleneck's {stride} and Caffe's ceil-mode stem pool, as its "
            f"{'SEResNet' if config.variant.startswith('v1-') else 'SEResNeXt/SENet154'} blocks")
    return Mapped(config, table.to_ours(state), (note,))


def from_senet(config: ModelConfig, state: StateDict) -> dict[str, Any]:
    table = THREE_CONV_STEM if config.backbone == SENET154 else SEVEN_BY_SEVEN
    return table.to_foreign(state)


def writes(config: ModelConfig) -> str | None:
    """timm's legacy model for `config`: the paper's SE (ratio 16) with Caffe's stem pool and the
    stride where Cadene's blocks put it."""
    name = _TIMM_NAMES.get(config.backbone)
    if name is None or not is_paper_module(config, "se", ratio=16):
        return None
    stride_on_1x1 = config.backbone in ("resnet50", "resnet101", "resnet152")  # SEResNetBottleneck
    return name if config.variant == ("v1-caffe" if stride_on_1x1 else "v1.5-caffe") else None


CADENE = register_layout(Layout(
    name="cadene",
    repository="Cadene/pretrained-models.pytorch (also timm's legacy_se* models)",
    covers="se_resnet50/101/152, se_resnext50_32x4d, se_resnext101_32x4d, senet154 (timm's legacy_ names)",
    claims=claims,
    to_senet=to_senet,
    from_senet=from_senet,
    target="timm",
    writes=writes,
))
