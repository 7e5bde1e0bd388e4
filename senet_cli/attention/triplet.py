"""Triplet attention.

Paper: "Rotate to Attend: Convolutional Triplet Attention Module", Misra, Nalamada, Arasanipalai,
Hou (WACV 2021), https://arxiv.org/abs/2010.03045

Three branches capture the three pairs of dimensions: the tensor is rotated so that (C, W), (C, H)
and (H, W) become the spatial plane, Z-pooled (max and mean over the remaining dimension, 2 maps),
convolved by a 7x7 conv to one map with BN, gated by a sigmoid and rotated back; the three outputs
are averaged. Each branch adds one 2 -> 1 k x k conv without bias and a BN: 2k^2 + 2 parameters,
300 per module for k = 7, whatever the width.

Layout as the official code (landskape-ai/triplet-attention): branches `cw`, `hc`, `hw`, each
with `conv.conv` and `conv.bn` and its sigmoid in `gate`; `spatial=False` drops the `hw` branch
(the official no_spatial).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, ConvBN, channel_pool, make_gate
from senet_cli.attention.spec import StageKeys


class TripletGate(nn.Module):
    """Z-pool over dimension 1, k x k conv + BN to one map, sigmoid gate."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = ConvBN(2, 1, kernel_size)
        self.gate = make_gate("sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.conv(channel_pool(x)))


class TripletAttention(AttentionModule):
    """Mean of three rotated spatial gates: channel-width, height-channel, height-width."""

    def __init__(self, channels: int, *, kernel_size: int = 7, spatial: bool = True) -> None:
        super().__init__()
        del channels  # every branch sees a 2-channel Z-pool: the width does not matter
        self.cw = TripletGate(kernel_size)
        self.hc = TripletGate(kernel_size)
        self.hw = TripletGate(kernel_size) if spatial else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, C, H, W] -> [B, H, C, W]: H is pooled, the conv slides over (C, W).
        out_cw = self.cw(x.transpose(1, 2)).transpose(1, 2)
        # [B, C, H, W] -> [B, W, H, C]: W is pooled, the conv slides over (H, C).
        out_hc = self.hc(x.transpose(1, 3)).transpose(1, 3)
        if self.hw is None:
            return (out_cw + out_hc) / 2
        return (out_cw + out_hc + self.hw(x)) / 3


def infer_options(stage_keys: StageKeys, stage_count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The (H, W) branch's presence and the kernel size from the branch convs' keys."""
    first = next(iter(stage_keys.values()))
    if "cw.conv.conv.weight" not in first:
        return [], []
    return [{"spatial": "hw.conv.conv.weight" in first, "kernel_size": first["cw.conv.conv.weight"][-1]}], []
