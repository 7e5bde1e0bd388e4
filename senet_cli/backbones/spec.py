"""What the zoo needs to know about a backbone, whatever its family. Torch-free: the builder is
named by import path and loaded on first build."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BlockAttention:
    """How a backbone's blocks get attention: what to build, where in the block, in which stages.

    `build(channels, stage)` returns the module; `attribute` is the name the block stores it under
    (`se`, `eca`, `cbam`).
    """

    attribute: str
    build: Callable[[int, int], Any]
    placement: str = "standard"
    stages: tuple[int, ...] = (1, 2, 3, 4)


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    builder: "package.module:function", called as function(arch, num_classes, variant, attention);
    blocks: "package.module:function", called as function(model) -> [(module path, stage), ...] in
    forward order. fits: "package.module:function", called as function(arch, shapes) -> bool, a
    cheap test of whether a checkpoint's {key: shape} can be this backbone (checkpoint detection
    builds only the backbones that pass it). min_input is the network's total stride: a smaller input collapses whole stages
    to one pixel, where the counts stop meaning what the papers mean.
    """

    name: str
    family: str
    description: str
    arch: str
    builder: str
    blocks: str
    fits: str | None = None
    default_num_classes: int = 1000
    default_input: int = 224
    min_input: int = 32

    def build(self, num_classes: int, variant: str, attention: BlockAttention | None) -> Any:
        return _load(self.builder)(self.arch, num_classes, variant, attention)

    def block_paths(self, model: Any) -> list[tuple[str, int]]:
        return _load(self.blocks)(model)

    def may_fit(self, shapes: Any) -> bool:
        return True if self.fits is None else bool(_load(self.fits)(self.arch, shapes))


def _load(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
