"""Models from outside the zoo as modules: built (on the meta device where the builder allows),
their attention found by class or by structure, their blocks, and the same model without its attention.

What is attention: the zoo's own modules (`AttentionModule`), the classes of other libraries in
senet_cli/outside/known.py, and the caller's own classes ("PATH_OR_MODULE:Class", the same class
whether named by file or by module), matched by class; else any module whose output is its input
times a gate it computed from that input (senet_cli/outside/structure.py); only the outermost match
counts (timm's CbamModule, not its ChannelAttn inside).
A known class is matched only when its module is already imported (a model holding a timm class
has imported timm), so a torchvision model never imports timm.

What is a block (`external_layout`): one of the model's units, reached from the model through
containers (nn.Sequential, ModuleList, ModuleDict) and through the stage modules timm's `feature_info`
names (`_is_stage`): ResNets' `layer1.0`, EfficientNets' `features.2.0`, MobileNets' `features.3`,
RegNets' `trunk_output.block1.block1-0` and `s1.b1`, ConvNeXt's `stages.0.blocks.0`, DenseNet's dense
layers `features.denseblock1.denselayer1` (Huang et al., table 1: 6, 12, 24, 16 in DenseNet-121, as
timm's group_matcher counts them). A container holding an attention module beside a layer with
weights is one unit (a user's Sequential(conv, bn, act, gate)); a unit holds a conv or linear layer;
timm's stem (`group_matcher()["stem"]`) holds no block. Where a stage module holds a container of
blocks (HGNet's and ConvNeXt's `blocks`, CSPNet's), only those are its blocks: its downsample or
transition convs are part of the stage, not blocks. A model no container walk reaches gets its widest
set of units (torchvision's Inception3 and GoogLeNet: their Inception modules), without the leading
single convs of its stem. An attention module outside every unit gets the module holding it as a
block (its outermost ancestor, not a container nor named `stem`/`head`, that holds no other attention
module); where that module would hold units, every block is such a holder. A block that does not run
in an eval-mode forward (Inception's and GoogLeNet's auxiliary heads) is none.

What else a stage holds (`Layout.members`): a module between blocks belongs to a block, so count
charges it to that block's row and stage rather than to the head: a stage's downsample (HGNet's
`stages.1.downsample`) to the stage's first block, a closing transition (CSPNet's) to its last, and
a module between stages to the first block of the stage its output runs at (DenseNet's transitions,
GoogLeNet's max-pools, Inception-ResNet's reduction modules), see `_members`.

What is a stage: blocks numbered 1..N in order, a new stage wherever the output stride of the blocks
changes (N: the number of strides the blocks run at, after the stem), measured on one eval-mode
forward on the meta device; where the blocks' outputs are no images (tokens), taken from timm's
`feature_info` (each block takes the reduction of the first named module at or after it); where
neither tells, each container holding blocks is a stage.

The model without attention: each attention module replaced by nn.Identity, which is right for a
gate on its input (x * g(x)) and for a residual term (x + f(x)); a module that replaces a conv has
no pass-through and is kept (the baseline is then partial, and says so); with none removable there
is no such model. A stage's ablation (profile's per-stage cost) likewise removes that stage's modules
that can pass through and keeps the rest (its note names them; a stage with none removable gets no
ablation, in one line). Torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator, Sequence
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


ROW_NAMES = ("stem", "head")
"""count's rows outside the blocks: no block takes these names (timm's gcvit holds an SE in `stem.down`)."""

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
        with contextlib.suppress(Exception, SystemExit), torch.device("meta"), skip_weight_init(), paused_gc(), \
                _no_init_notice():
            model = builder(**kwargs)
    if model is None:
        quiet = skip_weight_init() if (meta or not init) else contextlib.nullcontext()
        try:
            with quiet, paused_gc(), _no_init_notice():
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


@contextlib.contextmanager
def _no_init_notice() -> Iterator[None]:
    """torchvision's Inception-v3 and GoogLeNet warn, each time they are built without `init_weights`,
    that their default initialisation will change: a notice about weights senet never trains, printed
    above every table; silenced for the build alone (any other warning still shows)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The default weight initialization of", category=FutureWarning)
        yield


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
        elif seen is not None and seen.branches and not _holds_branch_form(module, path, table, recorded):
            # SK's form: it replaces the conv making the branches (a module that merely holds one, whose
            # output is its branch sum, is not it: the inner one is found as the loop goes on)
            found.append(FoundAttention(path, type(module).__name__, "conv", seen.weights, "structure", qualified))
    return tuple(found)


