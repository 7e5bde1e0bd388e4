"""Checkpoint key layouts written by other people's code, mapped to and from a zoo model's.

A checkpoint trained with a paper's official repository, Cadene's `pretrainedmodels`, timm or a
popular tutorial holds the same weights as one of our models under other names (and sometimes other
shapes: SRM's raw `[C, 2]` parameter is our `[C, 1, 2]` conv). Each `Layout` here says, from the
keys and shapes alone, whether a state dict is in its layout, and maps it in memory to the zoo model
that computes the same function, so it loads strictly (no key left over, none missing).

The key tables are our own, written from the public key names and shapes of each repository (named
in `Layout.repository`); no third-party code is kept here.

One module per layout family sits in this package and registers its layouts with `register_layout`;
every module here is imported when the registry is first used (`layouts()`). `_keys.py` has the
shared helpers: `KeyTable` (a renaming table read both ways), blocks per stage, reduction ratios.
`recognise.match_layout` applies the one layout that claims a checkpoint; `checkpoint/convert.py` uses
`target`/`writes`/`from_senet` to write a layout back out.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from senet_cli.registry import Registry

if TYPE_CHECKING:
    import torch

    from senet_cli.options import ModelConfig

Shapes = Mapping[str, tuple[int, ...]]
StateDict = Mapping[str, "torch.Tensor"]


@dataclass(frozen=True)
class Mapped:
    """A foreign state dict moved into a zoo model's layout."""

    config: ModelConfig  # the zoo model that computes what the original code computes
    state_dict: dict[str, torch.Tensor]  # keys and shapes of `config`'s model (BN step counters may be
    # missing: recognise.match_layout fills them (counters.py), then requires an exact fit)
    notes: tuple[str, ...] = ()  # what was assumed or changed (e.g. "SRM cfc [C, 2] -> [C, 1, 2]")


@dataclass(frozen=True)
class Layout:
    """One foreign key layout.

    `claims(shapes)` answers from keys and shapes alone (no tensor data read) and must be specific:
    a checkpoint in our own layout, or in another registered layout, is never claimed.
    `to_senet(state)` renames (and reshapes where needed) into the zoo layout; `from_senet(config,
    state)` is the inverse, for `senet convert` writing this layout, where it supports writing.
    `target` names the family `senet convert` can write this layout for ("timm"), and `writes(config)`
    the model of that family whose keys and computation `from_senet` gives for `config`, or None
    where it gives none (timm's seresnet50 strides the 3x3: a v1 checkpoint is not one).
    """

    name: str  # "cadene", "official-srm", ...: what `senet inspect` says it found
    repository: str  # "Cadene/pretrained-models.pytorch": where the layout comes from
    covers: str  # the models it covers, for the README table: "se_resnet50/101/152, ..."
    claims: Callable[[Shapes], bool]
    to_senet: Callable[[StateDict], Mapped]
    from_senet: Callable[[ModelConfig, StateDict], dict[str, torch.Tensor]] | None = None
    target: str | None = None  # the `senet convert` target family this layout is ("timm"), if any
    writes: Callable[[ModelConfig], str | None] | None = None  # that family's model name for a config


LAYOUTS: Registry[Layout] = Registry("checkpoint layout")
_loaded = False


def register_layout(layout: Layout) -> Layout:
    """Add `layout` to the registry (refusing a duplicate name); returns it, for module-level use."""
    return LAYOUTS.add(layout.name, layout)


def layouts() -> Registry[Layout]:
    """The registry, with every layout module of this package imported."""
    global _loaded
    if not _loaded:
        _loaded = True
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
    return LAYOUTS


def recognise(shapes: Shapes) -> Layout | None:
    """The one registered layout that claims these keys, or None (then it is ours, or unknown)."""
    claimed = [layout for _, layout in layouts().items() if layout.claims(shapes)]
    if len(claimed) > 1:
        names = ", ".join(layout.name for layout in claimed)
        raise AssertionError(f"layouts overlap ({names}): each claim must be specific")
    return claimed[0] if claimed else None
