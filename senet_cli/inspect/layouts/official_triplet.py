"""Triplet attention's official ResNets (landskape-ai/triplet-attention, MODELS/resnet.py, the model its
`train_imagenet.py` trains).

Key table: the backbone is torchvision's (stride on the 3x3 conv, our v1.5; a 3x3 stem without
max-pool for CIFAR), the module is `layerS.I.triplet_attention` on the residual branch after the
last BN (our standard placement). Its three branches have two spellings: MODELS/triplet_attention.py
names them `ChannelGateH`, `ChannelGateW`, `SpatialGate`, each a `spatial` conv + BN; the newer
root triplet_attention.py names them `cw`, `hc`, `hw`, each a `conv` conv + BN, as ours do.
ChannelGateH pools over H of the (B, H, C, W) permutation: our `cw`; ChannelGateW pools over W of
(B, W, H, C): our `hc`; SpatialGate is `hw`.
"""

from __future__ import annotations

from senet_cli.inspect.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.inspect.layouts.official_common import any_key, classes, rename, resnet_backbone

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
    from senet_cli.inspect.layouts.official_common import shapes_of
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


LAYOUT = register_layout(Layout(
    name=NAME, repository="landskape-ai/triplet-attention",
    covers="Triplet attention ResNet-18/34/50/101, ImageNet and CIFAR (`ResidualNet(..., 'TripletAttention')`)",
    claims=claims, to_senet=to_senet,
))
