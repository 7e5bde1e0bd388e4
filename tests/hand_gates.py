"""Gates written by hand, the shapes the structural finder and the inspect oracle must recognise:
an SE (`x * sigmoid(conv(mean(x)))`) and timm's ECA layout (a [B, 1, C] gate viewed and expanded).

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
