"""MobileNetV2 and ShuffleNetV2 with attention in their units.

Papers: "MobileNetV2: Inverted Residuals and Linear Bottlenecks", https://arxiv.org/abs/1801.04381;
"ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
https://arxiv.org/abs/1807.11164. Built on torchvision's models (see surgery.py).

Units and stages: MobileNetV2's 17 inverted residuals (`features.1` .. `features.17`), in 5 stages
by resolution (a stride-2 unit opens a stage: 1, 2, 3, 7 and 4 units); ShuffleNetV2's `stage2`,
`stage3`, `stage4` (our stages 1-3: 4, 8, 4 units).

Slots (SENet Fig. 3 pattern): "branch" gates the inverted residual's conv branch after its
projection BN, before the add (MobileNetV3 puts SE after the depthwise conv instead), and the
ShuffleNet unit's transformed half (branch2) before the concat and shuffle; placement "inner" puts
it after the depthwise conv block instead, on the expanded width (Coordinate attention's official
MobileNetV2, where the first unit, without expansion, has none: stages 2-5); "after" follows the
whole unit; "conv" (SK) replaces the depthwise 3x3 with a depthwise SK unit, as SKNet's
ShuffleNetV2 experiments do.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import mobilenetv2, shufflenetv2

from senet_cli.backbones.spec import BlockAttention
from senet_cli.backbones.surgery import BranchOrAfter, attach, is_3x3_same, positions, replace_conv


class AttentionInvertedResidual(BranchOrAfter, mobilenetv2.InvertedResidual):
    """torchvision's inverted residual with attention on its conv branch or on its output, or
    inside the branch after the depthwise conv block (`inner_index`, placement "inner")."""

    inner_index: int | None = None  # index in `conv` of the depthwise conv-BN-ReLU6 it follows
    # torchvision sets these in __init__ (untyped there); declared so the checker knows them
    conv: nn.Sequential
    use_res_connect: bool

    def forward_branch(self, x: torch.Tensor, attention: nn.Module) -> torch.Tensor:
        if self.inner_index is None:
            out = attention(self.conv(x))
        else:
            out = x
            for index, layer in enumerate(self.conv):
                out = layer(out)
                if index == self.inner_index:
                    out = attention(out)
        return x + out if self.use_res_connect else out


class AttentionShuffleUnit(BranchOrAfter, shufflenetv2.InvertedResidual):
    """torchvision's ShuffleNetV2 unit with attention on branch2 (before the concat) or its output."""

    # torchvision sets these in __init__ (untyped there); declared so the checker knows them
    stride: int
    branch1: nn.Sequential
    branch2: nn.Sequential

    def forward_branch(self, x: torch.Tensor, attention: nn.Module) -> torch.Tensor:
        if self.stride == 1:
            kept, transformed = x.chunk(2, dim=1)
            out = torch.cat((kept, attention(self.branch2(transformed))), dim=1)
        else:
            out = torch.cat((self.branch1(x), attention(self.branch2(x))), dim=1)
        return shufflenetv2.channel_shuffle(out, 2)


def mobilenet_blocks(model: mobilenetv2.MobileNetV2) -> list[tuple[str, int]]:
    """The 17 inverted residuals as (path, stage); a stride-2 unit opens a new stage."""
    blocks, stage = [], 0
    for index, unit in enumerate(model.features):
        if isinstance(unit, mobilenetv2.InvertedResidual):
            stage += 1 if (stage == 0 or unit.stride == 2) else 0
            blocks.append((f"features.{index}", stage))
    return blocks


def shufflenet_blocks(model: shufflenetv2.ShuffleNetV2) -> list[tuple[str, int]]:
    return [(f"stage{s + 1}.{i}", s) for s in (1, 2, 3) for i in range(len(getattr(model, f"stage{s + 1}")))]


def build(arch: str, num_classes: int, variant: str, attention: BlockAttention | None) -> nn.Module:
    del variant  # one layout per model
    if arch == "mobilenet_v2":
        model = mobilenetv2.mobilenet_v2(num_classes=num_classes)
        blocks = mobilenet_blocks(model)
    else:
        model = shufflenetv2.shufflenet_v2_x1_0(num_classes=num_classes)
        blocks = shufflenet_blocks(model)
    if attention is None:
        return model
    for (path, _), (stage, index, count) in zip(blocks, positions([s for _, s in blocks]), strict=True):
        if attention.selects(stage, index, count):
            _add(model.get_submodule(path), attention, stage)
    return model


def _add(unit: mobilenetv2.InvertedResidual | shufflenetv2.InvertedResidual, attention: BlockAttention,
         stage: int) -> None:
    if isinstance(unit, mobilenetv2.InvertedResidual):
        if attention.slot == "conv":
            depthwise = next(i for i, layer in enumerate(unit.conv)
                             if isinstance(layer, nn.Sequential) and is_3x3_same(layer[0]))
            replace_conv(unit.conv, str(depthwise), attention, stage, nn.ReLU6)
        elif attention.placement == "inner":
            depthwise = next(i for i, layer in enumerate(unit.conv)
                             if isinstance(layer, nn.Sequential) and isinstance(layer[0], nn.Conv2d)
                             and layer[0].groups > 1)
            attach(unit, AttentionInvertedResidual, attention, unit.conv[depthwise][0].out_channels, stage)
            unit.inner_index = depthwise
        else:
            attach(unit, AttentionInvertedResidual, attention, unit.out_channels, stage)
        return
    if attention.slot == "conv":
        for branch in (unit.branch1, unit.branch2):
            for i, layer in enumerate(list(branch)):
                if is_3x3_same(layer):  # the depthwise conv, then its BN, no activation
                    replace_conv(branch, str(i), attention, stage, nn.Identity, absorbed=(str(i + 1),))
        return
    width = unit.branch2[5].out_channels
    attach(unit, AttentionShuffleUnit, attention, width if attention.slot == "branch" else 2 * width, stage)
