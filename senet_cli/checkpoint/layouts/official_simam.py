"""SimAM's official ImageNet ResNets (ZjjConan/SimAM, networks/imagenet/resnet.py with
`attention_type='simam'`).

Key table: torchvision's ResNet (stride on the 3x3 conv, our v1.5), except that SimAM wraps the
block's 3x3 conv: `conv2 = Sequential(conv2, SimAM)`, so the conv's weight is `layerS.I.conv2.0.weight`
(a basic block's second 3x3 likewise). SimAM has no weights; the zoo model with placement "inner"
runs it at the same point (after conv2, before bn2), so mapping is renaming `conv2.0` -> `conv2`.
Its lambda is not in the weights: the released ImageNet models were trained with 0.1 (the
README's training commands set attention_param 0.1, and the checkpoint folders are named
param0.1), which is what we assume. (SimAM-MV2 puts SimAM between the depthwise conv and its BN,
a point the zoo's MobileNetV2 has no placement for: not claimed.)
"""

from __future__ import annotations

import re

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts.official_common import any_key, classes, rename, resnet_backbone

NAME = "official-simam"
RULES = ((r"(layer\d\.\d+)\.conv2\.0\.(.*)", r"\1.conv2.\2"),)
TORCHVISION_KEY = re.compile(
    r"(conv1|bn1|fc)\.[a-z_]+|layer\d\.\d+\.(conv[123]|bn[123]|downsample\.[01])\.[a-z_]+"
)
RELEASED_LAMBDA = 0.1


def claims(shapes: Shapes) -> bool:
    """`conv2.0.weight` in the blocks, and every other key a plain torchvision ResNet's."""
    if not any_key(shapes, r"layer\d\.\d+\.conv2\.0\.weight") or any_key(shapes, r"layer\d\.\d+\.conv2\.weight"):
        return False
    return all(TORCHVISION_KEY.fullmatch(key) for key in rename(dict.fromkeys(shapes), RULES))  # type: ignore[arg-type]


def to_senet(state: StateDict) -> Mapped:
    from senet_cli.checkpoint.layouts.official_common import shapes_of
    from senet_cli.zoo import make_config

    renamed = rename(state, RULES)
    shapes = shapes_of(renamed)
    config = make_config(f"simam_{resnet_backbone(shapes, NAME)}", placement="inner", e_lambda=RELEASED_LAMBDA,
                         num_classes=classes(shapes, "fc.weight"))
    notes = ("conv2 = Sequential(conv2, SimAM) -> conv2, with SimAM at placement inner (after the 3x3 conv)",
             f"e_lambda {RELEASED_LAMBDA} assumed (the released ImageNet models'; SimAM has no weights to say)")
    return Mapped(config=config, state_dict=renamed, notes=notes)


LAYOUT = register_layout(Layout(
    name=NAME, repository="ZjjConan/SimAM",
    covers="SimAM ResNet-18/34/50/101/152, ResNeXt-50 32x4d (networks/imagenet/resnet.py)",
    claims=claims, to_senet=to_senet,
))
