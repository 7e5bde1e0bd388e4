"""One subject for every model: what count, profile and inspect need of a model, whatever built it.

A job takes a `Subject` (from `subject_for`) and asks it the same questions for a zoo model and for
a model from outside the zoo (`torchvision:NAME`, `timm:NAME`, `file.py:callable`): build yourself
(on the meta device, or for real with or without weight init); your blocks with their stages and
members; your attention modules and their gates (role: gate, residual, or replaces a conv); the
model without attention (the pass-through baseline) or why there is none; the model without one
stage's attention; your notes; your input sides and classifier width; your options as a JSON dict
and as short text; and load a state dict strictly.

`ZooSubject` and `OutsideSubject` are the two implementations; this module and senet_cli/outside/
are the only places that tell the two kinds apart (tests/test_subject.py checks it). Torch-free to
import: each method imports torch where it needs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from senet_cli.errors import ArgumentError, OptionError, SenetError
from senet_cli.options import ExternalConfig, ModelConfig, parse_int
from senet_cli.outside.build import PASS_THROUGH, FoundAttention, Layout
from senet_cli.outside.names import external_config, is_external, refuse_attention_classes
from senet_cli.prune.record import is_checkpoint_file, refuse_beside_checkpoint
from senet_cli.zoo.models import baseline_config, make_config

if TYPE_CHECKING:
    from torch import nn

OUTSIDE_INPUT = 224
"""The input side of a model outside the zoo that states none (ImageNet's; timm's state theirs:
senet_cli/outside/inputs.py)."""


@dataclass(frozen=True)
class Gate:
    """One gate of a built model: the submodule whose output multiplies the features."""

    block: str  # the block holding it (a row of count's table)
    label: str  # its path relative to the block ("se.gate", "attn.scale_activation")
    stage: int
    module: Any  # the gate submodule itself, to hook
    replaces_conv: bool  # its attention module replaces a conv (SK): a constant gate is not droppable
    channels: int | None = None  # the feature channels it varies over, seen as it multiplies (None: its shape's)


class Subject(ABC):
    """A model the jobs can build and take apart (see the module doc)."""

    config: ModelConfig | ExternalConfig

    @property
    def name(self) -> str:
        return self.config.name

    def as_dict(self) -> dict[str, Any]:
        """The options as a JSON-ready dict (the reports' `options`)."""
        return self.config.as_dict()

    @abstractmethod
    def build(self, *, meta: bool = False, init: bool = True) -> nn.Module:
        """The model: random weights on the CPU; on the meta device with `meta`; with `init=False` its
        weights left as allocated (they are about to be loaded)."""

    @abstractmethod
    def attention(self, model: nn.Module) -> tuple[FoundAttention, ...]:
        """The outermost attention modules of `model` (built by `build`), in module order."""

    @abstractmethod
    def blocks(self, model: nn.Module) -> list[tuple[str, int]]:
        """(path, stage) of each block of `model`, in module order."""

    def block_members(self, model: nn.Module) -> dict[str, str]:
        """Modules outside a block's subtree charged to it: {module path: block path}."""
        return {}

    @abstractmethod
    def baseline(self, found: Sequence[FoundAttention]) -> Subject | None:
        """The same model without attention (`found`: this subject's attention), or None: no attention to
        remove, or no pass-through stands for it (`notes` says which)."""

    @abstractmethod
    def without_stage(self, stage: int, found: Sequence[FoundAttention], model: nn.Module) -> Subject | None:
        """The model without the attention of one stage (profile's per-stage ablation; where some of it
        replaces a conv, without the rest: `stage_note` says so), or None where none of it has a
        pass-through."""

    def stage_note(self, stage: int, found: Sequence[FoundAttention], model: nn.Module) -> str | None:
        """What a report says of one stage's ablation where it is partial or missing (None: nothing)."""
        return None

    @abstractmethod
    def attention_stages(self, model: nn.Module, found: Sequence[FoundAttention]) -> tuple[int, ...]:
        """The stages holding attention, in order."""

    @abstractmethod
    def notes(self, found: Sequence[FoundAttention], has_baseline: bool) -> tuple[str, ...]:
        """What the reports say about the attention found and the baseline."""

    def attention_summary(self, found: Sequence[FoundAttention]) -> tuple[tuple[str, int], ...]:
        """(class name, count) of the attention found, for count's report (empty: not reported)."""
        return ()

    def attention_found(self, found: Sequence[FoundAttention], has_baseline: bool) -> tuple[dict[str, Any], ...]:
        """Each attention module found, for count's JSON (`attention_found`; empty: not reported): its
        path, class, how it was found ("class" or "structure"), role, and whether the baseline removes it."""
        return ()

    @abstractmethod
    def input_sides(self) -> tuple[int, int, str]:
        """(default side, minimum side, what to name in a refusal)."""

    @abstractmethod
    def output_classes(self, model: nn.Module) -> int:
        """The classifier's width (training labels are drawn below it)."""

    @abstractmethod
    def short_text(self) -> str:
        """The options that differ from the defaults, in a few words, for table titles."""

    @abstractmethod
    def gates(self, model: nn.Module) -> tuple[list[Gate], dict[str, int]]:
        """Every gate of `model` in forward order, and each block's attention parameter count."""

    @abstractmethod
    def no_gates_reason(self) -> str:
        """Why `inspect` finds no gate to hook in this model (one line)."""

    @abstractmethod
    def with_weights(self, state: dict[str, Any], device: Any = "cpu") -> nn.Module:
        """The model holding `state` (every key, strictly; as float32), in eval mode on `device`."""


class ZooSubject(Subject):
    """A model of the zoo, described by its ModelConfig."""

    def __init__(self, config: ModelConfig) -> None:
        self.config: ModelConfig = config

    def build(self, *, meta: bool = False, init: bool = True) -> nn.Module:
        from senet_cli.zoo.meta import build_on_meta, skip_weight_init
        from senet_cli.zoo.models import build_from_config

        if meta:
            return build_on_meta(self.config)
        if not init:
            with skip_weight_init():
                return build_from_config(self.config)
        return build_from_config(self.config)

    def attention(self, model: nn.Module) -> tuple[FoundAttention, ...]:
        from senet_cli.attention.base import AttentionModule

        role = self._role()
        found: list[FoundAttention] = []
        for path, module in model.named_modules():
            if isinstance(module, AttentionModule) and not any(path.startswith(f"{f.path}.") for f in found):
                found.append(FoundAttention(path, type(module).__name__, role, None))
        return tuple(found)

    def _role(self) -> str:
        from senet_cli.attention import ATTENTION
        from senet_cli.outside.known import OWN_ROLE_BY_SLOT

        if self.config.attention is None:
            return "gate"
        return OWN_ROLE_BY_SLOT.get(ATTENTION.get(self.config.attention).slot, "gate")

    def blocks(self, model: nn.Module) -> list[tuple[str, int]]:
        from senet_cli.backbones import BACKBONES

        return list(BACKBONES.get(self.config.backbone).block_paths(model))

    def block_members(self, model: nn.Module) -> dict[str, str]:
        from senet_cli.backbones import BACKBONES

        return dict(BACKBONES.get(self.config.backbone).block_members(model))

    def baseline(self, found: Sequence[FoundAttention]) -> Subject | None:
        return ZooSubject(baseline_config(self.config)) if self.config.attention is not None else None

    def without_stage(self, stage: int, found: Sequence[FoundAttention], model: nn.Module) -> Subject | None:
        kept = tuple(s for s in self.config.stages if s != stage)
        return ZooSubject(replace(self.config, stages=kept)) if kept else self.baseline(found)

    def attention_stages(self, model: nn.Module, found: Sequence[FoundAttention]) -> tuple[int, ...]:
        return self.config.stages if self.config.attention is not None else ()

    def notes(self, found: Sequence[FoundAttention], has_baseline: bool) -> tuple[str, ...]:
        return ()

    def input_sides(self) -> tuple[int, int, str]:
        from senet_cli.backbones import BACKBONES

        spec = BACKBONES.get(self.config.backbone)
        return spec.default_input, spec.min_input, self.config.backbone

    def output_classes(self, model: nn.Module) -> int:
        return self.config.num_classes

    def short_text(self) -> str:
        from senet_cli.attention import ATTENTION, stages_by_rule
        from senet_cli.backbones import BACKBONES

        config = self.config
        parts: list[str] = []
        if config.attention is not None:
            spec = ATTENTION.get(config.attention)
            if spec.uses_ratio:
                parts.append(f"r={config.ratio}")
            defaults = spec.option_defaults()
            parts += [f"{k}={v}" for k, v in config.attention_options if defaults.get(k) != v]
            if config.placement != "standard":
                parts.append(f"placement={config.placement}")
            if config.stages != stages_by_rule(spec.stage_rule, BACKBONES.get(config.backbone).stage_count):
                parts.append("stages=" + ",".join(map(str, config.stages)))
        if config.variant != "v1.5":
            parts.append(f"variant={config.variant}")
        if config.num_classes != BACKBONES.get(config.backbone).default_num_classes:
            parts.append(f"classes={config.num_classes}")
        return " ".join(parts + _pruned_text(config.pruned))

    def gates(self, model: nn.Module) -> tuple[list[Gate], dict[str, int]]:
        """Each block's attention modules (its own subtree and its members'), and in each the
        submodules named by the zoo's gate convention (`is_gate`)."""
        from senet_cli.attention.base import AttentionModule, is_gate

        members = self.block_members(model)
        replaces_conv = self._role() == "conv"
        gates: list[Gate] = []
        attention_params: dict[str, int] = {}
        for path, stage in self.blocks(model):
            parts = [(path, "")] + [(member, f"{member}.") for member, owner in members.items() if owner == path]
            found = [(f"{prefix}{name}", module) for part, prefix in parts
                     for name, module in model.get_submodule(part).named_modules()]
            for name, module in found:
                if not isinstance(module, AttentionModule) or not name:
                    continue
                attention_params[path] = attention_params.get(path, 0) + sum(p.numel() for p in module.parameters())
                gates += [Gate(path, f"{name}.{sub_name}", stage, gate, replaces_conv)
                          for sub_name, gate in module.named_modules() if is_gate(sub_name, gate)]
        return gates, attention_params

    def no_gates_reason(self) -> str:
        if self.config.attention is None:
            return f"{self.name} has no attention gates to inspect: it is a plain backbone"
        return (f"{self.name} has no attention gates to inspect: its {self.config.attention} modules add a context "
                f"term instead of scaling by a gate non-linearity (gc with fusion=mul has one)")

    def with_weights(self, state: dict[str, Any], device: Any = "cpu") -> nn.Module:
        import torch

        model = self.build(meta=True)
        model.load_state_dict(state, strict=True, assign=True)
        leftover = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
        if leftover:
            raise SenetError(f"{self.name} has tensors a checkpoint does not hold: {', '.join(leftover[:3])}")
        return model.to(device=device, dtype=torch.float32).eval()


class OutsideSubject(Subject):
    """A model from outside the zoo (senet_cli/outside/), described by its ExternalConfig; `removed`:
    the paths of the attention modules replaced by nn.Identity in what `build` returns (the baseline,
    a stage's ablation), `label`: its name then."""

    def __init__(self, config: ExternalConfig, removed: tuple[str, ...] = (), label: str | None = None) -> None:
        self.config: ExternalConfig = config
        self.removed = removed
        self._label = label
        self._found: tuple[FoundAttention, ...] | None = None
        self._blocks: Layout | None = None

    @property
    def name(self) -> str:
        return self._label or self.config.name

    def build(self, *, meta: bool = False, init: bool = True) -> nn.Module:
        from torch import nn

        from senet_cli.outside.build import build_external

        model = build_external(self.config, meta=meta, init=init)
        if self.config.pruned:  # what `senet prune` took out: pass-throughs (senet_cli/prune/record.py)
            from senet_cli.prune.record import apply_pruning

            apply_pruning(model, self.config.pruned, self.config.name)
        for path in self.removed:
            model.set_submodule(path, nn.Identity())
        if not self.removed:
            model.senet_config = self.config  # type: ignore[assignment]  # stub: Tensor|Module; for save_checkpoint
        return model

    def attention(self, model: nn.Module) -> tuple[FoundAttention, ...]:
        """Found once per subject, on a meta build at the default input (the structural probe runs the
        model; paths are the same in a model holding weights). A named attention class that matches no
        module is refused in one line."""
        from senet_cli.outside.build import describe, find_attention, unmatched_classes

        if self._found is None:
            meta = self.build(meta=True)
            side = self.input_sides()[0]
            # a batch of 2: a train-mode BatchNorm on pooled [1, C, 1, 1] maps (SK's) refuses a batch of 1
            self._found = find_attention(meta, self.config.attention_classes, (2, 3, side, side))
            missing = unmatched_classes(meta, self.config.attention_classes) if not self.removed else ()
            if missing:
                seen = f"; its attention found: {describe(self._found)}" if self._found else ""
                raise SenetError(f"attention class {', '.join(missing)} matches no module of {self.config.name}"
                                 f"{seen}")
        return self._found

    def blocks(self, model: nn.Module) -> list[tuple[str, int]]:
        return list(self._layout(model).blocks)

    def block_members(self, model: nn.Module) -> dict[str, str]:
        """A stage's parts outside its blocks (a downsample, DenseNet's transition), charged to a block."""
        return dict(self._layout(model).members)

    def _layout(self, model: nn.Module) -> Layout:
        """The blocks, stages and members, found once per subject on a meta build (the same paths in a
        model holding weights: stages are measured on meta)."""
        from senet_cli.outside.build import external_layout
        from senet_cli.outside.inputs import default_input

        if self._blocks is None:
            side = default_input(self.config).side
            weights = next(iter(model.parameters()), None)
            if weights is not None and not weights.is_meta:
                model = self.build(meta=True)
            self._blocks = external_layout(model, [item.path for item in self.attention(model)], side)
        return self._blocks

    def baseline(self, found: Sequence[FoundAttention]) -> Subject | None:
        """The model with each attention module that can pass through replaced by nn.Identity; those
        replacing a conv are kept (a partial baseline, `notes` say so); None when none can go."""
        from senet_cli.outside.build import baseline_name

        removable = tuple(item.path for item in found if item.passes_through)
        if not removable:
            return None
        return OutsideSubject(self.config, removable, baseline_name(self.config, len(removable) < len(found)))

    def without_stage(self, stage: int, found: Sequence[FoundAttention], model: nn.Module) -> Subject | None:
        """The model with the stage's attention modules that can pass through replaced by nn.Identity; those
        replacing a conv are kept (`stage_note` names them); None when none of the stage's can go."""
        stage_of = self._stage_of(model, found)
        removable = tuple(item.path for item in found if stage_of[item.path] == stage and item.role in PASS_THROUGH)
        return OutsideSubject(self.config, removable, self.config.name) if removable else None

    def stage_note(self, stage: int, found: Sequence[FoundAttention], model: nn.Module) -> str | None:
        """Where the stage holds attention that replaces a conv: which modules its ablation removes and which
        it keeps, or why it has none."""
        from senet_cli.outside.build import describe

        stage_of = self._stage_of(model, found)
        chosen = [item for item in found if stage_of[item.path] == stage]
        kept = [item for item in chosen if item.role not in PASS_THROUGH]
        if not kept:
            return None
        removed = [item for item in chosen if item.role in PASS_THROUGH]
        if not removed:
            return (f"no per-stage cost for stage {stage}: its attention ({describe(kept)}) replaces a convolution "
                    f"rather than gating its input, so no pass-through stands for the stage without it")
        return (f"stage {stage}'s cost is that of its {describe(removed)} (replaced by a pass-through); kept: "
                f"{describe(kept)} (it replaces a convolution: no pass-through stands for it)")

    def attention_stages(self, model: nn.Module, found: Sequence[FoundAttention]) -> tuple[int, ...]:
        return tuple(sorted(set(self._stage_of(model, found).values())))

    def _stage_of(self, model: nn.Module, found: Sequence[FoundAttention]) -> dict[str, int]:
        """The stage of each attention module: its block's, or that of the block it is a member of (1 where
        no block holds it)."""
        blocks = self.blocks(model)
        stage_of = dict(blocks)
        members = self.block_members(model)

        def stage(item: FoundAttention) -> int:
            held = next((stage for path, stage in blocks if _within(item.path, path)), None)
            if held is not None:
                return held
            owner = next((block for member, block in members.items() if _within(item.path, member)), None)
            return stage_of.get(owner, 1) if owner is not None else 1

        return {item.path: stage(item) for item in found}

    def notes(self, found: Sequence[FoundAttention], has_baseline: bool) -> tuple[str, ...]:
        from senet_cli.outside.build import notes
        from senet_cli.outside.inputs import input_note

        return notes(self.config, found, has_baseline) + input_note(self.config)

    def attention_summary(self, found: Sequence[FoundAttention]) -> tuple[tuple[str, int], ...]:
        classes: dict[str, int] = {}
        for item in found:
            classes[item.class_name] = classes.get(item.class_name, 0) + 1
        return tuple(classes.items())

    def attention_found(self, found: Sequence[FoundAttention], has_baseline: bool) -> tuple[dict[str, Any], ...]:
        return tuple({"path": item.path, "class": item.qualified or item.class_name, "found_by": item.found_by,
                      "role": item.role, "removed_in_baseline": has_baseline and item.passes_through}
                     for item in found)

    def input_sides(self) -> tuple[int, int, str]:
        from senet_cli.outside.inputs import default_input

        return default_input(self.config).side, 1, self.config.name

    def output_classes(self, model: nn.Module) -> int:
        from senet_cli.outside.build import output_classes

        return output_classes(self.config, model)

    def short_text(self) -> str:
        parts = [f"{key}={value}" for key, value in self.config.kwargs]
        return " ".join(parts + [f"attention={reference}" for reference in self.config.attention_classes]
                        + _pruned_text(self.config.pruned))

    def gates(self, model: nn.Module) -> tuple[list[Gate], dict[str, int]]:
        """In each attention module found, the submodules whose outputs multiply the features: those seen
        doing so when it was probed (with the channels they vary over), else those the class table names
        (timm's `gate`, torchvision's `scale_activation`), or for the zoo's and the caller's classes,
        those named by the zoo's convention (`is_gate`)."""
        from senet_cli.attention.base import is_gate

        found = self.attention(model)
        blocks = self.blocks(model)
        gates: list[Gate] = []
        attention_params: dict[str, int] = {}
        for item in found:
            block, stage = next(((path, stage) for path, stage in blocks if _within(item.path, path)), (item.path, 1))
            module = model.get_submodule(item.path)
            attention_params[block] = attention_params.get(block, 0) + sum(p.numel() for p in module.parameters())
            names = item.gates if item.gates is not None else tuple(
                name for name, sub in module.named_modules() if name and is_gate(name, sub)
            )
            relative = item.path[len(block) + 1:] if item.path != block else ""
            channels = {use.path: use.channels for use in item.uses}
            gates += [Gate(block, ".".join(part for part in (relative, sub_name) if part), stage,
                           module.get_submodule(sub_name), item.role == "conv", channels.get(sub_name))
                      for sub_name in names]
        return gates, attention_params

    def no_gates_reason(self) -> str:
        from senet_cli.outside.build import describe

        found = self._found or ()
        gating = [item for item in found if not item.gates and item.role != "conv"]
        weighing = [item for item in found if not item.gates and item.role == "conv"]
        said = ([f"its {describe(gating)} multiply their input by no gate submodule (an add fusion, as timm's "
                 f"GlobalContext's, or a functional gate)"] if gating else []) + (
                [f"its {describe(weighing)} replace a conv and scale by no gate submodule (self-attention)"]
                if weighing else [])
        if said:
            return f"{self.name} has no attention gates to inspect: {'; '.join(said)}"
        return (f"{self.name} has no attention gates to inspect: no attention module found in it has a gate "
                f"submodule (see README 'Bring your own model')")

    def with_weights(self, state: dict[str, Any], device: Any = "cpu") -> nn.Module:
        """Built on the CPU without weight init (buffers a state dict does not hold, such as timm's
        non-persistent ones, are computed as the builder computes them), then loaded strictly."""
        import torch

        model = self.build(init=False)
        model.load_state_dict(state, strict=True)
        return model.to(device=device, dtype=torch.float32).eval()


def subject_for(model: str | ModelConfig | ExternalConfig | Subject, options: dict[str, Any] | None = None,
                attention_classes: Sequence[str] = ()) -> Subject:
    """`model` checked into a Subject: a zoo name with its build options, a ModelConfig (then no
    options: it holds them all), a name outside the zoo (`torchvision:NAME`, `timm:NAME`,
    `file.py:callable`, `package.module:callable`) with its builder's keywords and the caller's
    `attention_classes` ("PATH_OR_MODULE:Class"), an ExternalConfig, or a Subject (returned as is)."""
    options = dict(options or {})
    if isinstance(model, Subject):
        _refuse_options(model.name, options, attention_classes)
        return model
    if isinstance(model, ExternalConfig) or (isinstance(model, str) and is_external(model)):
        return OutsideSubject(external_config(model, options, attention_classes))
    refuse_attention_classes(attention_classes, model.name if isinstance(model, ModelConfig) else model)
    if isinstance(model, ModelConfig):
        _refuse_options(model.name, options, ())
        return ZooSubject(model)
    return ZooSubject(make_config(model, **options))


def _refuse_options(name: str, options: dict[str, Any], attention_classes: Sequence[str]) -> None:
    if options:
        key = next(iter(options))
        raise OptionError(key, options[key], "no option beside a ModelConfig",
                          f"{name} is given as a ModelConfig, which holds every option; got {', '.join(options)}")
    if attention_classes:
        raise SenetError(f"{name} is given built, with its attention classes; got attention_classes")


def check_attention_classes(model: object, attention_classes: Sequence[str]) -> None:
    """Refuse attention classes given with anything but a model outside the zoo (they name its classes)."""
    if attention_classes and not is_external(model):
        raise ArgumentError("{attention_classes} names attention classes of a model outside the zoo, given with "
                            "{model}", arguments={"attention_classes": "attention_classes",
                                                  "model": ("model", "torchvision:NAME")})


def input_shape(model: ModelConfig | ExternalConfig | Subject, input_size: int | Sequence[int] | None,
                batch: int) -> tuple[int, int, int, int]:
    """[batch, 3, H, W] for `model`, checked against its total stride (a model outside the zoo: its own
    default, timm's pretrained_cfg input_size, else 224; any size; one it cannot take fails when it runs)."""
    default_input, min_input, what = subject_for(model).input_sides()
    batch = parse_int(batch, "batch")
    if batch < 1:
        raise OptionError("batch", batch, "at least 1", f"batch must be at least 1, got {batch}")
    if input_size is None:
        height = width = default_input
    elif isinstance(input_size, int):
        height = width = parse_int(input_size, "input_size")
    else:
        height, width = (parse_int(side, "input_size") for side in input_size)
    if min(height, width) < min_input:
        raise OptionError(
            "input_size", (height, width), f"at least {min_input} a side",
            f"input {height}x{width} is too small for {what}: it downsamples by "
            f"{min_input}, so each side must be at least {min_input}",
        )
    return batch, 3, height, width


def takes_ratio(name: str) -> bool:
    """Whether the model `name` has a reduction ratio to sweep: a zoo model whose attention uses one
    (not a plain backbone, not eca or simam); a model outside the zoo takes its builder's keywords."""
    return ratio_note(name) is None and not is_external(name) and not is_checkpoint_file(name)


def ratio_note(name: str) -> str | None:
    """Why `name` takes no reduction ratio ("resnet50 (a plain backbone)"), or None: it takes one, or
    it is outside the zoo (whose keywords its builder checks)."""
    from senet_cli.attention import ATTENTION
    from senet_cli.zoo.models import parse_name

    if is_external(name) or is_checkpoint_file(name):
        return None
    attention, _ = parse_name(name)
    if attention is None:
        return f"{name} (a plain backbone)"
    if not ATTENTION.get(attention).uses_ratio:
        return f"{name} ({attention} has no reduction ratio)"
    return None


def configurations(models: Sequence[str], ratios: Sequence[int | None] = (None,), options: dict[str, Any] | None = None,
                   attention_classes: Sequence[str] = ()) -> list[Subject | str]:
    """One subject per model and ratio (`models x ratios`), duplicates dropped: a model that takes no
    ratio (`takes_ratio`) is made once, with the first ratio; a model outside the zoo, or any model
    given `attention_classes`, once, with the first ratio as a keyword when one is given (and not
    de-duplicated: its builder may take a name twice on purpose). A checkpoint file's name
    (.pth/.pt/.ckpt/.safetensors) is passed through as it is, with no option: `count()` builds the
    architecture the file records (a pruned one too)."""
    options = dict(options or {})
    ratios = list(ratios) or [None]
    subjects: list[Subject | str] = []
    for name in models:
        if is_checkpoint_file(name):  # count() reads its architecture from the file (senet_cli/prune/source.py)
            refuse_beside_checkpoint(name, {**options, **({} if ratios[0] is None else {"ratio": ratios[0]})},
                                     attention_classes)
            subjects.append(name)
            continue
        sweep = ratios if takes_ratio(name) and not attention_classes else ratios[:1]
        for ratio in sweep:
            given = options if ratio is None else {**options, "ratio": ratio}
            subject = subject_for(name, given, attention_classes)
            if is_external(name) or all(isinstance(other, str) or subject.config != other.config
                                        for other in subjects):
                subjects.append(subject)
    return subjects


def _pruned_text(pruned: Sequence[tuple[str, str]]) -> list[str]:
    """What `senet prune` took out, in a few words ("pruned: folded 2, removed 1"), or nothing."""
    done = [f"{how} {sum(1 for _, h in pruned if h == how)}" for how in ("folded", "removed")
            if any(h == how for _, h in pruned)]
    return [f"pruned: {', '.join(done)}"] if done else []


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")
