"""Inception v3 with attention on its Inception modules (SE-Inception, SENet paper Fig. 2).

Paper: "Rethinking the Inception Architecture for Computer Vision", https://arxiv.org/abs/1512.00567.
Built on torchvision's `inception_v3` with its auxiliary classifier, so torchvision's keys all stay
(see surgery.py); AuxLogits only runs in training mode and counts towards parameters, as in
torchvision's 27.2M.

Units are the 11 Inception modules, in 3 stages by resolution: Mixed_5b-5d (35x35), Mixed_6a-6e
(17x17, 6a is the grid reduction into it), Mixed_7a-7c (8x8). An Inception module has no identity
path, so "branch" and "after" both put the module on its concatenated output, as SE-Inception
does. A "conv" module (SK) replaces every 3x3 conv that keeps the size (padding 1) inside a unit,
each a BasicConv2d (conv, BN, ReLU).
"""

from __future__ import annotations

from torch import nn
from torchvision.models import inception

from senet_cli.backbones.spec import BlockAttention
from senet_cli.backbones.surgery import ThenAttention, attach, is_3x3_same, positions, replace_conv

UNITS = {
    # name: (stage, output channels: the sum of the module's branch widths)
    "Mixed_5b": (1, 256), "Mixed_5c": (1, 288), "Mixed_5d": (1, 288),
    "Mixed_6a": (2, 768), "Mixed_6b": (2, 768), "Mixed_6c": (2, 768), "Mixed_6d": (2, 768), "Mixed_6e": (2, 768),
    "Mixed_7a": (3, 1280), "Mixed_7b": (3, 2048), "Mixed_7c": (3, 2048),
}


class AttentionInceptionA(ThenAttention, inception.InceptionA):
    """InceptionA (35x35) followed by its attention module."""


class AttentionInceptionB(ThenAttention, inception.InceptionB):
    """InceptionB (grid reduction to 17x17) followed by its attention module."""


class AttentionInceptionC(ThenAttention, inception.InceptionC):
    """InceptionC (17x17, factorised 7x7) followed by its attention module."""


class AttentionInceptionD(ThenAttention, inception.InceptionD):
    """InceptionD (grid reduction to 8x8) followed by its attention module."""


class AttentionInceptionE(ThenAttention, inception.InceptionE):
    """InceptionE (8x8, expanded filter bank) followed by its attention module."""


_SUBCLASS = {
    inception.InceptionA: AttentionInceptionA, inception.InceptionB: AttentionInceptionB,
    inception.InceptionC: AttentionInceptionC, inception.InceptionD: AttentionInceptionD,
    inception.InceptionE: AttentionInceptionE,
}


def inception_blocks(model: nn.Module) -> list[tuple[str, int]]:
    return [(name, stage) for name, (stage, _) in UNITS.items()]


def build(arch: str, num_classes: int, variant: str, attention: BlockAttention | None) -> nn.Module:
    del arch, variant
    model = inception.inception_v3(num_classes=num_classes, aux_logits=True, init_weights=True)
    if attention is None:
        return model
    places = positions([stage for stage, _ in UNITS.values()])
    for (name, (_, width)), (stage, index, count) in zip(UNITS.items(), places, strict=True):
        if not attention.selects(stage, index, count):
            continue
        unit = getattr(model, name)
        if attention.slot == "conv":
            for child, layer in list(unit.named_children()):
                if isinstance(layer, inception.BasicConv2d) and is_3x3_same(layer.conv):
                    replace_conv(unit, child, attention, stage, nn.ReLU)
        else:
            attach(unit, _SUBCLASS[type(unit)], attention, width, stage)
    return model
