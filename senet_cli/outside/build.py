"""Models from outside the zoo as modules: built (on the meta device where the builder allows),
their attention found by class, their blocks, and the same model without its attention.

What is attention: the zoo's own modules (`AttentionModule`), the classes of other libraries in
senet_cli/outside/known.py, and the caller's own classes ("PATH_OR_MODULE:Class"), matched by
`isinstance`; only the outermost match counts (timm's CbamModule, not its ChannelAttn inside).
A known class is matched only when its module is already imported (a model holding a timm class
has imported timm), so a torchvision model never imports timm.

What is a block (`external_blocks`): where the model is built from containers (nn.Sequential,
ModuleList, ModuleDict) of units, as ResNets (`layer1.0`), EfficientNets (`features.2.0`),
MobileNets (`features.3`) and RegNets (`trunk_output.block1.block1-0`) are, the units, provided
every attention module lies in one; otherwise the module that holds each attention module: its
outermost ancestor, below the model and not a container, that holds no other attention module.
A block's stage is the ordinal of the container holding it (1 where one container holds them all).

The model without attention: each attention module replaced by nn.Identity, which is right for a
gate on its input (x * g(x)) and for a residual term (x + f(x)); a module that replaces a conv has
no pass-through, and then there is no such model. Torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from senet_cli.errors import SenetError, first_line
from senet_cli.options import ExternalConfig
from senet_cli.outside.known import FOREIGN_ATTENTION, OWN_ROLE_BY_SLOT, ROLES, USER_ROLE
from senet_cli.outside.names import load_attention_class, load_builder
from senet_cli.zoo.meta import paused_gc, skip_weight_init

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class FoundAttention:
    """One attention module found in a model: where, its class, what it does to its input (a ROLES
    key), and its gate submodules (paths relative to it; None: named by the zoo's convention, a
    submodule called `gate` or `gate_<axis>`)."""

    path: str
    class_name: str
    role: str
    gates: tuple[str, ...] | None


PASS_THROUGH = tuple(role for role in ROLES if role != "conv")
"""The roles whose modules nn.Identity can stand in for."""


def build_external(config: ExternalConfig, *, meta: bool = False, init: bool = True) -> nn.Module:
    """The model `config` names, with random weights on the CPU; on the meta device (no weights) with
    `meta`; with `init=False` its weights are left as allocated (they are about to be loaded).

    Builders that compute with tensors while building (torchvision's RegNet widths) cannot run on
    the meta device; those are built on the CPU without weight initialisation, then moved there.
    """
    import torch
    from torch import nn

    builder = load_builder(config.source, config.location, config.target)
    kwargs = dict(config.kwargs)
    model = None
    if meta:
        with contextlib.suppress(Exception, SystemExit), torch.device("meta"), skip_weight_init(), paused_gc():
            model = builder(**kwargs)
    if model is None:
        quiet = skip_weight_init() if (meta or not init) else contextlib.nullcontext()
        try:
            with quiet, paused_gc():
                model = builder(**kwargs)
        except TypeError as error:
            raise SenetError(f"{config.name} refused its keywords: {first_line(error)}") from None
        except (Exception, SystemExit) as error:  # noqa: BLE001 (the caller's builder may raise anything, or exit)
            what = (f"it called sys.exit({error.code!r})" if isinstance(error, SystemExit)
                    else f"{type(error).__name__}: {first_line(error)}")
            raise SenetError(f"{config.name} failed to build: {what}") from None
    if not isinstance(model, nn.Module):
        raise SenetError(f"{config.name} returned a {type(model).__name__}, not a torch.nn.Module")
    if meta:
        model = model.to("meta")
    return model


def find_attention(model: Any, attention_classes: Sequence[str] = ()) -> tuple[FoundAttention, ...]:
    """Every outermost attention module of `model`, in module order (see the module doc)."""
    table = _class_table(attention_classes)
    found: list[FoundAttention] = []
    for path, module in model.named_modules():
        if not path or any(path.startswith(f"{outer.path}.") for outer in found):
            continue
        for cls, role, gates in table:
            if isinstance(module, cls):
                present = None if gates is None else tuple(g for g in gates if _has_submodule(module, g))
                found.append(FoundAttention(path, type(module).__name__, role, present))
                break
    return tuple(found)


def without_attention(model: Any, found: Sequence[FoundAttention]) -> bool:
    """Replace each found module by nn.Identity, in place; False (and nothing replaced) when one of
    them is not a pass-through-able gate (role "conv")."""
    from torch import nn

    if any(item.role not in PASS_THROUGH for item in found):
        return False
    for item in found:
        model.set_submodule(item.path, nn.Identity())
    return True


def external_blocks(model: Any, attention_paths: Sequence[str]) -> list[tuple[str, int]]:
    """(path, stage) of each block of `model`, in module order (see the module doc)."""
    structural = _structural_blocks(model)
    if structural and all(any(_within(p, block) for block, _ in structural) for p in attention_paths):
        return _with_stages(structural)
    return _with_stages(_attention_blocks(model, attention_paths))


def output_classes(config: ExternalConfig, model: Any) -> int:
    """Classifier outputs: the num_classes keyword, else the last nn.Linear's width, else 1000."""
    from torch import nn

    given = dict(config.kwargs).get("num_classes")
    if isinstance(given, int):
        return given
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linear[-1].out_features if linear else 1000


def describe(found: Sequence[FoundAttention]) -> str:
    """How many of each class: "16 SqueezeExcitation, 2 CbamModule"."""
    counts: dict[str, int] = {}
    for item in found:
        counts[item.class_name] = counts.get(item.class_name, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in counts.items())


def notes(config: ExternalConfig, found: Sequence[FoundAttention], has_baseline: bool) -> tuple[str, ...]:
    """What was found and what the baseline is, for reports."""
    if not found:
        return (f"no attention module recognised in {config.name}: none of the known classes (zoo, timm, "
                f"torchvision) nor those named; see README 'Bring your own model'",)
    lines = [f"attention found by class: {describe(found)}"]
    if has_baseline:
        lines.append(f"baseline: {config.name} with each of them replaced by a pass-through (nn.Identity)")
    else:
        blocking = sorted({item.class_name for item in found if item.role not in PASS_THROUGH})
        lines.append(f"no baseline: {', '.join(blocking)} replaces a convolution rather than gating its input, so "
                     f"no pass-through stands for the model without it")
    return tuple(lines)


def baseline_name(config: ExternalConfig) -> str:
    return f"{config.name} without attention"


def _class_table(attention_classes: Sequence[str]) -> list[tuple[type, str, tuple[str, ...] | None]]:
    """(class, role, gates) to match, the caller's first, then the zoo's, then other libraries'."""
    from senet_cli.attention import ATTENTION
    from senet_cli.attention.base import AttentionModule

    table: list[tuple[type, str, tuple[str, ...] | None]] = [
        (load_attention_class(reference), USER_ROLE, None) for reference in attention_classes
    ]
    for _, spec in ATTENTION.items():
        if spec.slot in OWN_ROLE_BY_SLOT:
            table.append((spec.module_class(), OWN_ROLE_BY_SLOT[spec.slot], None))
    table.append((AttentionModule, USER_ROLE, None))
    for entry in FOREIGN_ATTENTION:
        module_name, _, class_name = entry.reference.partition(":")
        module = sys.modules.get(module_name)  # not imported: no model of this process holds its classes
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type):
            table.append((cls, entry.role, entry.gates))
    return table


