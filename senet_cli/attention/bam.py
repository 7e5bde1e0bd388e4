"""Bottleneck Attention Module.

Paper: "BAM: Bottleneck Attention Module", Park, Woo, Lee, Kweon (BMVC 2018),
https://arxiv.org/abs/1807.06514

BAM sits at a network's bottlenecks, where the feature map is about to be down-sampled: in a
ResNet after layer1, layer2 and layer3 (never inside every block). It infers a channel map M_c
(global average pool, then an MLP C -> C/r -> C with BatchNorm and ReLU) and a spatial map M_s
(1x1 reduction to C/r, two 3x3 convolutions of dilation d = 4, 1x1 to one channel, each but the
last with BN and ReLU) and refines F' = F + F * sigma(.) of them.

The paper (eq. 1-2) combines the two maps by a sum, M = sigma(M_c + M_s); the official code
(Jongchan/attention-module, MODELS/bam.py) multiplies them, F' = (1 + sigma(M_c * M_s)) * F. We
follow the code, as released models do, and store parameters under the official names
(`channel_att.gate_c.gate_c_fc_0`, `spatial_att.gate_s.gate_s_conv_di_0`, ...). The inner ReLUs
hold no weights, so they are named `relu_*` rather than the official `gate_c_relu_*`: only the
sigmoid is a gate (`gate`, the map M(F) in [0, 1]; the features are multiplied by 1 + M(F)), which
is the one tensor `senet inspect` hooks per module. The official
ResNet holds the three modules as `bam1..bam3` on the model; ours sit in the last block of each
stage (`layer1.2.bam`), so per-block counts show them where they run.
"""

from __future__ import annotations

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, make_gate, reduced_channels


class BAMChannelGate(nn.Module):
    """M_c: global average pool, then FC-BN-ReLU layers down to C/r and one FC back to C."""

    def __init__(self, channels: int, ratio: int, layers: int = 1) -> None:
        super().__init__()
        widths = [channels] + [reduced_channels(channels, ratio)] * layers + [channels]
        self.gate_c = nn.Sequential()
        self.gate_c.add_module("flatten", nn.Flatten())
        for i in range(len(widths) - 2):
            self.gate_c.add_module(f"gate_c_fc_{i}", nn.Linear(widths[i], widths[i + 1]))
            self.gate_c.add_module(f"gate_c_bn_{i + 1}", nn.BatchNorm1d(widths[i + 1]))
            self.gate_c.add_module(f"relu_c_{i + 1}", nn.ReLU())
        self.gate_c.add_module("gate_c_fc_final", nn.Linear(widths[-2], widths[-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate_c(x.mean((2, 3)))[:, :, None, None]  # [B, C, 1, 1]


class BAMSpatialGate(nn.Module):
    """M_s: 1x1 to C/r, `convs` dilated 3x3 convs, 1x1 to one channel (BN-ReLU after all but it)."""

    def __init__(self, channels: int, ratio: int, dilation: int = 4, convs: int = 2) -> None:
        super().__init__()
        reduced = reduced_channels(channels, ratio)
        self.gate_s = nn.Sequential()
        self.gate_s.add_module("gate_s_conv_reduce0", nn.Conv2d(channels, reduced, kernel_size=1))
        self.gate_s.add_module("gate_s_bn_reduce0", nn.BatchNorm2d(reduced))
        self.gate_s.add_module("relu_s_reduce0", nn.ReLU())
        for i in range(convs):
            self.gate_s.add_module(
                f"gate_s_conv_di_{i}",
                nn.Conv2d(reduced, reduced, kernel_size=3, padding=dilation, dilation=dilation),
            )
            self.gate_s.add_module(f"gate_s_bn_di_{i}", nn.BatchNorm2d(reduced))
            self.gate_s.add_module(f"relu_s_di_{i}", nn.ReLU())
        self.gate_s.add_module("gate_s_conv_final", nn.Conv2d(reduced, 1, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate_s(x)  # [B, 1, H, W]


class BAM(AttentionModule):
    """(1 + sigmoid(M_c(F) * M_s(F))) * F, as the official code computes it."""

    def __init__(self, channels: int, ratio: int = 16, *, dilation: int = 4) -> None:
        super().__init__()
        self.channel_att = BAMChannelGate(channels, ratio)
        self.spatial_att = BAMSpatialGate(channels, ratio, dilation)
        self.gate = make_gate("sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1 + self.gate(self.channel_att(x) * self.spatial_att(x)))
