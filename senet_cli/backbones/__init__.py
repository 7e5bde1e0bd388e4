"""The backbones of the zoo, registered by name; each takes an attention module per block.

Torch-free catalogue: builders are named by import path (see spec.py).
"""

from __future__ import annotations

from senet_cli.backbones.spec import BackboneSpec, BlockAttention
from senet_cli.options import VARIANTS
from senet_cli.registry import Registry

BACKBONES: Registry[BackboneSpec] = Registry("backbone")

_RESNETS = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "resnet152": "ResNet-152",
    "resnext50_32x4d": "ResNeXt-50 32x4d",
    "resnext101_32x4d": "ResNeXt-101 32x4d",
    "resnext101_32x8d": "ResNeXt-101 32x8d",
    "wide_resnet50_2": "Wide ResNet-50-2",
}
_CIFAR_DEPTHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


IMAGENET_VARIANTS = VARIANTS
"""Every ImageNet ResNet takes the Caffe stem pool too; a CIFAR stem has no pool to change."""
CIFAR_VARIANTS = tuple(variant for variant in VARIANTS if not variant.endswith("-caffe"))


def _resnet(name: str, description: str, cifar: bool) -> BackboneSpec:
    return BackboneSpec(
        name=name,
        family="resnet",
        description=description,
        arch=name,
        builder="senet_cli.backbones.resnet:build",
        block_lister="senet_cli.backbones.resnet:resnet_blocks",
        default_num_classes=10 if cifar else 1000,
        default_input=32 if cifar else 224,
        min_input=8 if cifar else 32,
        placements=("standard", "pre", "post", "identity"),
        inner="on the 3x3 conv's output, before its BN (a basic block's second 3x3)",
        variants=CIFAR_VARIANTS if cifar else IMAGENET_VARIANTS,
    )


for _name, _title in _RESNETS.items():
    BACKBONES.add(_name, _resnet(_name, f"{_title}, torchvision layout", cifar=False))
BACKBONES.add("resnext152_64x4d_senet", _resnet(
    "resnext152_64x4d_senet",
    "SENet-154's body: ResNeXt-152 64x4d with a 3x3-conv stem (64, 64, 128), the first 1x1 halved, 3x3 "
    "projections, dropout 0.2 (SENet appendix; timm's senet154 keys)", cifar=False,
))
for _name in _CIFAR_DEPTHS:
    BACKBONES.add(
        f"{_name}_cifar",
        _resnet(f"{_name}_cifar", f"{_RESNETS[_name]}, CIFAR stem (3x3 stride 1, no max-pool)", cifar=True),
    )

BACKBONES.add("mobilenet_v2", BackboneSpec(
    name="mobilenet_v2", family="mobilenet", description="MobileNetV2 1.0, torchvision layout (17 units, 5 stages)",
    arch="mobilenet_v2", builder="senet_cli.backbones.mobile:build",
    block_lister="senet_cli.backbones.mobile:mobilenet_blocks", stage_count=5, placements=("standard", "post"),
    inner="after the depthwise conv, its BN and ReLU6, before the projection (on the expanded width)",
))
BACKBONES.add("shufflenet_v2_x1_0", BackboneSpec(
    name="shufflenet_v2_x1_0", family="shufflenet",
    description="ShuffleNetV2 1.0x, torchvision layout (16 units, 3 stages)", arch="shufflenet_v2_x1_0",
    builder="senet_cli.backbones.mobile:build", block_lister="senet_cli.backbones.mobile:shufflenet_blocks",
    stage_count=3, placements=("standard", "post"),
))
BACKBONES.add("vgg16_bn", BackboneSpec(
    name="vgg16_bn", family="vgg", description="VGG-16 with BN, torchvision layout (13 conv units, 5 stages)",
    arch="vgg16_bn", builder="senet_cli.backbones.vgg:build", block_lister="senet_cli.backbones.vgg:vgg_blocks",
    member_lister="senet_cli.backbones.vgg:vgg_members", stage_count=5,
))
BACKBONES.add("inception_v3", BackboneSpec(
    name="inception_v3", family="inception",
    description="Inception v3 with its aux classifier, torchvision layout (11 modules, 3 stages)",
    arch="inception_v3", builder="senet_cli.backbones.inception:build",
    block_lister="senet_cli.backbones.inception:inception_blocks",
    default_input=299, min_input=75, stage_count=3,
))

__all__ = ["BACKBONES", "BackboneSpec", "BlockAttention"]
