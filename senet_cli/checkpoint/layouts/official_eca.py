"""ECA-Net's official MobileNetV2 (BangguWu/ECANet, models/eca_mobilenetv2.py, `eca_mobilenet_v2`).

Key table: torchvision's MobileNetV2 names (`features.0.0`, `features.N.conv.0.0`, ...,
`features.18`, `classifier.1`), with the ECA layer appended to each unit's conv sequence, after
the projection BN: `features.1.conv.3` (the first unit has no expansion) and `features.N.conv.4`.
That is our "branch" slot (before the residual add), stored as `features.N.eca`. The kernel is 1
for units of at most 96 channels and 3 above (units 14-17, our stage 5): `k_size=1,1,1,1,3`.
"""

from __future__ import annotations

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts.official_common import classes, rename
from senet_cli.errors import ArchitectureError

NAME = "official-eca-mobilenet_v2"
RULES = ((r"features\.(\d+)\.conv\.[34]\.conv\.weight", r"features.\1.eca.conv.weight"),)
UNITS_PER_STAGE = (1, 2, 3, 7, 4)
"""torchvision MobileNetV2's 17 units by stage (a stride-2 unit opens one), as backbones/mobile.py."""


def claims(shapes: Shapes) -> bool:
    return len(shapes.get("features.1.conv.3.conv.weight", ())) == 3 and "features.2.conv.4.conv.weight" in shapes


def to_senet(state: StateDict) -> Mapped:
    from senet_cli.checkpoint.layouts.official_common import shapes_of
    from senet_cli.zoo import make_config

    shapes = shapes_of(state)
    if shapes.get("features.0.0.weight") != (32, 3, 3, 3):
        raise ArchitectureError("an {layout} checkpoint with width multiplier other than 1.0 (stem {stem}); the zoo "
                                "builds MobileNetV2 1.0", arguments=(), layout=NAME, closest=None,
                                stem=list(shapes.get("features.0.0.weight", ())))
    kernels, unit = [], 1
    for count in UNITS_PER_STAGE:
        sizes = {(shapes.get(f"features.{n}.conv.3.conv.weight") or shapes[f"features.{n}.conv.4.conv.weight"])[-1]
                 for n in range(unit, unit + count)}
        if len(sizes) != 1:
            raise ArchitectureError("an {layout} checkpoint whose ECA kernels differ within a stage ({sizes}); the "
                                    "zoo takes one per stage", arguments=(), layout=NAME, closest=None,
                                    sizes=sorted(sizes))
        kernels.append(sizes.pop())
        unit += count
    config = make_config("eca_mobilenet_v2", k_size=tuple(kernels),
                         num_classes=classes(shapes, "classifier.1.weight"))
    notes = ("features.N.conv.{3,4} (ECA at the end of the unit's conv sequence) -> features.N.eca",
             f"k_size per stage {kernels}")
    return Mapped(config=config, state_dict=rename(state, RULES), notes=notes)


LAYOUT = register_layout(Layout(
    name=NAME, repository="BangguWu/ECANet", covers="ECA-MobileNetV2 1.0 (`eca_mobilenet_v2`)",
    claims=claims, to_senet=to_senet,
))