def _holds_branch_form(module: Any, path: str, table: Any, recorded: dict[str, Any]) -> bool:
    """Whether a submodule of `module` is itself a branch form: a conv-replacing class of the table
    (timm's SelectiveKernel) or a module whose own probe sums weighed branches."""
    from senet_cli.outside.structure import SLOW_MODULE_S, is_candidate, probe

    for name, inner in module.named_modules():
        if not name:
            continue
        if any(_is_instance(inner, cls) and role == "conv" for cls, role, _ in table):
            return True
        args_kwargs = recorded.get(f"{path}.{name}")
        if args_kwargs is not None and is_candidate(inner) and args_kwargs[2] <= SLOW_MODULE_S:
            seen = probe(inner, args_kwargs[0], args_kwargs[1])
            if seen is not None and seen.branches:
                return True
    return False


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


@dataclass(frozen=True)
class Layout:
    """A model's blocks and what else each block stands for: `blocks`, (path, stage) in module order,
    stages numbered 1..N; `members`, (module path, block path): the modules outside every block that
    belong to one (a stage's downsample or transition, see the module doc), for count's rows."""

    blocks: tuple[tuple[str, int], ...]
    members: tuple[tuple[str, str], ...] = ()


def external_blocks(model: Any, attention_paths: Sequence[str], input_side: int = 224) -> list[tuple[str, int]]:
    """(path, stage) of each block of `model`, in module order, stages numbered 1..N (see the module doc);
    `input_side`: the side of the one meta forward that measures reductions."""
    return list(external_layout(model, attention_paths, input_side).blocks)


def external_layout(model: Any, attention_paths: Sequence[str], input_side: int = 224) -> Layout:
    """The blocks of `model` with their stages, and the modules between blocks that belong to one (see
    the module doc); one forward on the meta device at `input_side` (in eval mode, as inference runs:
    auxiliary heads stay idle) measures each block's reduction and which modules run."""
    blocks = _candidate_blocks(model, attention_paths)
    outside = _outside_blocks(model, [path for path, _ in blocks])
    probe = _probe_forward(model, [path for path, _ in blocks], outside, input_side)
    if probe is not None and any(path in probe.called for path, _ in blocks):
        blocks = [(path, parent) for path, parent in blocks if path in probe.called]  # aux heads: no blocks
        outside = _outside_blocks(model, [path for path, _ in blocks])
    staged = _with_stages(model, blocks, probe.sides if probe is not None else None)
    return Layout(tuple(staged), tuple(_members(model, [path for path, _ in blocks], outside, probe).items()))


def _candidate_blocks(model: Any, attention_paths: Sequence[str]) -> list[tuple[str, str]]:
    """(path, parent) of each block by the model's structure (see the module doc), before the forward."""
    structural = [(path, parent) for path, parent in _structural_blocks(model, attention_paths)
                  if not _in_stem(model, path)]
    if not structural:
        structural = _without_stem_convs([(path, parent) for path, parent in _widest_units(model)
                                          if not _in_stem(model, path)], model)
    outside = [p for p in attention_paths if not any(_within(p, block) for block, _ in structural)]
    units = [path for path, _ in structural]
    held = [(block, parent) for block, parent in _attention_blocks(model, outside, units)
            if not any(_within(other, block) for other, _ in structural)]
    if outside and len(held) < len(_attention_blocks(model, outside, units)):  # one would hold structural blocks
        return _attention_blocks(model, attention_paths)
    order = {path: index for index, (path, _) in enumerate(model.named_modules())}
    return sorted(structural + held, key=lambda block: order[block[0]])


def _without_stem_convs(units: list[tuple[str, str]], model: Any) -> list[tuple[str, str]]:
    """`units` without the leading ones that hold a single conv or linear layer, where a later one holds
    more: torchvision Inception3's Conv2d_1a_3x3..Conv2d_4a_3x3 and GoogLeNet's conv1..conv3 are its
    stem (Szegedy et al. 2015/2016, the layers before the first Inception module), not blocks."""
    counts = [_weighted_layers(model.get_submodule(path)) for path, _ in units]
    first = next((index for index, count in enumerate(counts) if count > 1), 0)
    return units[first:]


def _weighted_layers(module: Any) -> int:
    """How many conv or linear weights (two or more dimensions) `module` holds."""
    return sum(1 for parameter in module.parameters() if parameter.dim() >= 2)


@dataclass(frozen=True)
class _Probe:
    """What one forward saw: the reduction (input side / output side, rounded) of each block and outside
    module whose output is an image; the blocks and outside modules that ran."""

    sides: dict[str, int]
    called: frozenset[str]


