"""The registration record of an attention module: paper, options, placement, and where its class
lives. Torch-free, so `senet list` and name checks answer without importing torch."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from senet_cli.errors import SenetError, close_match_hint
from senet_cli.options import OptionSpec


@dataclass(frozen=True)
class AttentionSpec:
    """A registered attention module: how to build it and what to tell the user about it.

    `name` is the registry key, the model-name prefix (`se_resnet50`) and the attribute the block
    stores the module under (`layer1.0.se`), which is what the papers' official code calls it, so
    their checkpoints' keys line up.
    """

    name: str
    title: str
    paper: str
    module: str  # "package.module:Class", imported on first build
    options: tuple[OptionSpec, ...]
    uses_ratio: bool
    placement: str
    infer: str | None = None  # "package.module:function" reading options back from weight shapes
    shape_free: tuple[str, ...] = ()  # options that leave every weight shape unchanged

    def option_names(self) -> list[str]:
        return [option.name for option in self.options]

    def resolve_options(self, given: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        """Check user-given options against this module's specs; fill in defaults, in spec order."""
        specs = {option.name: option for option in self.options}
        for key in given:
            if key not in specs:
                accepted = ", ".join(specs) or "none"
                raise SenetError(
                    f"'{self.name}' has no option '{key}'"
                    f"{close_match_hint(key, specs)}; its options: {accepted}"
                )
        return tuple(
            (name, spec.coerce(given[name]) if name in given else spec.default)
            for name, spec in specs.items()
        )

    def build(
        self, channels: int, *, stage: int, ratio: int, options: tuple[tuple[str, Any], ...]
    ) -> Any:
        """Build the module for a block of `channels` channels in `stage` (1-4).

        An option given once per stage (a 4-tuple) is resolved to this stage's value here.
        """
        kwargs = {
            key: (value[stage - 1] if isinstance(value, tuple) else value) for key, value in options
        }
        if self.uses_ratio:
            if channels // ratio < 1:
                raise SenetError(
                    f"ratio {ratio} is larger than the {channels} channels of stage {stage}; "
                    f"use a ratio between 1 and {channels}"
                )
            kwargs["ratio"] = ratio
        return self.module_class()(channels, **kwargs)

    def module_class(self) -> Any:
        """The nn.Module class (imports torch)."""
        module_name, _, class_name = self.module.partition(":")
        return getattr(importlib.import_module(module_name), class_name)


    def infer_options(self, stage_keys: Mapping[int, Mapping[str, tuple[int, ...]]]) -> tuple[list[dict[str, Any]], list[str]]:
        """Options (and ratio) that give a checkpoint's attention weights, most likely first, plus notes.

        `stage_keys` maps each stage with attention to {key relative to the module: shape} of one
        of its blocks. A module without an `infer` function is detected with its defaults only.
        """
        if self.infer is None:
            return [{}], []
        module_name, _, function = self.infer.partition(":")
        return getattr(importlib.import_module(module_name), function)(stage_keys)


PREFERRED_RATIO = 16  # the SENet paper's choice, and every released SE/CBAM model's


def ratio_candidates(widths: Iterable[tuple[int, int]]) -> list[int]:
    """Every ratio r with channels // r == reduced for all (channels, reduced) pairs, 16 first.

    Integer division loses information: 64 channels reduced to 4 fit any r in 13..16. Deeper
    stages narrow the range (2048 -> 128 leaves only 16).
    """
    low, high = 1, None
    for channels, reduced in widths:
        if reduced < 1:
            return []
        low = max(low, channels // (reduced + 1) + 1)
        high = channels // reduced if high is None else min(high, channels // reduced)
    if high is None or low > high:
        return []
    fits = list(range(high, low - 1, -1))
    return sorted(fits, key=lambda r: r != PREFERRED_RATIO)