def _has_submodule(module: Any, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def _containers() -> tuple[type, ...]:
    from torch import nn

    return nn.Sequential, nn.ModuleList, nn.ModuleDict


def _structural_blocks(model: Any) -> list[tuple[str, str]]:
    """(path, container path) of each unit reached from the model through containers only: a module
    that is neither a container nor a leaf (layer1.0, features.2.0, features.3)."""
    containers = _containers()
    found: list[tuple[str, str]] = []

    def walk(module: Any, prefix: str, inside: bool) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if isinstance(child, containers):
                walk(child, f"{path}.", True)
            elif inside and next(child.children(), None) is not None:
                found.append((path, prefix[:-1]))

    walk(model, "", isinstance(model, containers))
    return found


def _attention_blocks(model: Any, attention_paths: Sequence[str]) -> list[tuple[str, str]]:
    """(path, parent path) of the module holding each attention module (see the module doc)."""
    containers = _containers()
    chosen: list[str] = []
    for path in attention_paths:
        parts = path.split(".")
        ancestors = [".".join(parts[:depth]) for depth in range(1, len(parts))]
        candidates = [a for a in ancestors if not isinstance(model.get_submodule(a), containers)]
        alone = [a for a in candidates if sum(_within(p, a) for p in attention_paths) == 1]
        block = alone[0] if alone else (candidates[-1] if candidates else path)
        if block not in chosen:
            chosen.append(block)
    outermost = [b for b in chosen if not any(b != other and _within(b, other) for other in chosen)]
    return [(block, block.rpartition(".")[0]) for block in outermost]


def _with_stages(blocks: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """Number the containers holding the blocks 1, 2, ... in order: each block's stage."""
    stage_of: dict[str, int] = {}
    for _, parent in blocks:
        stage_of.setdefault(parent, len(stage_of) + 1)
    return [(path, stage_of[parent]) for path, parent in blocks]
