"""Gather-Excite.

Paper: "Gather-Excite: Exploiting Feature Context in Convolutional Neural Networks", Hu, Shen,
Albanie, Sun, Vedaldi (NeurIPS 2018), https://arxiv.org/abs/1810.12348

A gather operator aggregates each channel over a spatial extent e; an excite operator resizes the
result back (nearest neighbour) and gates the features with a sigmoid. Variants (paper Sec. 3):
  GE-theta-  parameter-free gather: average pooling over the extent (kernel 2e-1, stride e), or
             global average pooling for `extent` 0 (the paper's best parameter-free model);
  GE-theta   parametric gather (`parametric`): log2(e) depthwise 3x3 stride-2 convs, each with BN
             (ReLU between them), 11 C parameters per conv;
  GE-theta+  either gather followed by an SE-style 1x1-conv MLP C -> C/r -> C (`mlp`).
The global parametric gather needs a depthwise conv as large as the feature map, which ties the
weights to one input size; it is refused here (pass an extent of 2, 4 or 8).

Layout as timm's GatherExcite (timm/layers/gather_excite.py): `gather.conv1`, `gather.norm1`, ...,
`mlp.fc1`, `mlp.fc2`, and the gate non-linearity in `gate`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from senet_cli.attention.base import AttentionModule, make_gate, reduced_channels
from senet_cli.attention.spec import StageKeys, infer_ratio
from senet_cli.errors import OptionError


class GatherMlp(nn.Module):
    """The GE-theta+ transform: 1x1 conv C -> C/r, ReLU, 1x1 conv back (both with bias)."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class GatherExcite(AttentionModule):
    """x * sigmoid(resize(transform(gather(x))))."""

    def __init__(
        self, channels: int, ratio: int = 16, *, extent: int = 0, parametric: bool = False, mlp: bool = False
    ) -> None:
        super().__init__()
        if extent < 0 or (extent and extent & (extent - 1)):
            raise OptionError("extent", extent, "0 (global) or a power of two",
                              f"GE extent must be 0 (global) or a power of two, got {extent}")
        if parametric and extent < 2:
            raise OptionError(
                "extent", extent, "2, 4 or 8 with parametric=true",
                "GE's parametric gather with global extent needs a conv as large as the feature map; "
                "use extent=2, 4 or 8 with parametric=true",
            )
        self.extent = extent
        self.gather: nn.Sequential | None = None
        if parametric:
            self.gather = nn.Sequential()
            steps = int(math.log2(extent))
            for i in range(1, steps + 1):
                self.gather.add_module(
                    f"conv{i}", nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=channels, bias=False)
                )
                self.gather.add_module(f"norm{i}", nn.BatchNorm2d(channels))
                if i < steps:
                    self.gather.add_module(f"act{i}", nn.ReLU(inplace=True))
        self.mlp = GatherMlp(channels, reduced_channels(channels, ratio)) if mlp else None
        self.gate = make_gate("sigmoid")

    def _gather(self, x: torch.Tensor) -> torch.Tensor:
        if self.gather is not None:
            return self.gather(x)
        if self.extent == 0:
            return x.mean((2, 3), keepdim=True)
        kernel = 2 * self.extent - 1
        return F.avg_pool2d(x, kernel, stride=self.extent, padding=kernel // 2, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gathered = self._gather(x)
        if self.mlp is not None:
            gathered = self.mlp(gathered)
        if gathered.shape[-2:] != (1, 1):
            gathered = F.interpolate(gathered, size=x.shape[-2:], mode="nearest")
        return x * self.gate(gathered)


def infer_options(stage_keys: StageKeys, stage_count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Parametric gather (its conv count gives the extent), the MLP and its ratio, from the keys.

    A pooling gather has no weights, so its extent is invisible; the default (global) is assumed.
    """
    first = next(iter(stage_keys.values()))
    convs = sum(1 for key in first if key.startswith("gather.conv"))
    options: dict[str, Any] = {"parametric": convs > 0, "mlp": "mlp.fc1.weight" in first}
    if convs:
        options["extent"] = 2**convs
    if not options["mlp"]:
        return [options], []
    ratios = infer_ratio(stage_keys, "mlp.fc1.weight")
    return [{**options, "ratio": r} for r in ratios[:1]], []
