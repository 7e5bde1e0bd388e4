"""Gates written by hand, the shapes the structural finder and the inspect oracle must recognise:
an SE (`x * sigmoid(conv(mean(x)))`), timm's ECA layout (a [B, 1, C] gate viewed and expanded) and
SK's branch form with its weights from a softmax module.

Imported by tests/test_gates_outside.py and tests/test_inspect_outside_sweep.py as
`from hand_gates import ...` (tests/ is on sys.path under pytest's default import mode, as for
conftest.py).
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeGate(nn.Module):
    """An SE gate written by hand: x * sigmoid(fc(mean(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))


class ExpandedGate(nn.Module):
    """timm's ECA shape: a [B, 1, C] gate viewed to [B, C, 1, 1], then expand_as(x) (stride 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.conv(x.mean((2, 3)).view(x.shape[0], 1, -1))).view(x.shape[0], -1, 1, 1)
        return x * y.expand_as(x)


class SoftmaxBranches(nn.Module):
    """SK's form: two branch convs weighed by a softmax module over them (as timm's SK, whose `attn`
    returns the weights), summed over the branches."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.paths = nn.ModuleList([nn.Conv2d(channels, channels, k, padding=k // 2) for k in (1, 3)])
        self.fc = nn.Conv2d(channels, 2 * channels, 1)
        self.attn = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = torch.stack([path(x) for path in self.paths], dim=1)  # [B, 2, C, H, W]
        logits = self.fc(branches.sum(1).mean((2, 3), keepdim=True)).view(x.shape[0], 2, -1, 1, 1)
        return (branches * self.attn(logits)).sum(dim=1)
