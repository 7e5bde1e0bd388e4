"""VGG-16 with batch norm, with attention after each conv unit.

Paper: "Very Deep Convolutional Networks for Large-Scale Image Recognition",
https://arxiv.org/abs/1409.1556. Built on torchvision's `vgg16_bn` (see surgery.py).

VGG has no blocks, only a flat `features` Sequential of (conv, BN, ReLU) triples and max-pools.
A unit here is one triple, named by its ReLU's path (`features.2`), where "branch" and "after"
modules run on the ReLU's output (the SENet Fig. 2 pattern for a plain unit); the conv and BN
belong to the unit's row in counts. Stages are the 5 pooling stages (2, 2, 3, 3, 3 units). A
"conv" module (SK) replaces the conv (its BN and ReLU become Identity, the ReLU moving into SK's
branches).
"""

from __future__ import annotations

from torch import nn
from torchvision.models import vgg

from senet_cli.backbones.spec import BlockAttention
from senet_cli.backbones.surgery import ThenAttention, attach, positions, replace_conv

LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
"""torchvision's configuration "D": conv widths and max-pools ("M"); each width is 3 layers."""


class AttentionReLU(ThenAttention, nn.ReLU):
    """The ReLU ending a VGG unit, followed by the unit's attention module."""


def _units() -> list[tuple[int, int, int]]:
    """(conv index in `features`, width, stage) per unit."""
    units, index, stage = [], 0, 1
    for item in LAYOUT:
        if item == "M":
            index, stage = index + 1, stage + 1
        else:
            units.append((index, int(item), stage))
            index += 3
    return units


def vgg_blocks(model: nn.Module) -> list[tuple[str, int]]:
    return [(f"features.{index + 2}", stage) for index, _, stage in _units()]


def vgg_members(model: nn.Module) -> dict[str, str]:
    """Each unit's conv and BN belong to the unit named by its ReLU."""
    return {f"features.{index + k}": f"features.{index + 2}" for index, _, _ in _units() for k in (0, 1)}


def build(arch: str, num_classes: int, variant: str, attention: BlockAttention | None) -> nn.Module:
    del arch, variant
    model = vgg.vgg16_bn(num_classes=num_classes)
    if attention is None:
        return model
    units = _units()
    for (index, width, _), (stage, position, count) in zip(units, positions([s for _, _, s in units]), strict=True):
        if not attention.selects(stage, position, count):
            continue
        if attention.slot == "conv":
            replace_conv(model.features, str(index), attention, stage, nn.ReLU,
                         absorbed=(str(index + 1), str(index + 2)))
        else:
            attach(model.features[index + 2], AttentionReLU, attention, width, stage)
    return model
