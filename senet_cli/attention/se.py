"""Squeeze-and-Excitation, with the ablations of the SENet and ECA-Net papers.

Paper: "Squeeze-and-Excitation Networks", Hu, Shen, Albanie, Sun, Wu (CVPR 2018, TPAMI 2019),
https://arxiv.org/abs/1709.01507

The block computes s = F_ex(F_sq(u)) and returns u * s, per channel (paper eq. 2-4):
F_sq is global average pooling; F_ex is delta(W1 z) followed by sigma(W2 .) with W1: C -> C/r,
delta = ReLU, W2: C/r -> C, sigma = sigmoid. As in the official Caffe models, the Cadene and timm
ports, W1 and W2 are 1x1 convolutions with bias, stored as `fc1` and `fc2`; with these names and
shapes a timm `seresnet50` state dict loads into our `se_resnet50` unchanged.

Ablations, each a keyword:
  squeeze     "avg" (paper), "max" (Table 11), "none" (NoSqueeze, Table 16: the FCs become 1x1
              convs applied at full resolution, so the gate varies per position);
  excitation  "mlp" (paper), and the ECA-Net paper's Table 2 variants: "none" (SE-Var1: pool then
              gate, no parameters), "channelwise" (SE-Var2: one weight per channel, C params),
              "fc" (SE-Var3: one C x C layer), "group" (SE-GC: one C x C layer in `groups` groups);
  gate        "sigmoid" (paper), "tanh", "relu" (Table 12), "hardsigmoid";
  bias        the FC biases of "mlp" (True, as the released models; the seeds use bias=False).
The ECA variants have no bias, as in the ECA-Net paper's parameter counts (C, C^2, C^2/G).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, make_gate, reduced_channels
from senet_cli.attention.spec import StageKeys, infer_ratio, ratio_note
from senet_cli.errors import OptionError, UnknownChoiceError
from senet_cli.options import EXCITATIONS, SQUEEZES


class SqueezeExcitation(AttentionModule):
    """SE block: u * gate(excite(squeeze(u))), gate per channel (per position with squeeze="none")."""

    def __init__(
        self,
        channels: int,
        ratio: int = 16,
        *,
        bias: bool = True,
        squeeze: str = "avg",
        excitation: str = "mlp",
        gate: str = "sigmoid",
        groups: int = 16,
    ) -> None:
        super().__init__()
        if squeeze not in SQUEEZES:
            raise UnknownChoiceError("SE squeeze", squeeze, SQUEEZES)
        if excitation not in EXCITATIONS:
            raise UnknownChoiceError("SE excitation", excitation, EXCITATIONS)
        self.squeeze = squeeze
        self.excitation = excitation
        if excitation == "mlp":
            reduced = reduced_channels(channels, ratio)
            self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1, bias=bias)
            self.act = nn.ReLU(inplace=True)
            self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1, bias=bias)
        elif excitation == "channelwise":
            self.fc = nn.Conv2d(channels, channels, kernel_size=1, groups=channels, bias=False)
        elif excitation == "fc":
            self.fc = nn.Conv2d(channels, channels, kernel_size=1, bias=False)
        elif excitation == "group":
            if channels % groups:
                raise OptionError(
                    "groups", groups, f"a divisor of {channels}",
                    f"excitation 'group' needs channels divisible by groups: {channels} % {groups} != 0",
                )
            self.fc = nn.Conv2d(channels, channels, kernel_size=1, groups=groups, bias=False)
        self.gate = make_gate(gate)

    def _squeeze(self, x: torch.Tensor) -> torch.Tensor:
        if self.squeeze == "avg":
            return x.mean((2, 3), keepdim=True)
        if self.squeeze == "max":
            return x.amax((2, 3), keepdim=True)
        return x

    def _excite(self, z: torch.Tensor) -> torch.Tensor:
        if self.excitation == "mlp":
            return self.fc2(self.act(self.fc1(z)))
        if self.excitation == "none":
            return z
        return self.fc(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self._excite(self._squeeze(x)))



def infer_options(stage_keys: StageKeys, stage_count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Excitation, bias, groups and ratio from the weights' shapes (see AttentionSpec.infer_options).

    Squeeze (avg/max/none) and gate leave the shapes unchanged; excitation "none" has no weights.
    """
    first = next(iter(stage_keys.values()))
    if "fc1.weight" in first:
        ratios = infer_ratio(stage_keys, "fc1.weight")
        return [{"excitation": "mlp", "bias": "fc1.bias" in first, "ratio": r} for r in ratios[:1]], ratio_note(ratios)
    if "fc.weight" in first:
        channels, per_group = first["fc.weight"][:2]
        if per_group == 1:
            return [{"excitation": "channelwise"}], []
        if per_group == channels:
            return [{"excitation": "fc"}], []
        return [{"excitation": "group", "groups": channels // per_group}], []
    return [], []
