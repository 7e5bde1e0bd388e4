"""Which zoo model a checkpoint's weights belong to, and the model built from them.

A checkpoint in a foreign key layout (Cadene's, a tutorial's, timm's SK: checkpoint/layouts/) is first
recognised from its keys alone and mapped in memory to the zoo model that computes the same
function; everything below then works on the mapped keys. The mapping runs once per `resolve`:
the `Resolved` it returns carries the weights in the zoo's key layout (`state`), and
`materialize` only builds the model and loads them strictly.

Three ways to name the architecture, in this order:
  1. the caller's `model` name and options;
  2. the metadata our own `save_checkpoint` writes (model name and every option);
  3. detection from the weights alone: the backbone whose layout fits (blocks per stage, stem,
     widths), the one attention module whose keys sit in its blocks, the stages that have it,
     num_classes from the classifier, and the module's options and ratio from its weight shapes.
     A candidate is accepted only when a model built from it has exactly the checkpoint's keys
     and shapes. When no zoo model fits, the fall-back: a raw timm or torchvision state dict named
     from its keys and shapes by an index of those libraries' models (senet_cli/outside/index.py),
     resolved to that model outside the zoo (`Resolved.config` is then an ExternalConfig).

What weights cannot tell (the same shapes either way) is assumed at its default and said in the
notes: the ResNet variant (stride on the 1x1 or the 3x3), standard/post/identity placement, SE's
squeeze and gate. A misfit is reported as missing, unexpected and mis-shaped keys, in one line.

Models are built on the meta device (no weight initialisation, no memory), then take the
checkpoint's tensors by `load_state_dict(assign=True)`: no copy of a large checkpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from senet_cli.attention import ATTENTION
from senet_cli.backbones import BACKBONES
from senet_cli.checkpoint.counters import fill_step_counters, is_step_counter
from senet_cli.checkpoint.fits import may_fit
from senet_cli.checkpoint.loading import Checkpoint
from senet_cli.errors import ArchitectureError, SenetError
from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.prune.record import with_record
from senet_cli.zoo import build_on_meta, make_config

Shapes = Mapping[str, tuple[int, ...]]


@dataclass(frozen=True)
class Skeleton:
    """What a configuration's model looks like without its weights."""

    shapes: dict[str, tuple[int, ...]]
    classifier: str  # key prefix of the last Linear layer, e.g. "fc"
    blocks: tuple[tuple[str, int], ...]  # (module path, stage) per residual block
    members: tuple[tuple[str, str], ...] = ()  # (module path, block path) of modules outside every block path


@dataclass(frozen=True)
class Fit:
    """How a checkpoint's keys compare with a model's."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    misshaped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # key, checkpoint, model

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.misshaped)

    @property
    def size(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.misshaped)

    def describe(self, limit: int = 3) -> str:
        parts = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                more = ", ..." if len(keys) > limit else ""
                parts.append(f"{len(keys)} {label} ({', '.join(keys[:limit])}{more})")
        if self.misshaped:
            shown = [f"{k}: checkpoint {list(a)} vs model {list(b)}" for k, a, b in self.misshaped[:limit]]
            more = ", ..." if len(self.misshaped) > limit else ""
            parts.append(f"{len(self.misshaped)} mis-shaped ({'; '.join(shown)}{more})")
        return ", ".join(parts)


@dataclass(frozen=True)
class Resolved:
    """The configuration a checkpoint was matched to, how, what had to be assumed, and its weights.

    `state` is what `materialize` loads: the checkpoint's tensors under the keys of `config`'s
    model (mapped from `layout` when the file was in one, wrapper prefixes already stripped by
    loading, missing BN step counters filled with zeros), as read (dtype kept; not copied). It is
    empty when nothing was read (`detect` on shapes alone, or a configuration given without a file).
    """

    config: ModelConfig | ExternalConfig  # ExternalConfig: a raw timm/torchvision file (the fall-back)
    source: str  # "given", "metadata" or "detected"
    notes: tuple[str, ...] = ()
    layout: str | None = None  # the foreign key layout the weights were mapped from ("cadene"), or None: ours
    state: dict[str, torch.Tensor] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class LayoutMatch:
    """A checkpoint recognised in a foreign layout, mapped: the layout's name and what it maps to."""

    layout: str
    repository: str
    config: ModelConfig
    state_dict: dict[str, torch.Tensor]  # exactly the keys and shapes of `config`'s model
    notes: tuple[str, ...]

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: tuple(value.shape) for key, value in self.state_dict.items()}

    @property
    def note(self) -> str:
        return f"weights in {self.layout}'s key layout ({self.repository}), mapped to {self.config.name}"


