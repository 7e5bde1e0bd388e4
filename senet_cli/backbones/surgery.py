"""Adding attention to a torchvision model after it is built, keeping every torchvision key.

torchvision's MobileNetV2, ShuffleNetV2, VGG and Inception v3 take no block factory, so the zoo
builds the plain model and then edits chosen units in place: an attention module becomes a new
child of the unit (`features.3.se`), and the unit's class is swapped for a subclass whose forward
places it. A "conv"-slot module (SK) takes the place of the 3x3 conv it replaces, under that
conv's name, and the conv's BN (and activation, which moves into SK's branches) become Identity.
Every torchvision key of the untouched layers survives, so `load_state_dict(strict=False)` of
torchvision weights fills the backbone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from senet_cli.backbones.spec import BlockAttention


class ThenAttention(nn.Module):
    """Mixin for a unit whose attention runs on its output: attention(unit(x))."""

    attention_attribute: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.attention_attribute)(super().forward(x))


class BranchOrAfter(nn.Module):
    """Mixin for a unit with a transformed path: attention on that path ("branch" slot, placed by
    the subclass's `forward_branch`) or on the unit's output ("after")."""

    attention_attribute: str
    attention_slot: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = getattr(self, self.attention_attribute)
        if self.attention_slot == "after":
            return attention(super().forward(x))
        return self.forward_branch(x, attention)

    def forward_branch(self, x: torch.Tensor, attention: nn.Module) -> torch.Tensor:
        raise NotImplementedError


def positions(stages: Sequence[int]) -> list[tuple[int, int, int]]:
    """(stage, index in stage, blocks in stage) for each unit, given each unit's stage in order."""
    counts: dict[int, int] = {}
    for stage in stages:
        counts[stage] = counts.get(stage, 0) + 1
    seen: dict[int, int] = {}
    result = []
    for stage in stages:
        result.append((stage, seen.get(stage, 0), counts[stage]))
        seen[stage] = seen.get(stage, 0) + 1
    return result


def attach(unit: nn.Module, subclass: type[nn.Module], attention: BlockAttention, channels: int, stage: int) -> None:
    """Give `unit` the attention module as a child and a forward that places it."""
    setattr(unit, attention.attribute, attention.build(channels, stage))
    unit.__class__ = subclass
    unit.attention_attribute = attention.attribute  # type: ignore[assignment]
    unit.attention_slot = attention.slot  # type: ignore[assignment]


def replace_conv(
    parent: nn.Module, name: str, attention: BlockAttention, stage: int, activation: Callable[[], nn.Module],
    absorbed: Sequence[str] = (),
) -> None:
    """Put the conv-slot module at `parent.name` (a Conv2d, or a block whose [0] or .conv is one),
    with the replaced conv's channels, stride and groups; the children in `absorbed` (its BN,
    activation) become Identity."""
    host = getattr(parent, name)
    conv = host if isinstance(host, nn.Conv2d) else (host[0] if isinstance(host, nn.Sequential) else host.conv)
    assert isinstance(conv, nn.Conv2d)  # as documented: every caller passes a Conv2d or a block holding one
    module = attention.build(conv.out_channels, stage, in_channels=conv.in_channels, stride=conv.stride[0],
                             groups=conv.groups, activation=activation)
    setattr(parent, name, module)
    for other in absorbed:
        setattr(parent, other, nn.Identity())


def is_3x3_same(conv: Any) -> bool:
    """A 3x3 conv that keeps the size at stride 1 (padding 1, no dilation): what SK can replace."""
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.padding == (1, 1)
            and conv.dilation == (1, 1))
