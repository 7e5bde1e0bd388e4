"""Triplet attention's official ResNets (landskape-ai/triplet-attention, MODELS/resnet.py, the model its
`train_imagenet.py` trains) and MobileNetV2 (MODELS/mobilenet.py).

Key table: the backbone is torchvision's (stride on the 3x3 conv, our v1.5; a 3x3 stem without
max-pool for CIFAR), the module is `layerS.I.triplet_attention` on the residual branch after the
last BN (our standard placement). Its three branches have two spellings: MODELS/triplet_attention.py
names them `ChannelGateH`, `ChannelGateW`, `SpatialGate`, each a `spatial` conv + BN; the newer
root triplet_attention.py names them `cw`, `hc`, `hw`, each a `conv` conv + BN, as ours do.
ChannelGateH pools over H of the (B, H, C, W) permutation: our `cw`; ChannelGateW pools over W of
(B, W, H, C): our `hc`; SpatialGate is `hw`.

The MobileNetV2 keeps torchvision's names and appends the module to each unit's conv sequence after
the projection BN (`features.1.conv.3`, `features.N.conv.4`): our "branch" slot, `features.N.triplet`.
"""

from __future__ import annotations

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts.official_common import any_key, classes, rename, resnet_backbone

NAME = "official-triplet"
BLOCK = r"(layer\d\.\d+)\.triplet_attention\."
RULES = (
    (BLOCK + r"ChannelGateH\.spatial\.(.*)", r"\1.triplet.cw.conv.\2"),
    (BLOCK + r"ChannelGateW\.spatial\.(.*)", r"\1.triplet.hc.conv.\2"),
    (BLOCK + r"SpatialGate\.spatial\.(.*)", r"\1.triplet.hw.conv.\2"),
    (BLOCK + r"(cw|hc|hw)\.conv\.(.*)", r"\1.triplet.\2.conv.\3"),
)


def claims(shapes: Shapes) -> bool:
    return "fc.weight" in shapes and any_key(shapes, BLOCK + r"(ChannelGateH\.spatial|cw\.conv)\.conv\.weight")


def to_senet(state: StateDict) -> Mapped:
    from senet_cli.checkpoint.layouts.official_common import shapes_of
    from senet_cli.zoo import make_config

    renamed = rename(state, RULES)
    shapes = shapes_of(renamed)
    backbone = resnet_backbone(shapes, NAME)
    branch = next(shape for key, shape in shapes.items() if key.endswith(".triplet.cw.conv.conv.weight"))
    spatial = any(key.endswith(".triplet.hw.conv.conv.weight") for key in shapes)
    config = make_config(f"triplet_{backbone}", kernel_size=branch[-1], spatial=spatial,
                         num_classes=classes(shapes, "fc.weight"))
    spelling = "ChannelGateH/ChannelGateW/SpatialGate" if any_key(state, BLOCK + r"ChannelGateH\..*") else "cw/hc/hw"
    notes = (f"triplet_attention ({spelling}) -> triplet (cw/hc/hw)",)
    return Mapped(config=config, state_dict=renamed, notes=notes)


MOBILE_NAME = "official-triplet-mobilenet_v2"
MOBILE_UNIT = r"(features\.\d+)\.conv\.[34]\."
MOBILE_RULES = tuple((rule.replace(BLOCK, MOBILE_UNIT), target) for rule, target in RULES)


def claims_mobile(shapes: Shapes) -> bool:
    return "classifier.1.weight" in shapes and any_key(
        shapes, MOBILE_UNIT + r"(ChannelGateH\.spatial|cw\.conv)\.conv\.weight")


def to_senet_mobile(state: StateDict) -> Mapped:
    from senet_cli.checkpoint.layouts.official_common import shapes_of
    from senet_cli.errors import ArchitectureError
    from senet_cli.zoo import make_config

    renamed = rename(state, MOBILE_RULES)
    shapes = shapes_of(renamed)
    if shapes.get("features.0.0.weight") != (32, 3, 3, 3):
        raise ArchitectureError("an {layout} checkpoint with width multiplier other than 1.0 (stem {stem}); the zoo "
                                "builds MobileNetV2 1.0", arguments=(), layout=MOBILE_NAME, closest=None,
                                stem=list(shapes.get("features.0.0.weight", ())))
    branch = shapes["features.1.triplet.cw.conv.conv.weight"]
    spatial = "features.1.triplet.hw.conv.conv.weight" in shapes
    config = make_config("triplet_mobilenet_v2", kernel_size=branch[-1], spatial=spatial,
                         num_classes=classes(shapes, "classifier.1.weight"))
    return Mapped(config=config, state_dict=renamed,
                  notes=("features.N.conv.{3,4} (Triplet attention at the end of the unit's conv sequence) -> "
                         "features.N.triplet (cw/hc/hw)",))


LAYOUT = register_layout(Layout(
    name=NAME, repository="landskape-ai/triplet-attention",
    covers="Triplet attention ResNet-18/34/50/101, ImageNet and CIFAR (`ResidualNet(..., 'TripletAttention')`)",
    claims=claims, to_senet=to_senet,
))

MOBILE_LAYOUT = register_layout(Layout(
    name=MOBILE_NAME, repository="landskape-ai/triplet-attention",
    covers="Triplet attention MobileNetV2 1.0 (`triplet_attention_mobilenet_v2`)",
    claims=claims_mobile, to_senet=to_senet_mobile,
))
