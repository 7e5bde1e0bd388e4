"""The backbones of the zoo, registered by name; each takes an attention module per block.

Torch-free catalogue: builders are named by import path (see spec.py).
"""

from __future__ import annotations

from senet_cli.backbones.spec import BackboneSpec, BlockAttention
from senet_cli.registry import Registry

BACKBONES: Registry[BackboneSpec] = Registry("backbone")

_RESNETS = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "resnet152": "ResNet-152",
    "resnext50_32x4d": "ResNeXt-50 32x4d",
    "resnext101_32x8d": "ResNeXt-101 32x8d",
    "wide_resnet50_2": "Wide ResNet-50-2",
}
_CIFAR_DEPTHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def _resnet(name: str, description: str, cifar: bool) -> BackboneSpec:
    return BackboneSpec(
        name=name,
        family="resnet",
        description=description,
        arch=name,
        builder="senet_cli.backbones.resnet:build",
        blocks="senet_cli.backbones.resnet:resnet_blocks",
        fits="senet_cli.backbones.resnet:resnet_fits",
        default_num_classes=10 if cifar else 1000,
        default_input=32 if cifar else 224,
        min_input=8 if cifar else 32,
    )


for _name, _title in _RESNETS.items():
    BACKBONES.add(_name, _resnet(_name, f"{_title}, torchvision layout", cifar=False))
for _name in _CIFAR_DEPTHS:
    BACKBONES.add(
        f"{_name}_cifar",
        _resnet(f"{_name}_cifar", f"{_RESNETS[_name]}, CIFAR stem (3x3 stride 1, no max-pool)", cifar=True),
    )

__all__ = ["BACKBONES", "BackboneSpec", "BlockAttention"]
