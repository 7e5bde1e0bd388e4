"""Attention classes of other libraries, recognised by class in models from outside the zoo.

Torch-free data: each entry names a class by import path (imported only when a model is searched,
and skipped when its library or that class is not installed, so timm stays optional), says what
the module does to its input (`role`, one of ROLES) and which of its submodules output the tensor
that multiplies the features (`gates`, paths relative to the module), so that `count` knows what
"the same model without attention" is and `inspect` knows which tensor to hook.

timm's entries are every class its `timm.layers.create_attn` builds (timm 1.0: se, ese, eca, ecam,
ceca, ge, gc, gca, cbam, lcbam, coord, scoord, ela, strip, sk, splat, lambda, bottleneck, halo, nl,
bat), plus the SqueezeExcite of its EfficientNet/MobileNet blocks and the channels-last SE.
torchvision's one attention class is `torchvision.ops.SqueezeExcitation` (EfficientNet, MobileNetV3,
RegNetY). The zoo's own modules (subclasses of senet_cli.attention.base.AttentionModule) are
recognised by that base class; a user's own classes are named by the caller and taken as gates.
A class in no table is still found when it behaves as attention (senet_cli/outside/structure.py):
this table is the fast path, names the role of conv-replacing modules, and names the gates of
modules that cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = {
    # What a module's output is; decides the pass-through that stands for "no attention".
    "gate": "scales its input by a gate: the model without it replaces it by nn.Identity",
    "residual": "adds a term computed from its input to the input: the model without it replaces it by "
                "nn.Identity",
    "conv": "replaces a convolution (its output is not its input scaled): no pass-through stands for it",
}


@dataclass(frozen=True)
class ForeignAttention:
    """One recognised attention class of another library."""

    reference: str  # "package.module:Class"
    role: str  # a ROLES key
    gates: tuple[str, ...] = ("gate",)  # submodules whose outputs multiply the features ("" none)
    paper: str = ""

    @property
    def class_name(self) -> str:
        return self.reference.rpartition(":")[2]


_TIMM = "timm.layers"
FOREIGN_ATTENTION = (
    ForeignAttention("torchvision.ops.misc:SqueezeExcitation", "gate", ("scale_activation",),
                     "https://arxiv.org/abs/1709.01507"),
    ForeignAttention(f"{_TIMM}.squeeze_excite:SEModule", "gate", paper="https://arxiv.org/abs/1709.01507"),
    ForeignAttention(f"{_TIMM}.squeeze_excite:EffectiveSEModule", "gate", paper="https://arxiv.org/abs/1911.06667"),
    ForeignAttention(f"{_TIMM}.squeeze_excite:SqueezeExciteCl", "gate", paper="https://arxiv.org/abs/1709.01507"),
    ForeignAttention("timm.models._efficientnet_blocks:SqueezeExcite", "gate",
                     paper="https://arxiv.org/abs/1709.01507"),
    ForeignAttention(f"{_TIMM}.eca:EcaModule", "gate", paper="https://arxiv.org/abs/1910.03151"),
    ForeignAttention(f"{_TIMM}.eca:CecaModule", "gate", paper="https://arxiv.org/abs/1910.03151"),
    ForeignAttention(f"{_TIMM}.cbam:CbamModule", "gate", ("channel.gate", "spatial.gate"),
                     "https://arxiv.org/abs/1807.06521"),
    # LightChannelAttn calls F.sigmoid, not its `gate`: only the spatial gate is a module.
    ForeignAttention(f"{_TIMM}.cbam:LightCbamModule", "gate", ("spatial.gate",), "https://arxiv.org/abs/1807.06521"),
    ForeignAttention(f"{_TIMM}.gather_excite:GatherExcite", "gate", paper="https://arxiv.org/abs/1810.12348"),
    # fuse_scale multiplies by `gate`, fuse_add adds a term: either way the input passes through.
    ForeignAttention(f"{_TIMM}.global_context:GlobalContext", "gate", paper="https://arxiv.org/abs/1904.11492"),
    # One `gate` applied twice (height, then width): its statistics pool both.
    ForeignAttention(f"{_TIMM}.coord_attn:CoordAttn", "gate", paper="https://arxiv.org/abs/2103.02907"),
    ForeignAttention(f"{_TIMM}.coord_attn:SimpleCoordAttn", "gate", paper="https://arxiv.org/abs/2103.02907"),
    ForeignAttention(f"{_TIMM}.coord_attn:EfficientLocalAttn", "gate"),
    ForeignAttention(f"{_TIMM}.coord_attn:StripAttn", "gate"),
    ForeignAttention(f"{_TIMM}.non_local_attn:NonLocalAttn", "residual", (), "https://arxiv.org/abs/1711.07971"),
    ForeignAttention(f"{_TIMM}.non_local_attn:BatNonLocalAttn", "residual", ()),
    # SK's branch weights: `attn` (SelectiveKernelAttn) returns the softmax over the branches, [B, M, C, 1, 1].
    ForeignAttention(f"{_TIMM}.selective_kernel:SelectiveKernel", "conv", ("attn",), "https://arxiv.org/abs/1903.06586"),
    ForeignAttention(f"{_TIMM}.split_attn:SplitAttn", "conv", ("rsoftmax",), "https://arxiv.org/abs/2004.08955"),
    ForeignAttention(f"{_TIMM}.lambda_layer:LambdaLayer", "conv", (), "https://arxiv.org/abs/2102.08602"),
    ForeignAttention(f"{_TIMM}.bottleneck_attn:BottleneckAttn", "conv", (), "https://arxiv.org/abs/2101.11605"),
    ForeignAttention(f"{_TIMM}.halo_attn:HaloAttn", "conv", (), "https://arxiv.org/abs/2103.12731"),
)

OWN_ROLE_BY_SLOT = {"conv": "conv"}
"""The zoo's own modules: a "conv"-slot module (SK) replaces a conv; every other slot is a gate."""

USER_ROLE = "gate"
"""A class the caller names is taken as a gate on its input (nn.Identity is the model without it)."""

# A gate's range (sigmoid [0, 1], tanh [-1, 1]) is looked up by class name in the one table of
# senet_cli/attention/base.py (GATE_RANGES), for the zoo's gates and these libraries' alike.
