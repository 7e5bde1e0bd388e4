"""Selective Kernel convolution.

Paper: "Selective Kernel Networks", Li, Wang, Hu, Yang (CVPR 2019), https://arxiv.org/abs/1903.06586

An SK unit replaces a block's 3x3 convolution (it is not added beside it): M branches convolve
the same input with growing receptive fields (a 3x3 and a 5x5, the 5x5 done as a 3x3 of dilation
2, paper Sec. 3.1), each followed by BN and the host's activation; their sum is globally pooled,
reduced to d = max(C/r, L) channels (FC, BN, ReLU; r = 16, L = 32) and expanded to M x C logits,
and a softmax across the M branches weighs each channel of each branch (the `gate`). The branches
keep the replaced conv's stride and groups: 32 groups in SKNet-50 (a ResNeXt-50), depthwise in
MobileNet and ShuffleNet units.

Parameter layout as timm's SelectiveKernel (timm/layers/selective_kernel.py, which reproduces
SKNet-50's 27.5M parameters): `paths.{i}.conv`, `paths.{i}.bn`, `attn.fc_reduce`, `attn.bn`,
`attn.fc_select` (one d -> M*C conv, the paper's M matrices A, B, ... stacked). In a ResNet the unit
takes the replaced conv's name (`layer1.0.conv2` in a bottleneck, `conv1` in a basic block, as
timm's skresnet), so its rows count the whole unit, branches included, as attention.

`split_input` is timm's variation for skresnet18/34 (not in the paper): the input channels are split
evenly across the branches, each convolving its own share, which halves the branch weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, reduced_channels
from senet_cli.errors import OptionError


class SKBranch(nn.Module):
    """One branch: 3x3 conv of dilation d (padding d keeps the size), BN, the host's activation."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, groups: int, dilation: int,
                 activation: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation,
                              dilation=dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SKAttention(nn.Module):
    """Fuse (sum, global average pool), reduce to d channels, expand to M*C branch logits."""

    def __init__(self, channels: int, branches: int, reduced: int) -> None:
        super().__init__()
        self.fc_reduce = nn.Conv2d(channels, reduced, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(reduced)
        self.act = nn.ReLU(inplace=True)
        self.fc_select = nn.Conv2d(reduced, channels * branches, kernel_size=1, bias=False)
        self.branches = branches

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        batch, _, channels = stacked.shape[:3]
        fused = stacked.sum(1).mean((2, 3), keepdim=True)
        logits = self.fc_select(self.act(self.bn(self.fc_reduce(fused))))
        return logits.view(batch, self.branches, channels, 1, 1)


class SelectiveKernel(AttentionModule):
    """sum_m softmax_m(attention) * branch_m(x): a drop-in for a 3x3 conv + BN + activation."""

    def __init__(
        self,
        channels: int,
        ratio: int = 16,
        *,
        in_channels: int | None = None,
        stride: int = 1,
        groups: int = 1,
        activation: Callable[[], nn.Module] = nn.ReLU,
        branches: int = 2,
        min_channels: int = 32,
        split_input: bool = False,
    ) -> None:
        super().__init__()
        in_channels = channels if in_channels is None else in_channels
        if split_input and in_channels % branches:
            raise OptionError("split_input", split_input, f"branches dividing the {in_channels} input channels",
                              f"split_input needs the {in_channels} input channels divisible by {branches} branches")
        self.split = in_channels // branches if split_input else None
        branch_in = self.split or in_channels
        self.paths = nn.ModuleList(
            SKBranch(branch_in, channels, stride=stride, groups=groups, dilation=m + 1, activation=activation)
            for m in range(branches)
        )
        self.attn = SKAttention(channels, branches, reduced_channels(channels, ratio, min_channels))
        self.gate = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.split(self.split, dim=1) if self.split else [x] * len(self.paths)
        stacked = torch.stack([path(part) for path, part in zip(self.paths, inputs, strict=True)], dim=1)
        return (stacked * self.gate(self.attn(stacked))).sum(1)


RATIO_PREFERENCE = (16, 8, 4, 32, 2, 64, 1)
FLOOR_PREFERENCE = (32, 16, 8, 1)  # the paper's L = 32; timm's skresnet18/34 16, skresnet50 8


def infer_options(stage_keys: Mapping[int, Mapping[str, tuple[int, ...]]], stage_count: int
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    """Ratio and floor L from each stage's attention width d = max(C // r, L) (the paper's pair
    first), each with and without `split_input` (the exact comparison of the built model decides)."""
    widths = [shape[:2] for keys in stage_keys.values() for key, shape in keys.items()
              if key.endswith("attn.fc_reduce.weight")]  # keys sit under the replaced conv's name
    fits = [(ratio, floor) for ratio in RATIO_PREFERENCE for floor in FLOOR_PREFERENCE
            if widths and all(max(channels // ratio, floor) == reduced for reduced, channels in widths)]
    ratio, floor = fits[0] if fits else (16, 32)
    return [{"ratio": ratio, "min_channels": floor, "split_input": split} for split in (False, True)], []
