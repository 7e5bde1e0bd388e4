"""Convolutional Block Attention Module.

Paper: "CBAM: Convolutional Block Attention Module", Woo, Park, Lee, Kweon (ECCV 2018),
https://arxiv.org/abs/1807.06521

Channel attention M_c = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F))) with one MLP shared by both
pooled vectors (C -> C/r -> C, with biases), then spatial attention
M_s = sigmoid(BN(conv_kxk([MaxPool_c(F'); AvgPool_c(F')]))) over the channel-pooled maps, applied
in sequence: F'' = M_s(F') * F' with F' = M_c(F) * F (paper eq. 1).

Parameter names follow the official implementation (Jongchan/attention-module), so its
checkpoints load without renaming: the block attribute `cbam`, sub-modules `ChannelGate.mlp`
(Flatten, Linear, ReLU, Linear: keys `mlp.1`, `mlp.3`) and `SpatialGate.spatial` (a bias-free
conv `conv` and a BatchNorm `bn` with momentum 0.01). The spatial gate adds 2*k*k + 2 parameters
per block (100 for k=7).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, ConvBN, channel_pool, make_gate, reduced_channels
from senet_cli.attention.spec import StageKeys, infer_ratio, ratio_note
from senet_cli.errors import OptionError


class ChannelGate(nn.Module):
    """Channel attention: a shared MLP over the average- and max-pooled channel descriptors."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        reduced = reduced_channels(channels, ratio)
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(channels, reduced), nn.ReLU(), nn.Linear(reduced, channels)
        )
        self.gate = make_gate("sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        return x * self.gate(logits)[:, :, None, None]


class SpatialGate(nn.Module):
    """Spatial attention: a k x k conv over [max over channels; mean over channels]."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.spatial = ConvBN(2, 1, kernel_size)
        self.gate = make_gate("sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.spatial(channel_pool(x)))


class CBAM(AttentionModule):
    """Channel gate, then (unless `spatial=False`) spatial gate."""

    def __init__(self, channels: int, ratio: int = 16, *, spatial_kernel: int = 7, spatial: bool = True) -> None:
        super().__init__()
        if spatial_kernel not in (3, 7):
            raise OptionError("spatial_kernel", spatial_kernel, "7 (paper) or 3",
                              f"CBAM spatial_kernel must be 7 (paper) or 3, got {spatial_kernel}")
        # Attribute names are the official checkpoint's keys, hence CamelCase.
        self.ChannelGate = ChannelGate(channels, ratio)
        self.SpatialGate = SpatialGate(spatial_kernel) if spatial else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ChannelGate(x)
        return self.SpatialGate(x) if self.SpatialGate is not None else x



def infer_options(stage_keys: StageKeys, stage_count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Ratio from the channel MLP's first layer; the spatial gate's presence and kernel from its conv."""
    first = next(iter(stage_keys.values()))
    if "ChannelGate.mlp.1.weight" not in first:
        return [], []
    ratios = infer_ratio(stage_keys, "ChannelGate.mlp.1.weight")
    spatial = first.get("SpatialGate.spatial.conv.weight")
    options: dict[str, Any] = {"spatial": spatial is not None}
    if spatial is not None:
        options["spatial_kernel"] = spatial[-1]
    return [{**options, "ratio": r} for r in ratios[:1]], ratio_note(ratios)
