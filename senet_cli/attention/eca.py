"""Efficient Channel Attention.

Paper: "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
Wang, Wu, Zhu, Li, Zuo, Hu (CVPR 2020), https://arxiv.org/abs/1910.03151

ECA replaces SE's two FC layers by one 1-D convolution of kernel k across the pooled channel
vector, without dimensionality reduction: k*1 parameters per block. The paper chooses k from the
channel count, k = psi(C) = |log2(C)/gamma + b/gamma|_odd with gamma=2, b=1 (eq. 12), which gives
k = 5, 5, 5, 7 for ResNet-50's 256, 512, 1024, 2048 channels. The official repository's ResNet
builders take a per-stage list instead (`k_size=[3, 3, 3, 3]` by default); pass `k_size` to get
that. The conv is stored as `conv` and the block attribute is `eca`, as in the official code.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, make_gate
from senet_cli.attention.spec import StageKeys
from senet_cli.errors import OptionError


def adaptive_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """The paper's eq. 12: the odd integer nearest above |log2(C)/gamma + b/gamma|, floored first."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class EfficientChannelAttention(AttentionModule):
    """ECA block: u * sigmoid(conv1d_k(GAP(u))), one gate per channel, k weights in all."""

    def __init__(self, channels: int, *, k_size: int | None = None, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        k = adaptive_kernel_size(channels, gamma, b) if k_size is None else k_size
        if k < 1 or k % 2 == 0:
            raise OptionError("k_size", k, "a positive odd integer",
                              f"ECA k_size must be a positive odd integer, got {k}")
        self.kernel_size = k
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)
        self.gate = make_gate("sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        pooled = x.mean((2, 3)).unsqueeze(1)  # [B, 1, C]: channels become the conv's length axis
        weights = self.conv(pooled).view(batch, channels, 1, 1)
        return x * self.gate(weights)



def infer_options(stage_keys: StageKeys, stage_count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The adaptive kernel (the paper's default) first; else the kernel sizes the weights hold."""
    kernels = {stage: keys["conv.weight"][-1] for stage, keys in stage_keys.items() if "conv.weight" in keys}
    if not kernels:
        return [], []
    sizes = set(kernels.values())
    fixed: Any = (
        sizes.pop() if len(sizes) == 1
        else tuple(kernels.get(s, min(kernels.values())) for s in range(1, stage_count + 1))
    )
    return [{}, {"k_size": fixed}], []
