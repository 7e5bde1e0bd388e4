"""What the papers' official ResNet and MobileNetV2 layouts share: reading the backbone from the keys
and renaming keys by a table of patterns. Registers no layout of its own.

Every official ResNet here (BAM, Triplet attention, SRM, SimAM) names its stem, blocks and
classifier as torchvision does (`conv1`, `bn1`, `layer1.0.conv1`, `downsample.0`, `fc`), so once
the attention keys are renamed, the blocks per stage, the bottleneck's width and its groups say
which zoo backbone it is; a 3x3 stem (`conv1.weight` [64, 3, 3, 3]) is the CIFAR one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from senet_cli.checkpoint.layouts import Shapes
from senet_cli.errors import ArchitectureError

if TYPE_CHECKING:
    import torch

Rule = tuple[str, str]
"""(pattern, replacement) for `re.fullmatch` / `re.sub` on one key."""


def rename(state: Mapping[str, torch.Tensor], rules: Iterable[Rule]) -> dict[str, torch.Tensor]:
    """Each key through the first rule whose pattern matches it whole; a key no rule matches is kept."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        for pattern, replacement in compiled:
            if pattern.fullmatch(key):
                new = pattern.sub(replacement, key)
                break
        renamed[new] = value
    return renamed


def any_key(shapes: Mapping[str, Any], pattern: str) -> bool:
    """Whether some key matches `pattern` whole."""
    compiled = re.compile(pattern)
    return any(compiled.fullmatch(key) for key in shapes)


def blocks_per_stage(shapes: Shapes, prefix: str = "layer") -> list[int]:
    """Blocks in each of the four stages `layer1`..`layer4` (0 where a stage is absent)."""
    counts = []
    for stage in (1, 2, 3, 4):
        start = f"{prefix}{stage}."
        counts.append(len({key[len(start):].split(".")[0] for key in shapes if key.startswith(start)}))
    return counts


def resnet_backbone(shapes: Shapes, layout: str) -> str:
    """The zoo ResNet whose torchvision-named keys these are ("resnet50", "resnet18_cifar", ...).

    Raises ArchitectureError naming `layout` when the stem, depth or widths match none of them.
    """
    from senet_cli.backbones import BACKBONES
    from senet_cli.backbones.resnet import ARCHITECTURES, AttentionBottleneck

    stem = shapes.get("conv1.weight", ())
    layers = blocks_per_stage(shapes)
    bottleneck = "layer1.0.conv3.weight" in shapes
    conv2 = shapes.get("layer1.0.conv2.weight", ())
    if len(stem) == 4 and stem[2:] in ((7, 7), (3, 3)) and len(conv2) == 4:
        width, groups = conv2[0], conv2[0] // conv2[1]
        for name, (block, depths, options) in ARCHITECTURES.items():
            per_group, wanted_groups = options.get("width_per_group", 64), options.get("groups", 1)
            if (depths, block is AttentionBottleneck, groups) != (layers, bottleneck, wanted_groups):
                continue
            if width != (per_group * wanted_groups if bottleneck else 64):
                continue
            backbone = f"{name}_cifar" if stem[2:] == (3, 3) else name
            if backbone in BACKBONES:
                return backbone
    described = f"stem {list(stem)}, blocks per stage {layers}, {'bottleneck' if bottleneck else 'basic'} blocks"
    raise ArchitectureError(
        "a {layout} checkpoint of a ResNet the zoo does not build ({described}); the zoo has {backbones}",
        arguments=(), layout=layout, described=described, closest=None,
        backbones=", ".join(name for name in BACKBONES if name.startswith(("resnet", "resnext", "wide"))),
    )


def classes(shapes: Shapes, key: str) -> int:
    """The classifier's outputs: the first dimension of its weight `key`."""
    return int(shapes[key][0])


def shapes_of(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state.items()}
