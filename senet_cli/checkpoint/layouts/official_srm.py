"""SRM's official ResNets (hyunjaelee410/style-based-recalibration-module, models/resnet.py with
`recalibration_type='srm'`).

Key table: the backbone is torchvision's (stride on the 3x3 conv, our v1.5), the module is
`layerS.I.rclb` on the residual branch after the last BN (our standard placement). Its channel-wise
FC is a raw parameter `rclb.cfc` [C, 2] (z_c = cfc[c, 0] * mean_c + cfc[c, 1] * std_c); ours is the
same product as a depthwise Conv1d, `srm.cfc.weight` [C, 1, 2]. Its BN is a BatchNorm2d over
[B, C, 1, 1], ours a BatchNorm1d over [B, C, 1]: the same keys and shapes. Both use the unbiased
standard deviation.
"""

from __future__ import annotations

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts.official_common import classes, rename, resnet_backbone

NAME = "official-srm"
CFC = r"(layer\d\.\d+)\.rclb\.cfc"
RULES = ((CFC, r"\1.srm.cfc.weight"), (r"(layer\d\.\d+)\.rclb\.bn\.(.*)", r"\1.srm.bn.\2"))


def claims(shapes: Shapes) -> bool:
    import re

    cfc = re.compile(CFC)
    return "fc.weight" in shapes and any(cfc.fullmatch(key) and len(shape) == 2 for key, shape in shapes.items())


def to_senet(state: StateDict) -> Mapped:
    from senet_cli.checkpoint.layouts.official_common import shapes_of
    from senet_cli.zoo import make_config

    renamed = rename(state, RULES)
    for key, value in renamed.items():
        if key.endswith(".srm.cfc.weight"):
            renamed[key] = value.unsqueeze(1)  # [C, 2] -> [C, 1, 2]: one kernel-2 filter per channel
    shapes = shapes_of(renamed)
    config = make_config(f"srm_{resnet_backbone(shapes, NAME)}", num_classes=classes(shapes, "fc.weight"))
    return Mapped(config=config, state_dict=renamed, notes=("rclb.cfc [C, 2] -> srm.cfc.weight [C, 1, 2]",
                                                            "rclb.bn -> srm.bn"))


LAYOUT = register_layout(Layout(
    name=NAME, repository="hyunjaelee410/style-based-recalibration-module",
    covers="SRM-ResNet-18/34/50/101/152 (`resnet(depth, recalibration_type='srm')`)",
    claims=claims, to_senet=to_senet,
))
