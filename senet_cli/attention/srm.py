"""Style-based Recalibration Module.

Paper: "SRM: A Style-based Recalibration Module for Convolutional Neural Networks", Lee, Kim,
Nam (ICCV 2019), https://arxiv.org/abs/1903.10829

Style pooling takes each channel's mean and standard deviation over positions (a C x 2 "style");
style integration combines the two per channel with a channel-wise fully connected layer (a
depthwise 1-D conv of kernel 2, no bias: 2C weights), BN and a sigmoid, and the features are
scaled by the result (paper eq. 1-5). Parameters: 2C (CFC) + 2C (BN scale and shift) = 4C; the
paper's "6C" counts BN's running mean and variance too, which are buffers here.

Layout as the official code (hyunjaelee410/style-based-recalibration-module): `cfc`, `bn`; the
standard deviation is the unbiased one (torch.std's default), as there.
"""

from __future__ import annotations

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, make_gate


class SRM(AttentionModule):
    """x * sigmoid(BN(CFC([mean; std])))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.cfc = nn.Conv1d(channels, channels, kernel_size=2, groups=channels, bias=False)
        self.bn = nn.BatchNorm1d(channels)
        self.gate = make_gate("sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)  # [B, C, HW]
        style = torch.stack((flat.mean(-1), flat.std(-1)), dim=-1)  # [B, C, 2]
        return x * self.gate(self.bn(self.cfc(style)))[..., None]  # [B, C, 1] -> [B, C, 1, 1]
