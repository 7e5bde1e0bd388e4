"""What the zoo needs to know about a backbone, whatever its family. Torch-free: the builder is
named by import path and loaded on first build."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from senet_cli.registry import load_object

if TYPE_CHECKING:  # torch is imported by the builders, on first build
    from torch import nn


@dataclass(frozen=True)
class BlockAttention:
    """How a backbone's blocks get attention: what to build, where, in which stages and blocks.

    `build(channels, stage, **context)` returns the module; `attribute` is the name a block stores
    it under (`se`, `eca`, `cbam`). `slot` is "branch" (inside the block, at `placement`), "after"
    (on the block's output) or "conv" (the module replaces the block's 3x3 conv; `build` then takes
    the replaced conv's in_channels, stride, groups and activation as context). `selects(stage,
    index, count)` says whether block `index` of the `count` blocks of `stage` gets a module.
    """

    attribute: str
    build: Callable[..., Any]
    placement: str = "standard"
    stages: tuple[int, ...] = (1, 2, 3, 4)
    slot: str = "branch"
    selects_block: Callable[[int, int], bool] | None = None  # (index, count) -> bool; None: every block

    def selects(self, stage: int, index: int, count: int) -> bool:
        return stage in self.stages and (self.selects_block is None or self.selects_block(index, count))

    @property
    def block_placement(self) -> str:
        """The placement a residual block implements: the option's, or "post" for the "after" slot."""
        return "post" if self.slot == "after" else self.placement


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    builder: "package.module:function", called as function(arch, num_classes, variant, attention);
    block_lister: "package.module:function", called as function(model) -> [(module path, stage), ...]
    in forward order; member_lister (optional): function(model) -> {module path: block path} for
    modules outside every block path that belong to a block. min_input is the network's total
    stride: a smaller input collapses whole stages to one pixel, where the counts stop meaning what
    the papers mean.
    """

    name: str
    family: str
    description: str
    arch: str
    builder: str
    block_lister: str
    default_num_classes: int = 1000
    default_input: int = 224
    min_input: int = 32
    stage_count: int = 4
    placements: tuple[str, ...] = ("standard",)  # in-block placements of the "branch" slot it supports
    inner: str = ""  # where placement "inner" puts a branch module in this family's unit ("": not supported)
    variants: tuple[str, ...] = ("v1.5",)
    member_lister: str | None = None

    def build(self, num_classes: int, variant: str, attention: BlockAttention | None) -> nn.Module:
        return load_object(self.builder)(self.arch, num_classes, variant, attention)

    def block_paths(self, model: nn.Module) -> list[tuple[str, int]]:
        return load_object(self.block_lister)(model)

    def block_members(self, model: nn.Module) -> dict[str, str]:
        """Modules outside every block path that belong to a block (VGG's conv and BN belong to the
        unit that ends in their ReLU)."""
        return {} if self.member_lister is None else load_object(self.member_lister)(model)
