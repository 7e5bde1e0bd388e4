"""timm's Selective Kernel ResNets (huggingface/pytorch-image-models, `timm/models/sknet.py` and
`timm/layers/selective_kernel.py`): `skresnet18`, `skresnet34`, `skresnext50_32x4d` (and the
untrained `skresnet50`).

The SK unit's own keys are ours already (`paths.{i}.conv/bn`, `attn.fc_reduce/bn/fc_select`; our
module follows timm's). What differs are the block's other convs, timm's ConvNormAct modules: a
basic block's second conv is `conv2.conv` + `conv2.bn` (ours `conv2` + `bn2`), a bottleneck's
first and third `conv1.conv/bn`, `conv3.conv/bn`. The configurations, from sknet.py: skresnet18/34
reduce the attention to max(C/8, 16) and split the input channels across the two branches
(`split_input`); skresnext50_32x4d reduces to max(C/16, 32) without a split, as the SK paper;
skresnet50 to max(C/16, 8), split. timm's make_divisible rounding gives these widths exactly at
every stage (64 to 2048 channels).
"""

from __future__ import annotations

from typing import Any

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts._keys import RESNET_DEPTHS, KeyTable, blocks_per_stage, is_paper_module, last_block
from senet_cli.errors import ArchitectureError
from senet_cli.options import ModelConfig
from senet_cli.zoo import make_config

TABLE = KeyTable((
    ("layer{s}.{b}.conv{n}.conv.{p}", "layer{s}.{b}.conv{n}.{p}"),
    ("layer{s}.{b}.conv{n}.bn.{p}", "layer{s}.{b}.bn{n}.{p}"),
))
MODELS = {  # our backbone -> (timm's name, SK options as timm's sknet.py sets them)
    "resnet18": ("skresnet18", {"ratio": 8, "min_channels": 16, "split_input": True}),
    "resnet34": ("skresnet34", {"ratio": 8, "min_channels": 16, "split_input": True}),
    "resnet50": ("skresnet50", {"ratio": 16, "min_channels": 8, "split_input": True}),
    "resnext50_32x4d": ("skresnext50_32x4d", {"ratio": 16, "min_channels": 32, "split_input": False}),
}
_MARKER = ".attn.fc_select.weight"


def claims(shapes: Shapes) -> bool:
    if not any(key.endswith(_MARKER) for key in shapes):
        return False
    return any(key.startswith("layer1.0.conv") and key.endswith((".conv.weight", ".bn.weight"))
               and key.count(".") == 4 for key in shapes)


def _backbone(shapes: Shapes) -> str:
    blocks = blocks_per_stage(shapes)
    bottleneck = "layer1.0.conv3.conv.weight" in shapes
    depth = RESNET_DEPTHS.get((bottleneck, blocks))
    grouped = bottleneck and shapes["layer1.0.conv1.conv.weight"][0] == 128  # 32x4d: 128 wide in layer1
    name = f"resnext{depth}_32x4d" if grouped else f"resnet{depth}"
    if depth is None or name not in MODELS:
        raise ArchitectureError("its {blocks} blocks per stage fit none of timm's skresnet18/34/50, "
                                "skresnext50_32x4d", arguments=(), blocks=blocks)
    return name


def to_senet(state: StateDict) -> Mapped:
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    backbone = _backbone(shapes)
    timm_name, options = MODELS[backbone]
    groups = 32 if backbone.startswith("resnext") else 1
    conv = "conv2" if "layer1.0.conv3.conv.weight" in shapes else "conv1"  # the SK unit: the block's 3x3
    width, per_group = shapes[f"{last_block(shapes, 1)}.{conv}.paths.0.conv.weight"][:2]
    options = {**options, "split_input": per_group * 2 == width // groups}  # a share of the input per branch
    config = make_config(f"sk_{backbone}", num_classes=shapes["fc.weight"][0], **options)
    return Mapped(config, TABLE.to_ours(state), (f"timm's {timm_name} layout: ConvNormAct convs renamed",))


def from_senet(config: ModelConfig, state: StateDict) -> dict[str, Any]:
    return TABLE.to_foreign(state)


def writes(config: ModelConfig) -> str | None:
    entry = MODELS.get(config.backbone)
    if entry is None or config.variant != "v1.5":
        return None
    name, options = entry
    return name if is_paper_module(config, "sk", **options) else None


TIMM_SK = register_layout(Layout(
    name="timm-sk",
    repository="huggingface/pytorch-image-models (timm/models/sknet.py)",
    covers="skresnet18, skresnet34, skresnext50_32x4d (and skresnet50) = our sk_* with timm's SK options",
    claims=claims,
    to_senet=to_senet,
    from_senet=from_senet,
    target="timm",
    writes=writes,
))