def _outside_blocks(model: Any, blocks: Sequence[str]) -> list[str]:
    """The outermost modules of `model` neither in a block nor holding one, in module order."""
    holding = {".".join(path.split(".")[:depth]) for path in blocks for depth in range(len(path.split(".")))}
    found: list[str] = []
    for path, _ in model.named_modules():
        if not path or path in holding or any(_within(path, block) for block in blocks):
            continue
        if found and _within(path, found[-1]):
            continue
        found.append(path)
    return found


def _probe_forward(model: Any, blocks: Sequence[str], outside: Sequence[str], input_side: int) -> _Probe | None:
    """One forward of `model` on the meta device, in eval mode (each module's mode restored after), that
    records the reduction of each of `blocks` and `outside` and which of them ran; None when the model holds
    weights (it is not run here) or its forward fails (the job's own forward reports that)."""
    import torch

    if not _on_meta(model):
        return None
    sides: dict[str, int] = {}
    called: set[str] = set()

    def on_output(path: str) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            called.add(path)
            side = _output_side(output)
            if side is not None:
                sides.setdefault(path, side)
        return hook

    modes = [(module, module.training) for module in model.modules()]
    handles = [model.get_submodule(path).register_forward_hook(on_output(path)) for path in (*blocks, *outside)]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.empty(1, 3, input_side, input_side, device="meta"))
    except (Exception, SystemExit):  # noqa: BLE001 (any forward may fail, even sys.exit: the structure tells;
        # the job's own forward then reports it)
        return None
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    return _Probe({path: max(1, round(input_side / side)) for path, side in sides.items()}, frozenset(called))


def _output_side(output: Any) -> int | None:
    """The height of a module's output where it is an image: a 4-D tensor (NCHW, or NHWC on a square
    input), or tokens with their grid size ((x, (H, W)): MViTv2's stages); else None."""
    import torch

    if isinstance(output, torch.Tensor):
        return int(output.shape[-2]) if output.dim() == 4 and output.shape[-2] > 0 else None
    if isinstance(output, (tuple, list)) and len(output) == 2 and isinstance(output[0], torch.Tensor):
        grid = output[1]
        if isinstance(grid, (tuple, list)) and len(grid) == 2 and all(isinstance(n, int) and n > 0 for n in grid):
            return int(grid[0])
    return None


def _members(model: Any, blocks: Sequence[str], outside: Sequence[str], probe: _Probe | None) -> dict[str, str]:
    """{module: block} for the modules outside every block that belong to one: one that shares a stage
    (an ancestor holding some of the blocks, not all) with the block after it joins that block (a stage's
    downsample: HGNet's `stages.1.downsample`, ConvNeXt's), else one sharing a stage with the block
    before it joins that block (CSPNet's closing transition convs); one lying between two blocks with no
    stage of theirs joins the block after it where its output has that block's reduction and not the
    one before's (it reduces, as the output-stride stages count: DenseNet's transition, GoogLeNet's
    max-pools, Inception-ResNet's reduction modules), else the block before it (VGG's ReLU after its
    conv). Modules that did not run in the probe's forward (an auxiliary head) belong to none; the rest
    are the stem and the head."""
    if not blocks:
        return {}
    order = {path: index for index, (path, _) in enumerate(model.named_modules())}
    ranked = sorted(blocks, key=order.__getitem__)

    def stage_shared(path: str, block: str) -> bool:
        parts, other = path.split("."), block.split(".")
        depth = next((i for i, (a, b) in enumerate(zip(parts, other, strict=False)) if a != b),
                     min(len(parts), len(other)))
        if depth == 0:
            return False
        ancestor = ".".join(parts[:depth])
        return not all(_within(b, ancestor) for b in blocks)

    sides = probe.sides if probe is not None else {}
    members: dict[str, str] = {}
    for path in outside:
        if probe is not None and path not in probe.called:
            continue
        before = [b for b in ranked if order[b] < order[path]]
        after = [b for b in ranked if order[b] > order[path]]
        if after and stage_shared(path, after[0]):
            members[path] = after[0]
        elif before and stage_shared(path, before[-1]):
            members[path] = before[-1]
        elif before and after:
            reduces = path in sides and sides[path] == sides.get(after[0]) != sides.get(before[-1])
            members[path] = after[0] if reduces else before[-1]
    return members


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


