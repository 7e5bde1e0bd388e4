"""moskomule's `senet.pytorch` (moskomule/senet.pytorch, `senet/se_resnet.py`, `senet/se_module.py`):
torchvision's ResNet with an `SELayer` per block as `se`, whose excitation is a Sequential of two
bias-free Linear layers (`se.fc.0`: [C/16, C], `se.fc.2`: [C, C/16]) between ReLU and sigmoid.
Blocks are torchvision's (stride on the 3x3, v1.5), SE after the last BN before the add: our
`se_resnet18..152` with `bias=False`, the Linear weights as 1x1 convs ([C', C] -> [C', C, 1, 1]).

The same file's CIFAR ResNet-20/32/56 (three stages of 16, 32, 64 channels) has no zoo backbone:
recognised and refused in one line.
"""

from __future__ import annotations

from typing import Any

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts._keys import RESNET_DEPTHS, KeyTable, blocks_per_stage, reduction_ratio
from senet_cli.errors import ArchitectureError
from senet_cli.options import ModelConfig
from senet_cli.zoo import make_config

TABLE = KeyTable((
    ("layer{s}.{b}.se.fc.0.{p}", "layer{s}.{b}.se.fc1.{p}"),
    ("layer{s}.{b}.se.fc.2.{p}", "layer{s}.{b}.se.fc2.{p}"),
))
_LINEAR_WEIGHTS = (".se.fc1.weight", ".se.fc2.weight")  # ours, as 1x1 convs


def claims(shapes: Shapes) -> bool:
    return any(key.endswith(".se.fc.0.weight") and len(shape) == 2 for key, shape in shapes.items())


def to_senet(state: StateDict) -> Mapped:
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    blocks = blocks_per_stage(shapes)
    if len(blocks) != 4:
        raise ArchitectureError("it is the CIFAR SE-ResNet ({stages} stages of 16-64 channels, se_resnet20/32/56), "
                                "which has no zoo backbone", arguments=(), stages=len(blocks))
    bottleneck = "layer1.0.conv3.weight" in shapes
    depth = RESNET_DEPTHS.get((bottleneck, blocks))
    if depth is None:
        raise ArchitectureError("its {blocks} blocks per stage fit no zoo depth",
                                arguments=(), blocks=blocks)
    config = make_config(f"se_resnet{depth}", ratio=reduction_ratio(shapes, "se.fc.0.weight"),
                         num_classes=shapes["fc.weight"][0], bias="layer1.0.se.fc.0.bias" in shapes)
    renamed = TABLE.to_ours(state)
    mapped = {key: (value.reshape(*value.shape, 1, 1) if key.endswith(_LINEAR_WEIGHTS) else value)
              for key, value in renamed.items()}
    return Mapped(config, mapped, ("senet.pytorch's SE Linear layers [C', C] taken as 1x1 convs [C', C, 1, 1]",))


def from_senet(config: ModelConfig, state: StateDict) -> dict[str, Any]:
    flat = {key: (value.reshape(value.shape[:2]) if key.endswith(_LINEAR_WEIGHTS) else value)
            for key, value in state.items()}
    return TABLE.to_foreign(flat)


MOSKOMULE = register_layout(Layout(
    name="moskomule",
    repository="moskomule/senet.pytorch (senet/se_resnet.py)",
    covers="se_resnet18/34/50/101/152 (ImageNet) = our se_resnet* with bias=False",
    claims=claims,
    to_senet=to_senet,
    from_senet=from_senet,
))
