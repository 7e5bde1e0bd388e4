"""Global context block.

Paper: "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond", Cao, Xu, Lin, Wei,
Hu (ICCV Workshops 2019), https://arxiv.org/abs/1904.11492

Context modelling as a simplified non-local block: one attention map over positions (a 1x1 conv
to one channel, softmax over H*W), the same for every query, pools the features into a C-vector;
a bottleneck transform (1x1 conv to C/r, LayerNorm, ReLU, 1x1 conv back to C) turns it into a
per-channel term that is added to every position (fusion "add", the paper's default) or, with
fusion "mul", applied as an SE-style sigmoid gate. Pooling "avg" replaces the attention map by
global average pooling (paper Table 2).

Layout as the official code (xvjiarui/GCNet, mmcv's ContextBlock): `conv_mask`,
`channel_add_conv.{0,1,3}`, `channel_mul_conv.{0,1,3}`; the last conv of the add branch starts at
zero, so the block starts as the identity. GCNet puts it after the last 1x1 conv of every
bottleneck in stages c3-c5 (our stages 2-4), which is the zoo's default.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, make_gate, reduced_channels
from senet_cli.attention.spec import StageKeys, infer_ratio
from senet_cli.errors import UnknownChoiceError

POOLINGS = ("att", "avg")
FUSIONS = ("add", "mul", "add+mul")


def _transform(channels: int, reduced: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, reduced, kernel_size=1),
        nn.LayerNorm([reduced, 1, 1]),
        nn.ReLU(inplace=True),
        nn.Conv2d(reduced, channels, kernel_size=1),
    )


class GlobalContext(AttentionModule):
    """x + transform(context(x)) (fusion add), or x * sigmoid(transform(context(x))) (mul)."""

    def __init__(self, channels: int, ratio: int = 16, *, pooling: str = "att", fusion: str = "add") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise UnknownChoiceError("GC pooling", pooling, POOLINGS)
        if fusion not in FUSIONS:
            raise UnknownChoiceError("GC fusion", fusion, FUSIONS)
        reduced = reduced_channels(channels, ratio)
        self.pooling = pooling
        self.conv_mask = nn.Conv2d(channels, 1, kernel_size=1) if pooling == "att" else None
        self.softmax = nn.Softmax(dim=2)
        self.channel_mul_conv = _transform(channels, reduced) if "mul" in fusion else None
        self.gate = make_gate("sigmoid") if "mul" in fusion else None
        self.channel_add_conv = _transform(channels, reduced) if "add" in fusion else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official last-zero init: the add branch's last conv starts at zero."""
        if self.channel_add_conv is not None:
            last = self.channel_add_conv[3]
            assert isinstance(last, nn.Conv2d) and last.bias is not None  # _transform's last layer
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, 1, 1]: features pooled by the attention map (or averaged)."""
        if self.conv_mask is None:
            return x.mean((2, 3), keepdim=True)
        batch, channels = x.shape[:2]
        weights = self.softmax(self.conv_mask(x).view(batch, 1, -1, 1))  # [B, 1, HW, 1]
        return torch.matmul(x.view(batch, 1, channels, -1), weights).view(batch, channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.context(x)
        out = x
        if self.channel_mul_conv is not None and self.gate is not None:
            out = out * self.gate(self.channel_mul_conv(context))
        if self.channel_add_conv is not None:
            out = out + self.channel_add_conv(context)
        return out


def infer_options(stage_keys: StageKeys, stage_count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Pooling (an attention mask or not), fusion (which transforms exist) and ratio from the keys."""
    first = next(iter(stage_keys.values()))
    branches = [name for name in ("add", "mul") if f"channel_{name}_conv.0.weight" in first]
    if not branches:
        return [], []
    key = f"channel_{branches[0]}_conv.0.weight"
    ratios = infer_ratio(stage_keys, key)
    options = {"pooling": "att" if "conv_mask.weight" in first else "avg", "fusion": "+".join(branches)}
    return [{**options, "ratio": r} for r in ratios[:1]], []
