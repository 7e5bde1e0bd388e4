"""The CIFAR SENet-18 most tutorials train (kuangliu/pytorch-cifar, `models/senet.py`, and its many
copies): a 3x3 stride-1 stem without max-pool, torchvision-like basic blocks whose SE layers sit in
the block itself (`fc1`, `fc2`: 1x1 convs with bias, planes // 16 wide), the projection shortcut
as `shortcut.0/1`, and the classifier as `linear`. Its post-activation `BasicBlock` computes
exactly our `se_resnet18_cifar` (11,263,042 parameters at 10 classes): BN, SE on the residual,
add, ReLU; its 4x4 average pool is the global pool at 32x32 inputs.

The same file's `PreActBlock` (BN and ReLU before each conv, shortcut without BN; what its
`SENet18()` builds) has other shapes (the first BN of a stage's first block is as wide as the
block's input) and no zoo model: it is recognised and refused in one line.
"""

from __future__ import annotations

from typing import Any

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts._keys import KeyTable, blocks_per_stage, reduction_ratio
from senet_cli.errors import ArchitectureError
from senet_cli.options import ModelConfig
from senet_cli.zoo import make_config

TABLE = KeyTable((
    ("layer{s}.{b}.fc1.{p}", "layer{s}.{b}.se.fc1.{p}"),
    ("layer{s}.{b}.fc2.{p}", "layer{s}.{b}.se.fc2.{p}"),
    ("layer{s}.{b}.shortcut.{i}.{p}", "layer{s}.{b}.downsample.{i}.{p}"),
    ("linear.{p}", "fc.{p}"),
))
_DEPTHS: dict[tuple[int, ...], str] = {(2, 2, 2, 2): "resnet18_cifar", (3, 4, 6, 3): "resnet34_cifar"}


def claims(shapes: Shapes) -> bool:
    return "linear.weight" in shapes and "conv1.weight" in shapes and "layer1.0.fc1.weight" in shapes


def to_senet(state: StateDict) -> Mapped:
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    if shapes["layer2.0.bn1.weight"][0] != shapes["layer2.0.conv1.weight"][0]:
        raise ArchitectureError(
            "its blocks are pre-activation (PreActBlock: BN and ReLU before each conv) and the zoo's ResNets are "
            "post-activation, so none computes it (the BasicBlock SENet is se_resnet18_cifar)", arguments=(),
        )
    blocks = blocks_per_stage(shapes)
    backbone = _DEPTHS.get(blocks)
    if backbone is None:
        raise ArchitectureError("its {blocks} blocks per stage fit no zoo backbone (2,2,2,2 or "
                                "3,4,6,3)", arguments=(), blocks=blocks)
    config = make_config(f"se_{backbone}", ratio=reduction_ratio(shapes, "fc1.weight"),
                         num_classes=shapes["linear.weight"][0], bias="layer1.0.fc1.bias" in shapes)
    return Mapped(config, TABLE.to_ours(state), ("tutorial SENet: SE layers of each block moved into its `se` module",))


def from_senet(config: ModelConfig, state: StateDict) -> dict[str, Any]:
    return TABLE.to_foreign(state)


CIFAR_TUTORIAL = register_layout(Layout(
    name="cifar-tutorial",
    repository="kuangliu/pytorch-cifar (models/senet.py, BasicBlock)",
    covers="SENet18 (BasicBlock) = se_resnet18_cifar; the 3,4,6,3 variant = se_resnet34_cifar",
    claims=claims,
    to_senet=to_senet,
    from_senet=from_senet,
))
