"""The attention modules of the zoo, registered by name.

Each module's class lives in its own file, one per paper; this catalogue is torch-free and names
the class by import path, so listing and name checks stay instant. A spec says where the module
sits (`slot`, `block_rule`, `stage_rule`; see spec.py), its options and its default reduction ratio.
"""

from __future__ import annotations

from senet_cli.attention.spec import BLOCK_RULES, SLOTS, STAGE_RULES, AttentionSpec, stages_by_rule
from senet_cli.options import EXCITATIONS, GATE_NAMES, SQUEEZES, OptionSpec
from senet_cli.registry import Registry

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
    infer="senet_cli.attention.cbam:infer_options",
))

ATTENTION.add("bam", AttentionSpec(
    name="bam",
    title="BAM: Bottleneck Attention Module",
    paper="https://arxiv.org/abs/1807.06514",
    module="senet_cli.attention.bam:BAM",
    options=(OptionSpec("dilation", "int", 4, "dilation of the spatial branch's two 3x3 convs", minimum=1),),
    uses_ratio=True,
    slot="after",
    block_rule="last",
    stage_rule="all_but_last",
    slot_note="at the bottlenecks, where the map is about to be down-sampled",
))

ATTENTION.add("danet", AttentionSpec(
    name="danet",
    title="Dual Attention Network (position + channel attention modules)",
    paper="https://arxiv.org/abs/1809.02983",
    module="senet_cli.attention.danet:DualAttention",
    options=(),
    uses_ratio=True,
    default_ratio=8,
    slot="after",
    block_rule="last",
    stage_rule="last",
    slot_note="position attention is quadratic in H*W (N^2 (C/8 + C) MACs), so only the smallest maps "
              "by default",
))

ATTENTION.add("nonlocal", AttentionSpec(
    name="nonlocal",
    title="Non-local Neural Networks (embedded Gaussian)",
    paper="https://arxiv.org/abs/1711.07971",
    module="senet_cli.attention.non_local:NonLocal",
    options=(
        OptionSpec("every", "int", 2, "one block after every n-th block (1: every block, the paper's 10-block "
                   "setup)", minimum=1),
        OptionSpec("sub_sample", "bool", True, "max-pool phi and g by 2 (quarters the pairwise cost)"),
        OptionSpec("bn", "bool", True, "BN after W, zero-initialised (false: W itself starts at zero)"),
    ),
    uses_ratio=True,
    default_ratio=2,
    slot="after",
    block_rule="every",
    stage_rule="middle",
    zoo_options=("every",),
    slot_note="the paper's ResNet-50 5-block setup; quadratic in H*W",
    infer="senet_cli.attention.non_local:infer_options",
))

ATTENTION.add("gc", AttentionSpec(
    name="gc",
    title="GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond",
    paper="https://arxiv.org/abs/1904.11492",
    module="senet_cli.attention.gc:GlobalContext",
    options=(
        OptionSpec("pooling", "str", "att", "context pooling: attention map or global average", ("att", "avg")),
        OptionSpec("fusion", "str", "add", "how the context enters: add, mul (a sigmoid gate) or both",
                   ("add", "mul", "add+mul")),
    ),
    uses_ratio=True,
    stage_rule="all_but_first",
    slot_note="GCNet's c3-c5",
    infer="senet_cli.attention.gc:infer_options",
))

ATTENTION.add("ge", AttentionSpec(
    name="ge",
    title="Gather-Excite: Exploiting Feature Context in Convolutional Neural Networks",
    paper="https://arxiv.org/abs/1810.12348",
    module="senet_cli.attention.ge:GatherExcite",
    options=(
        OptionSpec("extent", "int", 0, "gather extent: 0 = global, else 2, 4, 8 ...", minimum=0),
        OptionSpec("parametric", "bool", False, "depthwise-conv gather (GE-theta) instead of pooling (GE-theta-)"),
        OptionSpec("mlp", "bool", False, "an SE-style MLP after the gather (GE-theta+; uses the ratio)"),
    ),
    uses_ratio=True,
    infer="senet_cli.attention.ge:infer_options",
    shape_free=("extent",),
))

ATTENTION.add("sk", AttentionSpec(
    name="sk",
    title="Selective Kernel Networks",
    paper="https://arxiv.org/abs/1903.06586",
    module="senet_cli.attention.sk:SelectiveKernel",
    options=(
        OptionSpec("branches", "int", 2, "kernel branches: 3x3 with dilation 1, 2, ... (3x3, 5x5, ...)", minimum=2),
        OptionSpec("min_channels", "int", 32, "L, the floor of the attention width d = max(C/r, L)", minimum=1),
        OptionSpec("split_input", "bool", False, "split the input channels across the branches (timm's "
                   "skresnet18/34)"),
    ),
    uses_ratio=True,
    slot="conv",
    marker="attn.fc_select.weight",
    infer="senet_cli.attention.sk:infer_options",
))

ATTENTION.add("coord", AttentionSpec(
    name="coord",
    title="Coordinate Attention for Efficient Mobile Network Design",
    paper="https://arxiv.org/abs/2103.02907",
    module="senet_cli.attention.coord:CoordinateAttention",
    options=(OptionSpec("min_channels", "int", 8, "floor of the middle width m = max(C/r, 8)", minimum=1),),
    uses_ratio=True,
    default_ratio=32,
    slot_note="the official MobileNetV2 puts it after the depthwise conv of units 2-17: placement inner, "
              "stages 2-5",
))

ATTENTION.add("simam", AttentionSpec(
    name="simam",
    title="SimAM: A Simple, Parameter-Free Attention Module",
    paper="https://proceedings.mlr.press/v139/yang21o.html",
    module="senet_cli.attention.simam:SimAM",
    options=(OptionSpec("e_lambda", "float", 1e-4, "lambda of the energy function"),),
    uses_ratio=False,
    slot_note="the official ResNets put it after the 3x3 conv instead: placement inner",
    shape_free=("e_lambda",),
))

ATTENTION.add("triplet", AttentionSpec(
    name="triplet",
    title="Rotate to Attend: Convolutional Triplet Attention Module",
    paper="https://arxiv.org/abs/2010.03045",
    module="senet_cli.attention.triplet:TripletAttention",
    options=(
        OptionSpec("kernel_size", "int", 7, "kernel of each branch's 2->1 conv", minimum=1),
        OptionSpec("spatial", "bool", True, "keep the (H, W) branch (false: the official no_spatial)"),
    ),
    uses_ratio=False,
    infer="senet_cli.attention.triplet:infer_options",
))

ATTENTION.add("srm", AttentionSpec(
    name="srm",
    title="SRM: A Style-based Recalibration Module for Convolutional Neural Networks",
    paper="https://arxiv.org/abs/1903.10829",
    module="senet_cli.attention.srm:SRM",
    options=(),
    uses_ratio=False,
))

__all__ = ["ATTENTION", "BLOCK_RULES", "SLOTS", "STAGE_RULES", "AttentionSpec", "stages_by_rule"]
