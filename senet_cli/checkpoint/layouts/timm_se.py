"""timm's SE-ResNets and SENet-154 (huggingface/pytorch-image-models, `timm/models/resnet.py`):
`seresnet50/101/152`, `seresnext50_32x4d`, `seresnext101_32x4d`, `seresnext101_32x8d`, `senet154`.

Their keys and shapes are ours already (our SE module is named and shaped as timm's SEModule:
`se.fc1`, `se.fc2`, 1x1 convs with bias; our SENet-154 body has timm's deep-stem keys `conv1.0..6`),
so this layout claims no checkpoint: it exists for `senet convert` to timm's layout, which writes the
same names and checks that timm's model computes the same function: stride on the 3x3 (v1.5),
torchvision's padded stem pool, SE on every block at ratio 16. timm rounds the SE width to a
multiple of 8, which changes nothing from 256 channels up but widens the 64-channel blocks of
seresnet18/34 (4 -> 8): those are not ours, and are refused.
"""

from __future__ import annotations

from typing import Any

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts._keys import is_paper_module
from senet_cli.options import ModelConfig

NAMES = {
    "resnet50": "seresnet50", "resnet101": "seresnet101", "resnet152": "seresnet152",
    "resnext50_32x4d": "seresnext50_32x4d", "resnext101_32x4d": "seresnext101_32x4d",
    "resnext101_32x8d": "seresnext101_32x8d", "resnext152_64x4d_senet": "senet154",
}


def claims(shapes: Shapes) -> bool:
    del shapes
    return False  # the same keys as ours: nothing to map


def to_senet(state: StateDict) -> Mapped:
    raise AssertionError("timm's SE-ResNet keys are ours; this layout never claims a checkpoint")


def from_senet(config: ModelConfig, state: StateDict) -> dict[str, Any]:
    return dict(state)


def writes(config: ModelConfig) -> str | None:
    name = NAMES.get(config.backbone)
    if name is None or config.variant != "v1.5" or not is_paper_module(config, "se", ratio=16):
        return None
    return name


TIMM_SE = register_layout(Layout(
    name="timm-se",
    repository="huggingface/pytorch-image-models (timm/models/resnet.py)",
    covers="seresnet50/101/152, seresnext50_32x4d, seresnext101_32x4d/32x8d, senet154: our keys already",
    claims=claims,
    to_senet=to_senet,
    from_senet=from_senet,
    target="timm",
    writes=writes,
))
