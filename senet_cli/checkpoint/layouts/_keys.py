"""Key renaming tables, read both ways, and the shape facts the layout modules read keys by.

A table is a tuple of (foreign pattern, our pattern) pairs. A pattern is a key with placeholders:
`{name}` stands for one dotted component (`layer{s}.{b}.se_module.{p}`), `{name*}` for one or more
(`layer{s}.{b}.se_module.{rest*}`). A key takes the first rule whose pattern matches it whole and
is rewritten with the other side's pattern; a key no rule matches keeps its name (the layouts share
most of torchvision's names). The same table maps both ways, so `senet convert` writes exactly the
names it reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from senet_cli.options import ModelConfig

_PLACEHOLDER = re.compile(r"\{(\w+)(\*?)\}")


def _compile(pattern: str) -> re.Pattern[str]:
    parts, last = [], 0
    for found in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[last:found.start()]))
        parts.append(f"(?P<{found.group(1)}>{'.+' if found.group(2) else '[^.]+'})")
        last = found.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts))


def _fill(pattern: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda found: values[found.group(1)], pattern)


@dataclass(frozen=True)
class KeyTable:
    """An ordered renaming table between a foreign layout and ours (see the module doc)."""

    rules: tuple[tuple[str, str], ...]
    _compiled: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((_compile(foreign), _compile(ours)) for foreign, ours in self.rules)
        object.__setattr__(self, "_compiled", compiled)

    def ours(self, key: str) -> str:
        """Our name for a foreign key."""
        return self._rename(key, 0)

    def foreign(self, key: str) -> str:
        """The foreign name for one of our keys."""
        return self._rename(key, 1)

    def _rename(self, key: str, side: int) -> str:
        for index, patterns in enumerate(self._compiled):
            found = patterns[side].fullmatch(key)
            if found:
                return _fill(self.rules[index][1 - side], found.groupdict())
        return key

    def to_ours(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return _renamed(state, self.ours)

    def to_foreign(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return _renamed(state, self.foreign)


def _renamed(state: Mapping[str, Any], rename: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in state.items():
        new = rename(key)
        if new in result:  # two keys onto one name: a table bug, caught by the tests
            raise AssertionError(f"key table maps two keys onto {new}")
        result[new] = value
    return result


_BLOCK = re.compile(r"layer(\d+)\.(\d+)\.")


def blocks_per_stage(keys: Mapping[str, Any] | set[str]) -> tuple[int, ...]:
    """Blocks in layer1, layer2, ... from `layer{s}.{b}.` key prefixes (torchvision's and Cadene's)."""
    seen: dict[int, set[int]] = {}
    for key in keys:
        found = _BLOCK.match(key)
        if found and int(found.group(1)) > 0:
            seen.setdefault(int(found.group(1)), set()).add(int(found.group(2)))
    return tuple(len(seen[stage]) for stage in sorted(seen))


RESNET_DEPTHS: dict[tuple[bool, tuple[int, ...]], int] = {
    (False, (2, 2, 2, 2)): 18, (False, (3, 4, 6, 3)): 34,
    (True, (3, 4, 6, 3)): 50, (True, (3, 4, 23, 3)): 101, (True, (3, 8, 36, 3)): 152,
}
"""(bottleneck blocks?, blocks per stage) -> ResNet depth, as He et al. Table 1."""


def last_block(shapes: Mapping[str, Any], stage: int) -> str:
    """`layer{stage}.{n}`, the stage's last block: its input and output widths agree."""
    count = blocks_per_stage({key for key in shapes if key.startswith(f"layer{stage}.")})
    return f"layer{stage}.{count[-1] - 1}" if count else f"layer{stage}.0"


def reduction_ratio(shapes: Mapping[str, tuple[int, ...]], reducing: str) -> int:
    """C // C' of a reducing layer `reducing` (a key suffix, weight [C', C, ...]) in layer4's last
    block, where the widths are largest and the integer division loses least."""
    out_width, in_width = shapes[f"{last_block(shapes, 4)}.{reducing}"][:2]
    return in_width // out_width


def is_paper_module(config: ModelConfig, attention: str, **options: Any) -> bool:
    """Whether `config` puts `attention` with its default options (but `options`) in every block of
    every stage, standard placement: the only models the foreign codebases build."""
    from senet_cli.attention import ATTENTION, stages_by_rule
    from senet_cli.backbones import BACKBONES

    if config.attention != attention:
        return False
    expected = {**ATTENTION.get(attention).option_defaults(), **options}
    ratio = expected.pop("ratio", config.ratio)
    spec = BACKBONES.get(config.backbone)
    return (dict(config.attention_options) == expected and config.ratio == ratio and config.placement == "standard"
            and config.stages == stages_by_rule("all", spec.stage_count))
