"""Models from outside the zoo as modules: built (on the meta device where the builder allows),
their attention found by class or by structure, their blocks, and the same model without its attention.

What is attention: the zoo's own modules (`AttentionModule`), the classes of other libraries in
senet_cli/outside/known.py, and the caller's own classes ("PATH_OR_MODULE:Class", the same class
whether named by file or by module), matched by class; else any module whose output is its input
times a gate it computed from that input (senet_cli/outside/structure.py); only the outermost match
counts (timm's CbamModule, not its ChannelAttn inside).
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
no pass-through and is kept (the baseline is then partial, and says so); with none removable there
is no such model. Torch is imported inside the functions.
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
from senet_cli.outside.structure import GateUse
from senet_cli.zoo.meta import paused_gc, skip_weight_init

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class FoundAttention:
    """One attention module found in a model: where, its class, what it does to its input (a ROLES
    key), and its gate submodules (paths relative to it; None: named by the zoo's convention, a
    submodule called `gate` or `gate_<axis>`); how it was found ("class": the class table, "structure":
    its output is its input times a gate it computed, see senet_cli/outside/structure.py), its class's
    qualified name, and the gates seen multiplying the features with their kind and channels (empty
    where the module was not probed)."""

    path: str
    class_name: str
    role: str
    gates: tuple[str, ...] | None
    found_by: str = "class"
    qualified: str = ""
    uses: tuple[GateUse, ...] = ()

    @property
    def passes_through(self) -> bool:
        """Whether nn.Identity stands for the model without it (it gates or adds to its input)."""
        return self.role in PASS_THROUGH


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


def find_attention(model: Any, attention_classes: Sequence[str] = (),
                   shape: tuple[int, ...] | None = None) -> tuple[FoundAttention, ...]:
    """Every outermost attention module of `model`, in module order: matched by class (the table of
    `_class_table`), else, when `model` is on the meta device and `shape` is given, by structure (its
    output is its input times a gate it computed from it: senet_cli/outside/structure.py). Each module
    matched by class as a gate is probed too, so that its gates are those seen multiplying (timm's
    add-fusion GlobalContext has a `gate` it never calls: none). A model that does not run on `shape`
    is searched by class only."""
    from senet_cli.outside.structure import SLOW_MODULE_S, is_candidate, probe, record_inputs

    table = _class_table(attention_classes)
    recorded: dict[str, Any] = {}
    if shape is not None and _on_meta(model):
        # the model refuses this input, or the caller's forward exits: then by class only (the job's own
        # forward reports the failure in one line)
        with contextlib.suppress(Exception, SystemExit):
            recorded = record_inputs(model, shape)
    found: list[FoundAttention] = []
    for path, module in model.named_modules():
        if not path or any(path.startswith(f"{outer.path}.") for outer in found):
            continue
        qualified = f"{type(module).__module__}.{type(module).__qualname__}"
        match = next(((role, gates) for cls, role, gates in table if _is_instance(module, cls)), None)
        if match is not None and match[0] == "conv":
            found.append(FoundAttention(path, type(module).__name__, "conv", _present(module, match[1]),
                                        "class", qualified))
            continue
        if path not in recorded or (match is None and not is_candidate(module)):
            if match is not None:
                found.append(FoundAttention(path, type(module).__name__, match[0], _present(module, match[1]),
                                            "class", qualified))
            continue
        args, kwargs, seconds = recorded[path]
        seen = probe(module, args, kwargs) if seconds <= SLOW_MODULE_S else None
        if match is not None:
            gates = _present(module, match[1]) if seen is None else tuple(use.path for use in seen.gates)
            found.append(FoundAttention(path, type(module).__name__, match[0], gates, "class", qualified,
                                        seen.gates if seen is not None else ()))
        elif seen is not None and seen.multiplies:
            found.append(FoundAttention(path, type(module).__name__, "gate", tuple(use.path for use in seen.gates),
                                        "structure", qualified, seen.gates))
        elif seen is not None and seen.branches:  # SK's form: it replaces the conv making the branches
            found.append(FoundAttention(path, type(module).__name__, "conv", (), "structure", qualified))
    return tuple(found)


def unmatched_classes(model: Any, attention_classes: Sequence[str]) -> tuple[str, ...]:
    """The caller's attention classes ("PATH_OR_MODULE:Class") no module of `model` is an instance of."""
    missing: list[str] = []
    for reference in attention_classes:
        cls = load_attention_class(reference)
        if not any(_is_instance(module, cls) for module in model.modules()):
            missing.append(reference)
    return tuple(missing)