def _structural_blocks(model: Any, attention_paths: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(path, stage path) of each unit reached from the model through containers, and through the
    stages timm's `feature_info` names (`_is_stage`): a module that is neither a container nor a leaf
    (layer1.0, features.2.0, s1.b1, stages.0.blocks.0); a container that holds an attention module
    beside a layer with weights is one unit (a user's Sequential(conv, bn, act, gate))."""
    containers = _containers()
    stages = _feature_modules(model)
    found: list[tuple[str, str]] = []

    def walk(module: Any, prefix: str, inside: bool, containers_only: bool = False) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if isinstance(child, containers) and not _gates_its_layers(child, path, attention_paths):
                walk(child, f"{path}.", True)
            elif path in stages and _is_stage(child, inside) and (not inside or _all_named(module, prefix, stages)):
                # a stage with a container of blocks (ConvNeXt's, HGNet's `blocks`): its other children (a
                # downsample) are part of the stage, not blocks
                walk(child, f"{path}.", True, _holds_blocks(child))
            elif inside and not containers_only and next(child.children(), None) is not None \
                    and _has_weighted_layer(child):
                found.append((path, prefix[:-1]))

    walk(model, "", isinstance(model, containers))
    return found


def _has_weighted_layer(module: Any) -> bool:
    """Whether `module` holds a conv or linear layer (a weight of two or more dimensions): a norm with
    an activation (timm's BatchNormAct2d after densenet's last block) is no block."""
    return any(parameter.dim() >= 2 for parameter in module.parameters())


def _widest_units(model: Any) -> list[tuple[str, str]]:
    """(path, parent) of the units of a model that no container walk reaches: the children of the one
    module with the most children that hold a conv or linear layer (torchvision's ViT `encoder.layers`,
    Inception's and NASNet's top-level modules), or the conv and linear layers of the one module with
    the most of them (VGG's and AlexNet's `features`), whichever are more; at least two, else none."""
    best: list[tuple[str, str]] = []
    for weighted_leaves in (False, True):
        for path, module in model.named_modules():
            prefix = f"{path}." if path else ""
            units = [(f"{prefix}{name}", path) for name, child in module.named_children()
                     if (next(child.children(), None) is None) == weighted_leaves and _has_weighted_layer(child)]
            if len(units) > len(best):
                best = units
    return best if len(best) >= 2 else []


def _gates_its_layers(container: Any, path: str, attention_paths: Sequence[str]) -> bool:
    """Whether one of the container's children is an attention module and another a layer with weights."""
    names = [name for name, _ in container.named_children()]
    holds_attention = any(f"{path}.{name}" in attention_paths for name in names)
    weighted = any(next(child.children(), None) is None and next(child.parameters(), None) is not None
                   for child in container.children())
    return holds_attention and weighted


def _is_stage(module: Any, inside: bool) -> bool:
    """Whether a module timm's feature_info names holds blocks: a container of blocks among its children
    (ConvNeXtStage's `blocks`), or, outside any container, children with weights that are all blocks of
    one class (RegStage's b1..bN); a conv-norm-act, an Inception module (its branches are conv-norm-acts)
    or a block in a container (rexnet's `features.0`) is neither."""
    if _holds_blocks(module):
        return True
    weighted = [c for c in module.children() if next(c.parameters(), None) is not None]
    return not inside and bool(weighted) and all(_is_block_like(c) for c in weighted) and \
        len({type(c) for c in weighted}) == 1


def _all_named(container: Any, prefix: str, stages: dict[str, int]) -> bool:
    """Whether feature_info names each child with weights of `container` (ConvNeXt's `stages.0..3`): a
    child named among unnamed siblings is one of their peers (xception41's last block, `blocks.12`)."""
    return all(f"{prefix}{name}" in stages for name, child in container.named_children()
               if next(child.parameters(), None) is not None)


def _holds_blocks(module: Any) -> bool:
    """Whether one of `module`'s children is a container holding a block (`_is_block_like`)."""
    containers = _containers()
    held: list[Any] = [child for child in module.children() if isinstance(child, containers)]
    return any(_is_block_like(unit) for child in held for unit in child.children())


def _is_block_like(module: Any) -> bool:
    """Whether `module` could be a block: it has children and holds two or more conv or linear layers
    (a conv-norm-act holds one)."""
    return next(module.children(), None) is not None and _weighted_layers(module) >= 2


def _feature_modules(model: Any) -> dict[str, int]:
    """{module path: reduction} from timm's `feature_info` (what the model says of its stages), in
    order; empty for a model that says nothing."""
    info = getattr(model, "feature_info", None)
    entries = getattr(info, "info", info)
    if not isinstance(entries, list):
        return {}
    found: dict[str, int] = {}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("module") and isinstance(entry.get("reduction"), int):
            found[str(entry["module"])] = int(entry["reduction"])
    return found


def _in_stem(model: Any, path: str) -> bool:
    """Whether `path` is in the model's stem as its timm `group_matcher` names it (gcresnet50t's
    `stem.conv1`): a stem is not a block."""
    import re

    matcher = getattr(model, "group_matcher", None)
    if not callable(matcher):
        return False
    try:
        stem = matcher().get("stem")
    except Exception:  # noqa: BLE001 (a model's own method may fail in any way)
        return False
    # timm's patterns may end in a dot (inception_v4's `^features\.[012]\.`): the module path matches with one
    return isinstance(stem, str) and re.match(stem, f"{path}.") is not None


def _attention_blocks(model: Any, attention_paths: Sequence[str], units: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(path, parent path) of the module holding each attention module (see the module doc); none holds one
    of `units` (a stage holding blocks is no holder: the downsample holding efficientvim's SE is)."""
    containers = _containers()
    chosen: list[str] = []
    for path in attention_paths:
        parts = path.split(".")
        ancestors = [".".join(parts[:depth]) for depth in range(1, len(parts))]
        candidates = [a for a in ancestors if not isinstance(model.get_submodule(a), containers)
                      and a not in ROW_NAMES and not any(_within(unit, a) for unit in units)]
        alone = [a for a in candidates if sum(_within(p, a) for p in attention_paths) == 1]
        block = alone[0] if alone else (candidates[-1] if candidates else path)
        if block not in chosen:
            chosen.append(block)
    outermost = [b for b in chosen if not any(b != other and _within(b, other) for other in chosen)]
    return [(block, block.rpartition(".")[0]) for block in outermost]


def _with_stages(model: Any, blocks: list[tuple[str, str]], measured: dict[str, int] | None) -> list[tuple[str, int]]:
    """Each block's stage, 1..N in order: a new stage wherever the spatial reduction of the blocks'
    outputs changes. The reductions are those `measured` on one forward (input side / output side,
    rounded: Inception-v4's 73 and 71 pixel maps are both at stride 4) where every block's output is an
    image, they never shrink along the blocks and timm's feature_info tells no more stages; else
    feature_info's where the model has one (a block takes the reduction of the first named module at or
    after it: a token model), else those measured (none: one stage); where nothing tells (a forward that
    fails), each container holding blocks is a stage."""
    paths = [path for path, _ in blocks]
    complete = measured if measured and all(path in measured for path in paths) else None
    stated = _stated_reductions(model, paths)
    if complete and stated:
        along = [complete[path] for path in paths]
        shrinks = any(later < earlier for earlier, later in zip(along, along[1:], strict=False))
        if shrinks or _changes(stated, paths) > _changes(complete, paths):
            # 4-D outputs that are no images along the trunk: NesT's blocked tokens, gcvit's pooled global
            # tokens (a stride that shrinks); feature_info tells
            complete = None
    reductions = complete or stated or measured
    if reductions is None:
        stage_of: dict[str, int] = {}
        for _, parent in blocks:
            stage_of.setdefault(parent, len(stage_of) + 1)
        return [(path, stage_of[parent]) for path, parent in blocks]
    numbered: list[tuple[str, int]] = []
    stage, previous = 0, None
    for path in paths:
        reduction = reductions.get(path)
        if stage == 0 or (reduction is not None and previous is not None and reduction != previous):
            stage += 1
        previous = reduction if reduction is not None else previous
        numbered.append((path, stage))
    return numbered


def _changes(reductions: dict[str, int], paths: Sequence[str]) -> int:
    """How many times the reduction changes along `paths` (blocks without one are skipped)."""
    known = [reductions[path] for path in paths if path in reductions]
    return sum(1 for a, b in zip(known, known[1:], strict=False) if a != b)


def _stated_reductions(model: Any, paths: Sequence[str]) -> dict[str, int] | None:
    """{block: reduction} from timm's feature_info, or None where the model states none."""
    stated = _feature_modules(model)
    if not stated:
        return None
    order = {path: index for index, (path, _) in enumerate(model.named_modules())}
    entries = [(order[path], path, reduction) for path, reduction in stated.items() if path in order]
    reductions: dict[str, int] = {}
    for path in paths:
        at = order.get(path, -1)
        after = [reduction for index, entry, reduction in entries if _within(path, entry) or index >= at]
        if after:
            reductions[path] = after[0]
        elif entries:
            reductions[path] = entries[-1][2]
    return reductions