@functools.lru_cache(maxsize=32)
def skeleton(config: ModelConfig) -> Skeleton:
    """Build `config` on the meta device and read its keys, shapes, classifier and blocks."""
    model = build_on_meta(config)
    classifier = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
    spec = BACKBONES.get(config.backbone)
    blocks = spec.block_paths(model)
    members = tuple(spec.block_members(model).items())
    return Skeleton({k: tuple(v.shape) for k, v in model.state_dict().items()}, classifier, tuple(blocks), members)


def compare(shapes: Shapes, expected: Shapes) -> Fit:
    """Missing (in the model, not the checkpoint), unexpected and mis-shaped keys."""
    missing = tuple(k for k in expected if k not in shapes and not is_step_counter(k))
    unexpected = tuple(k for k in shapes if k not in expected)
    misshaped = tuple((k, tuple(shapes[k]), v) for k, v in expected.items() if k in shapes and tuple(shapes[k]) != v)
    return Fit(missing, unexpected, misshaped)


def match_layout(checkpoint: Checkpoint) -> LayoutMatch | None:
    """The checkpoint's weights mapped from the foreign layout its keys are in, or None when no
    registered layout claims them (ours, or unknown). Raises when a layout claims them but its
    mapping does not fit the zoo model exactly (missing, unexpected or mis-shaped keys)."""
    from senet_cli.checkpoint.layouts import recognise

    layout = recognise(checkpoint.shapes)
    if layout is None:
        return None
    try:
        mapped = layout.to_senet(checkpoint.state_dict)
    except SenetError as error:
        raise ArchitectureError("{path} is in {layout}'s key layout ({repository}), but {reason}", arguments=(),
                                path=checkpoint.path, layout=layout.name, repository=layout.repository,
                                reason=str(error)) from None
    expected = skeleton(mapped.config).shapes
    state = fill_step_counters(dict(mapped.state_dict), expected)  # the counters old torch and Caffe ports lack
    fit = compare({key: tuple(value.shape) for key, value in state.items()}, expected)
    if not fit.exact:
        raise ArchitectureError(
            "{path} is in {layout}'s key layout ({repository}), but mapped to {model} it does not fit: {fit}",
            arguments=(), path=checkpoint.path, layout=layout.name, repository=layout.repository,
            model=mapped.config.name, fit=fit.describe(),
        )
    return LayoutMatch(layout.name, layout.repository, mapped.config, state, mapped.notes)


def resolve(checkpoint: Checkpoint, model: str | None = None, *, outside_the_zoo: bool = False,
            **options: Any) -> Resolved:
    """The configuration of `checkpoint` (given, from its metadata, or detected; see the module doc),
    with its weights in that configuration's key layout (`Resolved.state`): a foreign layout is
    mapped here, once, and nothing after this maps it again. With `outside_the_zoo`, a raw timm or
    torchvision state dict no zoo model fits resolves to that model (an ExternalConfig); without it,
    `config` is always the zoo's."""
    match = match_layout(checkpoint)
    if match is None:
        found = _resolve(checkpoint, checkpoint.shapes, model, options, outside_the_zoo=outside_the_zoo)
        weights = checkpoint.state_dict
        if found.state:  # a model outside the zoo (the fall-back): its weights are keyed and completed there
            return found
    else:
        found, weights = _resolve(checkpoint, match.shapes, model, options, match.config), match.state_dict
        found = replace(found, notes=(match.note, *match.notes, *found.notes), layout=match.layout)
    return replace(found, state=fill_step_counters(dict(weights), skeleton(found.config).shapes))


def _resolve(checkpoint: Checkpoint, shapes: Shapes, model: str | None, options: dict[str, Any],
             mapped: ModelConfig | None = None, outside_the_zoo: bool = False) -> Resolved:
    """resolve() on `shapes` (the checkpoint's, or mapped from a layout to the `mapped` model)."""
    if model is not None:
        config = make_config(model, **options)
        try:
            _require_fit(shapes, config, f"{checkpoint.path} does not fit {config.name}")
        except ArchitectureError as error:
            try:  # on the shapes already mapped: the layout is not mapped a second time
                found = _resolve(checkpoint, shapes, None, {}, mapped, outside_the_zoo).config
            except SenetError:
                raise error from None
            described = ", ".join(
                f"{k}={v}" for k, v in found.as_dict().items() if k in ("ratio", "num_classes", "stages")
            )
            raise ArchitectureError(
                error.template + "; its weights fit {fits} ({described}): drop {model} to use that",
                arguments={**error.arguments, "model": "model"}, **error.fields, fits=found.name, described=described,
            ) from None
        return Resolved(config, "given")
    meta_model = checkpoint.metadata.get("model")
    if isinstance(meta_model, str):
        meta_options = checkpoint.metadata.get("options") or {}
        config = make_config(meta_model, **dict(meta_options))
        config = with_record(config, checkpoint.metadata, checkpoint.path, checkpoint.path)  # `senet prune`'s
        _require_fit(shapes, config, f"{checkpoint.path}'s metadata names {config.name}, but its weights do not fit")
        return Resolved(config, "metadata")
    if mapped is not None:
        return Resolved(mapped, "detected")
    try:
        return detect(shapes, checkpoint.path)
    except ArchitectureError as error:
        if not outside_the_zoo:
            raise
        return _outside_the_zoo(checkpoint, shapes, error)


