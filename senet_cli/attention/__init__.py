"""The attention modules of the zoo, registered by name.

Each module's class lives in its own file, one per paper (se.py, eca.py, cbam.py); this catalogue
is torch-free and names the class by import path, so listing and name checks stay instant.
"""

from __future__ import annotations

from senet_cli.attention.spec import AttentionSpec
from senet_cli.options import EXCITATIONS, GATE_NAMES, SQUEEZES, OptionSpec
from senet_cli.registry import Registry

_RESIDUAL_BRANCH = "each block: residual branch, after its last BN, before the add"

ATTENTION: Registry[AttentionSpec] = Registry("attention module")

ATTENTION.add("se", AttentionSpec(
    name="se",
    title="Squeeze-and-Excitation Networks",
    paper="https://arxiv.org/abs/1709.01507",
    module="senet_cli.attention.se:SqueezeExcitation",
    options=(
        OptionSpec("bias", "bool", True, "biases in the two FC layers of the 'mlp' excitation"),
        OptionSpec("squeeze", "str", "avg", "global pooling of the squeeze step (none = NoSqueeze)", SQUEEZES),
        OptionSpec("excitation", "str", "mlp", "the excitation (ECA-Net Table 2 ablations)", EXCITATIONS),
        OptionSpec("gate", "str", "sigmoid", "the final non-linearity (SENet Table 12)", GATE_NAMES),
        OptionSpec("groups", "int", 16, "groups of the 'group' excitation (SE-GC)", minimum=1),
    ),
    uses_ratio=True,
    placement=_RESIDUAL_BRANCH,
    infer="senet_cli.attention.se:infer_options",
    shape_free=("squeeze", "gate"),
))

ATTENTION.add("eca", AttentionSpec(
    name="eca",
    title="ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
    paper="https://arxiv.org/abs/1910.03151",
    module="senet_cli.attention.eca:EfficientChannelAttention",
    options=(
        OptionSpec("k_size", "optional_int_or_list", None,
                   "1-D kernel size: one odd int, one per stage, or none for the adaptive formula",
                   minimum=1),
        OptionSpec("gamma", "int", 2, "gamma of the adaptive kernel formula", minimum=1),
        OptionSpec("b", "int", 1, "b of the adaptive kernel formula"),
    ),
    uses_ratio=False,
    placement=_RESIDUAL_BRANCH,
    infer="senet_cli.attention.eca:infer_options",
))

ATTENTION.add("cbam", AttentionSpec(
    name="cbam",
    title="CBAM: Convolutional Block Attention Module",
    paper="https://arxiv.org/abs/1807.06521",
    module="senet_cli.attention.cbam:CBAM",
    options=(
        OptionSpec("spatial_kernel", "int", 7, "kernel of the spatial gate's conv (7 or 3)", minimum=1),
        OptionSpec("spatial", "bool", True, "keep the spatial gate (false: channel gate only)"),
    ),
    uses_ratio=True,
    placement=_RESIDUAL_BRANCH,
    infer="senet_cli.attention.cbam:infer_options",
))

__all__ = ["ATTENTION", "AttentionSpec"]
