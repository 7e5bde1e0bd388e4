"""The registration record of an attention module: paper, options, where it sits, and where its class
lives. Torch-free, so `senet list` and name checks answer without importing torch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from senet_cli.errors import OptionError, RatioTooLargeError, close_match_hint
from senet_cli.options import COMMON_OPTION_NAMES, OptionSpec
from senet_cli.registry import load_object

if TYPE_CHECKING:  # the module classes import torch on first build
    from torch import nn

SLOTS = {
    # Where a module sits in a unit, as `senet list` says it ({which}: the blocks it goes in); each
    # backbone family implements the three (backbones/*.py). "branch" is SENet Fig. 2-3: before the
    # add, or on the unit's output where there is no residual; the `placement` option (SENet Fig. 5)
    # moves a branch module within a residual block. "after" follows the add and its ReLU.
    "branch": "{which}: residual branch, after its last BN",
    "after": "after {which} of a stage",
    "conv": "replaces the block's 3x3 conv, BN and activation, in {which}",
}

BLOCK_RULES = {
    # Which blocks of a chosen stage get the module.
    "all": "every block",
    "last": "the last block",
    "every": "every `every`-th block",
}

STAGE_RULES = {
    # Default stages, as a rule on the backbone's stage count n (4 for a ResNet).
    "all": "every stage",
    "all_but_first": "every stage but the first (ResNet: 2-4)",
    "all_but_last": "every stage but the last, at its end (ResNet: after layer1-3)",
    "last": "the last stage",
    "middle": "the two stages before the last (ResNet: 2-3, the paper's res3-res4)",
}


def stages_by_rule(rule: str, count: int) -> tuple[int, ...]:
    """The stages a STAGE_RULES rule picks on a backbone of `count` stages."""
    stages = tuple(range(1, count + 1))
    picks = {
        "all": stages,
        "all_but_first": stages[1:] or stages,
        "all_but_last": stages[:-1] or stages,
        "last": stages[-1:],
        "middle": stages[-3:-1] or stages[:1],
    }
    return picks[rule]


StageKeys = Mapping[int, Mapping[str, tuple[int, ...]]]
"""A checkpoint's attention weights per stage: {stage: {key relative to the module: shape}}."""


@dataclass(frozen=True)
class AttentionSpec:
    """A registered attention module: how to build it and what to tell the user about it.

    `name` is the registry key, the model-name prefix (`se_resnet50`) and the attribute the block
    stores the module under (`layer1.0.se`), which is what the papers' official code calls it, so
    their checkpoints' keys line up. Where it sits: `slot` (a SLOTS key), `block_rule` (a
    BLOCK_RULES key) and `stage_rule` (a STAGE_RULES key, the default stages); `slot_note` says why
    there, when the paper gives a reason.
    """

    name: str
    title: str
    paper: str
    module: str  # "package.module:Class", imported on first build
    options: tuple[OptionSpec, ...]
    uses_ratio: bool
    slot_note: str = ""
    infer: str | None = None  # "package.module:function" reading options back from weight shapes
    shape_free: tuple[str, ...] = ()  # options that leave every weight shape unchanged
    slot: str = "branch"
    block_rule: str = "all"
    stage_rule: str = "all"
    default_ratio: int = 16
    zoo_options: tuple[str, ...] = ()  # options the zoo reads (block choice), not passed to the module
    marker: str | None = None  # a key suffix that identifies a "conv"-slot module at the conv's path

    def describe_slot(self) -> str:
        """One line for `senet list`: the slot, which blocks, which stages by default."""
        which = BLOCK_RULES[self.block_rule]
        parts = [SLOTS[self.slot].format(which=which), f"stages: {STAGE_RULES[self.stage_rule]}", self.slot_note]
        return "; ".join(part for part in parts if part)

    def selects_block(self, options: Mapping[str, Any], index: int, count: int) -> bool:
        """Whether block `index` (0-based) of a chosen stage of `count` blocks gets the module."""
        if self.block_rule == "last":
            return index == count - 1
        if self.block_rule == "every":
            every = int(options.get("every", 1))
            return index % every == every - 1 or (count < every and index == count - 1)
        return True

    def option_defaults(self) -> dict[str, Any]:
        return {option.name: option.default for option in self.options}

    def resolve_options(self, given: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        """Check user-given options against this module's specs; fill in defaults, in spec order."""
        specs = {option.name: option for option in self.options}
        for key in given:
            if key not in specs:
                accepted = ", ".join(specs) or "none"
                hint = close_match_hint(key, [*specs, *COMMON_OPTION_NAMES])
                raise OptionError(
                    key, given[key], f"one of this module's options ({accepted})",
                    f"'{self.name}' has no option '{key}'{hint}; its options: {accepted}; every model takes "
                    f"{', '.join(COMMON_OPTION_NAMES)}",
                )
        return tuple(
            (name, spec.coerce(given[name]) if name in given else spec.default)
            for name, spec in specs.items()
        )

    def build(
        self, channels: int, *, stage: int, ratio: int, options: tuple[tuple[str, Any], ...], **context: Any
    ) -> nn.Module:
        """Build the module for a block of `channels` channels in `stage` (1-based).

        An option given once per stage (a tuple) is resolved to this stage's value here. `context`
        is what a "conv"-slot module needs from the conv it replaces (stride, groups, ...).
        """
        kwargs = {
            key: (value[stage - 1] if isinstance(value, tuple) else value)
            for key, value in options
            if key not in self.zoo_options
        }
        if self.uses_ratio:
            kwargs["ratio"] = ratio
        try:
            return self.module_class()(channels, **kwargs, **context)
        except RatioTooLargeError as error:  # raised by reduced_channels, which does not know the stage
            raise RatioTooLargeError(ratio, error.channels, stage) from None

    def module_class(self) -> type[nn.Module]:
        """The nn.Module class (imports torch)."""
        return load_object(self.module)

    def infer_options(self, stage_keys: StageKeys, stage_count: int) -> tuple[list[dict[str, Any]], list[str]]:
        """Options (and ratio) that give a checkpoint's attention weights, most likely first, plus notes.

        `stage_keys` maps each stage with attention to {key relative to the module: shape} of one
        of its blocks, on a backbone of `stage_count` stages. A module without an `infer` function
        is detected with its defaults only.
        """
        if self.infer is None:
            return [{}], []
        return load_object(self.infer)(stage_keys, stage_count)


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


def infer_ratio(stage_keys: StageKeys, key: str) -> list[int]:
    """`ratio_candidates` for a reducing layer stored under `key` (weight [reduced, channels, ...])
    in every stage's keys: what each module's `infer_options` reads its ratio from."""
    return ratio_candidates((keys[key][1], keys[key][0]) for keys in stage_keys.values())


def ratio_note(ratios: list[int]) -> list[str]:
    """The note saying the weights allow several ratios, and which one was taken."""
    return [f"ratio: {min(ratios)}..{max(ratios)} all give these shapes; taking {ratios[0]}"] if len(ratios) > 1 else []