def _outside_the_zoo(checkpoint: Checkpoint, shapes: Shapes, error: ArchitectureError) -> Resolved:
    """The fall-back when no zoo model fits: a raw timm or torchvision state dict recognised from its keys
    and shapes (senet_cli/outside/index.py), its weights keyed and completed for that model; refused
    with `error` and the `timm:NAME` form when no indexed model fits either."""
    from senet_cli.outside.index import load_index, names_of, recognise
    from senet_cli.subject import subject_for

    index = load_index()
    match = recognise(shapes, index)
    if match is None:
        raise ArchitectureError(
            error.template.partition("; pass ")[0] + "; nor do they fit any of the {indexed} timm and torchvision "
            "models indexed: pass {model} (a zoo name, timm:NAME or torchvision:NAME)",
            arguments={"model": ("model", "NAME")}, **error.fields, indexed=len(index.signatures),
        ) from None
    subject = subject_for(match.name, {} if match.num_classes is None else {"num_classes": match.num_classes})
    notes = [f"recognised from its keys and shapes as {match.name} (an index of timm and torchvision models)"]
    if len(match.names) > 1:
        notes.append(f"its keys fit {len(match.names)} models, {names_of(match.names)}: {match.name} is assumed; "
                     f"name the model to choose another")
    expected = {key: tuple(value.shape) for key, value in subject.build(meta=True).state_dict().items()}
    fit = compare(shapes, expected)
    if not fit.exact:  # the signatures left out BN step counters only: anything else is a defect of the index
        raise ArchitectureError("{path} does not fit {name}: {fit}", arguments=(), path=checkpoint.path,
                                name=subject.name, fit=fit.describe())
    return Resolved(subject.config, "detected", tuple(notes),
                    state=fill_step_counters(dict(checkpoint.state_dict), expected))


def detect(shapes: Shapes, where: str = "the checkpoint") -> Resolved:
    """The zoo configuration whose model has exactly these keys and shapes (module doc, step 3)."""
    closest: tuple[int, str, Fit] | None = None
    for name in BACKBONES:
        spec = BACKBONES.get(name)
        if not may_fit(spec, shapes):
            continue
        plain = skeleton(make_config(name))
        classifier_weight = f"{plain.classifier}.weight"
        if classifier_weight not in shapes:
            continue
        num_classes = shapes[classifier_weight][0]
        plain = skeleton(make_config(name, num_classes=num_classes))
        extra = {k: v for k, v in shapes.items() if k not in plain.shapes}
        attribute, stage_keys, stray = _attention_keys(extra, plain.blocks, plain.members)
        if attribute is None and not stray:
            fit = compare(shapes, plain.shapes)
            if fit.exact:
                weightless = ("parameter-free attention (simam; ge with a pooling gather) leaves no weights: "
                              "name the model if it had one")
                return Resolved(make_config(name, num_classes=num_classes), "detected",
                                _assumed(name, None, {}) + (weightless,))
            closest = _closer(closest, name, fit)
            continue
        if attribute is None or attribute not in ATTENTION or stray:
            closest = _closer(closest, name, compare(shapes, plain.shapes))
            continue
        attention = ATTENTION.get(attribute)
        candidates, notes = attention.infer_options(stage_keys, spec.stage_count)
        stages = sorted(stage_keys)
        for candidate in candidates or [{}]:
            for placement in ("standard", "pre"):
                try:
                    config = make_config(f"{attribute}_{name}", num_classes=num_classes, stages=stages,
                                         placement=placement, **candidate)
                    fit = compare(shapes, skeleton(config).shapes)
                except SenetError:
                    continue
                if fit.exact:
                    assumed = _assumed(name, attention.name, candidate, placement)
                    return Resolved(config, "detected", tuple(notes) + assumed)
                closest = _closer(closest, config.name, fit)
    if closest is None:
        raise ArchitectureError(
            "could not detect the architecture of {path}: its keys fit no backbone of the zoo ({backbones}); "
            "pass {model}",
            arguments={"model": ("model", "NAME")}, path=where, backbones=", ".join(BACKBONES), closest=None,
        )
    _, name, fit = closest
    raise ArchitectureError(
        "could not detect the architecture of {path}: closest is {closest} with {fit}; pass {model} and its "
        "options",
        arguments={"model": ("model", "NAME")}, path=where, closest=name, fit=fit.describe(),
    )