def _present(module: Any, gates: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if gates is None else tuple(g for g in gates if _has_submodule(module, g))


def _on_meta(model: Any) -> bool:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    return tensor is not None and tensor.device.type == "meta"


def _is_instance(module: Any, cls: type) -> bool:
    """isinstance, and also true for the same class imported twice under two module names (a file
    `mynet.py:MyGate` and a module `mynet:MyGate`): the same qualified name defined in the same file."""
    if isinstance(module, cls):
        return True
    where = _defining_file(cls)
    return where is not None and any(
        k.__qualname__ == cls.__qualname__ and _defining_file(k) == where for k in type(module).__mro__
    )


def _defining_file(cls: type) -> str | None:
    import os

    module = sys.modules.get(cls.__module__)
    location = getattr(module, "__file__", None)
    return os.path.realpath(location) if location else None


def without_attention(model: Any, found: Sequence[FoundAttention]) -> tuple[FoundAttention, ...]:
    """Replace each found module that can pass through (`passes_through`) by nn.Identity, in place;
    the modules kept (those replacing a convolution: no pass-through stands for them)."""
    from torch import nn

    for item in found:
        if item.passes_through:
            model.set_submodule(item.path, nn.Identity())
    return tuple(item for item in found if not item.passes_through)


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


def _describe_qualified(found: Sequence[FoundAttention]) -> str:
    """"timm.models.senet.SEModule x8": qualified class names, for what was found by structure."""
    counts: dict[str, int] = {}
    for item in found:
        counts[item.qualified or item.class_name] = counts.get(item.qualified or item.class_name, 0) + 1
    return ", ".join(f"{name} x{n}" for name, n in counts.items())


def notes(config: ExternalConfig, found: Sequence[FoundAttention], has_baseline: bool) -> tuple[str, ...]:
    """What was found (by class, by structure), what the baseline is and which modules it keeps, for
    reports."""
    if not found:
        return (f"no attention module found in {config.name}: no module of the known classes (zoo, timm, "
                f"torchvision) nor of those named, and none whose output is its input times a gate computed "
                f"from it; see README 'Bring your own model'",)
    by_class = [item for item in found if item.found_by == "class"]
    by_structure = [item for item in found if item.found_by == "structure"]
    lines = []
    if by_class:
        lines.append(f"attention found by class: {describe(by_class)}")
    if by_structure:
        lines.append(f"attention found by structure: {_describe_qualified(by_structure)}")
    removable = [item for item in found if item.passes_through]
    kept = [item for item in found if not item.passes_through]
    if has_baseline and not kept:
        lines.append(f"baseline: {config.name} with each of them replaced by a pass-through (nn.Identity)")
    elif has_baseline:
        lines.append(f"baseline: {config.name} with its {describe(removable)} replaced by a pass-through "
                     f"(nn.Identity); kept: {describe(kept)} (no pass-through stands for them)")
    else:
        blocking = sorted({item.class_name for item in kept})
        lines.append(f"no baseline: {', '.join(blocking)} replaces a convolution rather than gating its input, so "
                     f"no pass-through stands for the model without it")
    if kept:
        lines.append(f"attention params of {', '.join(sorted({item.class_name for item in kept}))} include the "
                     f"convolution each replaces")
    silent = [item for item in found if item.gates == () and item.role != "conv"]
    if silent:
        lines.append(f"found without a multiplying gate: {describe(silent)} (inspect has no gate of theirs to hook)")
    return tuple(lines)


def baseline_name(config: ExternalConfig, partial: bool = False) -> str:
    return f"{config.name} without {'its removable ' if partial else ''}attention"


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
