"""Coordinate attention's official MobileNetV2 (houqb/CoordAttention, mbv2_ca.py, `mbv2_ca`).

Its architecture differs from our default `coord_mobilenet_v2` (3,546,310 parameters, the module
on every unit's output width): the official one puts CoordAtt inside each unit that has an
expansion layer, after the depthwise conv's BN and ReLU6 and before the projection, on the expanded
width, and none in the first unit. That is our placement "inner" on stages 2-5:
`coord_mobilenet_v2` with placement=inner, stages=2,3,4,5, 3,950,648 parameters, as mbv2_ca.

Key table (its units are flat Sequentials; ours are torchvision's nested ones):
  features.0.{0,1}                        -> features.0.{0,1} (stem)
  features.1.conv.{0,1}, .3, .4           -> features.1.conv.0.{0,1}, .1, .2 (no expansion)
  features.N.conv.{0,1}, .{3,4}, .7, .8   -> features.N.conv.0.{0,1}, .1.{0,1}, .2, .3
  features.N.conv.6.{conv1,bn1}           -> features.N.coord.{conv1,bn1}
  features.N.conv.6.{conv2,conv3}         -> features.N.coord.{conv_h,conv_w} (coordatt.py's names too)
  conv.{0,1}                              -> features.18.{0,1} (the last 1x1 conv)
  classifier.1                            -> classifier.1
conv2 gates the height (x_h), conv3 the width (x_w), as our conv_h and conv_w.
"""

from __future__ import annotations

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts.official_common import any_key, classes, rename
from senet_cli.errors import ArchitectureError

NAME = "official-coord-mobilenet_v2"
RULES = (
    (r"features\.1\.conv\.([01])\.(.*)", r"features.1.conv.0.\1.\2"),
    (r"features\.1\.conv\.3\.(.*)", r"features.1.conv.1.\1"),
    (r"features\.1\.conv\.4\.(.*)", r"features.1.conv.2.\1"),
    (r"features\.(\d+)\.conv\.([01])\.(.*)", r"features.\1.conv.0.\2.\3"),
    (r"features\.(\d+)\.conv\.3\.(.*)", r"features.\1.conv.1.0.\2"),
    (r"features\.(\d+)\.conv\.4\.(.*)", r"features.\1.conv.1.1.\2"),
    (r"features\.(\d+)\.conv\.6\.(conv2|conv_h)\.(.*)", r"features.\1.coord.conv_h.\3"),
    (r"features\.(\d+)\.conv\.6\.(conv3|conv_w)\.(.*)", r"features.\1.coord.conv_w.\3"),
    (r"features\.(\d+)\.conv\.6\.(.*)", r"features.\1.coord.\2"),
    (r"features\.(\d+)\.conv\.7\.(.*)", r"features.\1.conv.2.\2"),
    (r"features\.(\d+)\.conv\.8\.(.*)", r"features.\1.conv.3.\2"),
    (r"conv\.([01])\.(.*)", r"features.18.\1.\2"),
)


def claims(shapes: Shapes) -> bool:
    return "conv.0.weight" in shapes and any_key(shapes, r"features\.\d+\.conv\.6\.conv1\.weight")


def to_senet(state: StateDict) -> Mapped:
    from senet_cli.checkpoint.layouts.official_common import shapes_of
    from senet_cli.zoo import make_config

    shapes = shapes_of(state)
    if shapes.get("features.0.0.weight") != (32, 3, 3, 3) or shapes.get("conv.0.weight", ())[:1] != (1280,):
        raise ArchitectureError("an {layout} checkpoint with width multiplier other than 1.0 (stem {stem}); the zoo "
                                "builds MobileNetV2 1.0", arguments=(), layout=NAME, closest=None,
                                stem=list(shapes.get("features.0.0.weight", ())))
    mid, expanded = shapes["features.2.conv.6.conv1.weight"][:2]
    config = make_config("coord_mobilenet_v2", placement="inner", stages=(2, 3, 4, 5),
                         ratio=32 if mid == max(8, expanded // 32) else expanded // mid,
                         num_classes=classes(shapes, "classifier.1.weight"))
    notes = ("CoordAtt inside units 2-17 after the depthwise conv -> coord at placement inner, stages 2-5",
             "conv2/conv3 -> conv_h/conv_w; flat unit Sequentials -> torchvision's nested ones; conv -> features.18")
    return Mapped(config=config, state_dict=rename(state, RULES), notes=notes)


LAYOUT = register_layout(Layout(
    name=NAME, repository="houqb/CoordAttention", covers="MobileNetV2 1.0 with coordinate attention (`mbv2_ca`)",
    claims=claims, to_senet=to_senet,
))