def materialize(resolved: Resolved, device: torch.device | str = "cpu") -> nn.Module:
    """The model of `resolved.config` holding `resolved.state` (as float32), in eval mode on `device`.

    Only builds and loads: the weights were mapped to the zoo's key layout by `resolve`.
    """
    from senet_cli.subject import subject_for

    config = resolved.config
    if not resolved.state:
        raise SenetError(f"no weights to load into {config.name}: resolve() it from a checkpoint first")
    return subject_for(config).with_weights(dict(resolved.state), device)


def _require_fit(shapes: Shapes, config: ModelConfig, message: str) -> None:
    fit = compare(shapes, skeleton(config).shapes)
    if fit.exact:
        return
    classifier = skeleton(config).classifier
    mismatch = f"{message}: {fit.describe()}"
    if all(k.startswith(f"{classifier}.") for k, _, _ in fit.misshaped) and fit.misshaped and not fit.missing:
        classes = fit.misshaped[0][1][0]
        raise ArchitectureError("{mismatch}; pass {num_classes}", arguments={"num_classes": ("num_classes", classes)},
                                mismatch=mismatch, fit=fit.describe(), classes=classes)
    raise ArchitectureError("{mismatch}", arguments=(), mismatch=mismatch, fit=fit.describe())


def _attention_keys(
    extra: Shapes, blocks: tuple[tuple[str, int], ...], members: tuple[tuple[str, str], ...] = ()
) -> tuple[str | None, dict[int, dict[str, tuple[int, ...]]], list[str]]:
    """Group keys beyond the plain model by block: (the one attribute, {stage: relative shapes}, strays).

    A module stored under its registry name (`layer1.0.se.fc1.weight`) gives the attribute; one that
    replaced a conv (SK at `layer1.0.conv2`) is recognised by its spec's `marker` key suffix, and
    its keys are kept relative to the block or member module it sits in (`conv2.paths.0.conv.weight`).
    """
    owners = [(path, path) for path, _ in blocks] + list(members)
    replacing = [name for name, spec in ATTENTION.items()
                 if spec.marker and any(key.endswith(f".{spec.marker}") for key in extra)]
    attributes: set[str] = set(replacing[:1])
    per_block: dict[str, dict[str, tuple[int, ...]]] = {}
    stray: list[str] = []
    for key, shape in extra.items():
        owner = next(((path, block) for path, block in owners if key.startswith(f"{path}.")), None)
        if owner is None:
            stray.append(key)
            continue
        path, block = owner
        rest = key[len(path) + 1:]
        if not replacing:
            attribute, _, rest = rest.partition(".")
            attributes.add(attribute)
        per_block.setdefault(block, {})[rest] = tuple(shape)
    if len(attributes) > 1:
        return None, {}, sorted(attributes)
    stage_keys: dict[int, dict[str, tuple[int, ...]]] = {}
    for path, stage in blocks:  # the last block of each stage: its input and output widths agree
        if path in per_block:
            stage_keys[stage] = per_block[path]
    return (attributes.pop() if attributes else None), stage_keys, stray


def _closer(current: tuple[int, str, Fit] | None, name: str, fit: Fit) -> tuple[int, str, Fit]:
    return (fit.size, name, fit) if current is None or fit.size < current[0] else current


def _assumed(backbone: str, attention: str | None, found: Mapping[str, Any],
             placement: str = "standard") -> tuple[str, ...]:
    """The note on what the weights could not tell."""
    backbone_spec = BACKBONES.get(backbone)
    first, *alternatives = backbone_spec.variants
    verb = "has" if len(alternatives) == 1 else "have"
    unseen = [f"variant {first} ({', '.join(alternatives)} {verb} the same weights)"] if alternatives else []
    spec = ATTENTION.get(attention) if attention is not None else None
    if spec is not None and spec.slot == "branch" and placement == "standard" and len(backbone_spec.placements) > 1:
        others = " and ".join(p for p in backbone_spec.placements if p not in ("standard", "pre"))
        unseen.append(f"placement standard ({others} {'have' if ' and ' in others else 'has'} the same weights)")
    if spec is not None:
        defaults = spec.option_defaults()
        unseen += [f"{option} {defaults[option]}" for option in spec.shape_free if option not in found]
    if not unseen:
        return ()
    return (f"not visible in the weights, assumed: {', '.join(unseen)}; name the model with its options to override",)
