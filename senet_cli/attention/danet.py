"""Dual attention: DANet's position and channel attention modules.

Paper: "Dual Attention Network for Scene Segmentation", Fu, Liu, Tian, Li, Bao, Fang, Lu
(CVPR 2019), https://arxiv.org/abs/1809.02983

Position attention (PAM, paper eq. 1-2): with N = H*W positions, queries and keys are 1x1 convs
to C/8 channels, values a 1x1 conv to C; S = softmax(Q^T K) is N x N, and E = gamma * V S^T + A.
Channel attention (CAM, eq. 3-4): X = softmax(max(A A^T) - A A^T) is C x C over the flattened
features, E = gamma * X A + A. Both gammas start at 0, so each module starts as the identity.

Cost: PAM's two matrix products take N^2 (C/8 + C) MACs and its softmax N^2 ops; CAM's take
2 C^2 N. Both are quadratic in something: PAM in the number of positions, so at 224x224 input a
ResNet's last stage (7x7) costs little while layer1 (56x56, N = 3136) would cost 2.1 GMACs per
module. The zoo therefore places it on the last stage by default, after its last block, where
DANet's head meets the backbone.

Layout as the official code (junfu1115/DANet, encoding/nn/da_att.py): `pam.query_conv`,
`pam.key_conv`, `pam.value_conv`, `pam.gamma`, `cam.gamma`; `ratio` is the query/key reduction
(8 in the paper). The paper's head sums the two modules' outputs after separate 3x3 convs; as an
attention module in a backbone we sum the two attention terms on one shared residual,
out = A + gamma_p * PAM-term + gamma_c * CAM-term, which is the identity at initialisation, as
each official module is.
"""

from __future__ import annotations

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, reduced_channels


class PositionAttention(nn.Module):
    """PAM: every position attends to every other, weighted by query-key similarity."""

    def __init__(self, channels: int, ratio: int = 8) -> None:
        super().__init__()
        reduced = reduced_channels(channels, ratio)
        self.query_conv = nn.Conv2d(channels, reduced, kernel_size=1)
        self.key_conv = nn.Conv2d(channels, reduced, kernel_size=1)
        self.value_conv = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """gamma * V S^T, without the residual."""
        batch, channels, height, width = x.shape
        query = self.query_conv(x).flatten(2).transpose(1, 2)  # [B, N, C/r]
        key = self.key_conv(x).flatten(2)  # [B, C/r, N]
        attention = self.softmax(torch.bmm(query, key))  # [B, N, N]
        value = self.value_conv(x).flatten(2)  # [B, C, N]
        out = torch.bmm(value, attention.transpose(1, 2)).view(batch, channels, height, width)
        return self.gamma * out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(x) + x


class ChannelAttention(nn.Module):
    """CAM: every channel attends to every other, weighted by (inverted) feature correlation."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        flat = x.flatten(2)  # [B, C, N]
        energy = torch.bmm(flat, flat.transpose(1, 2))  # [B, C, C]
        attention = self.softmax(energy.amax(-1, keepdim=True) - energy)
        out = torch.bmm(attention, flat).view(batch, channels, height, width)
        return self.gamma * out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(x) + x


class DualAttention(AttentionModule):
    """x + PAM-term + CAM-term (see the module doc for why one shared residual)."""

    def __init__(self, channels: int, ratio: int = 8) -> None:
        super().__init__()
        self.pam = PositionAttention(channels, ratio)
        self.cam = ChannelAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pam.attend(x) + self.cam.attend(x)
