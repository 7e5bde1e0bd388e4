"""Coordinate attention.

Paper: "Coordinate Attention for Efficient Mobile Network Design", Hou, Zhou, Feng (CVPR 2021),
https://arxiv.org/abs/2103.02907

Global pooling is factorised into two 1-D poolings, along the width (giving an H x 1 map per
channel) and along the height (1 x W), so the gates keep one coordinate of position. The two are
concatenated, transformed together by a 1x1 conv to m = max(8, C/r) channels (r = 32), BN and
h-swish, split again, and each expanded back to C by its own 1x1 conv and a sigmoid:
out = x * g_h * g_w (paper eq. 4-9).

Layout as the official code (houqb/CoordAttention): `conv1`, `bn1`, `conv_h`, `conv_w`; the two
sigmoids are `gate_h` and `gate_w`. Parameters: C*m + m + 2m (BN) + 2(m*C + C).
"""

from __future__ import annotations

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, make_gate, reduced_channels


class CoordinateAttention(AttentionModule):
    """x * sigmoid(conv_h(f_h)) * sigmoid(conv_w(f_w)), f = h-swish(BN(conv1([pool_w x; pool_h x])))."""

    def __init__(self, channels: int, ratio: int = 32, *, min_channels: int = 8) -> None:
        super().__init__()
        mid = reduced_channels(channels, ratio, min_channels)
        self.conv1 = nn.Conv2d(channels, mid, kernel_size=1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mid, channels, kernel_size=1)
        self.conv_w = nn.Conv2d(mid, channels, kernel_size=1)
        self.gate_h = make_gate("sigmoid")
        self.gate_w = make_gate("sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        along_h = x.mean(3, keepdim=True)  # [B, C, H, 1]
        along_w = x.mean(2, keepdim=True).transpose(2, 3)  # [B, C, W, 1]
        mixed = self.act(self.bn1(self.conv1(torch.cat((along_h, along_w), dim=2))))
        mixed_h, mixed_w = torch.split(mixed, [height, width], dim=2)
        gate_h = self.gate_h(self.conv_h(mixed_h))  # [B, C, H, 1]
        gate_w = self.gate_w(self.conv_w(mixed_w.transpose(2, 3)))  # [B, C, 1, W]
        return x * gate_w * gate_h
