"""Model names -> checked configurations -> models.

Grammar: `<attention>_<backbone>` (`se_resnet50`, `cbam_resnet18_cifar`), or a bare backbone name
for the plain model. Options are keyword arguments: the common ones (`ratio`, `variant`,
`placement`, `stages`, `num_classes`) and each attention module's own (`senet list` shows them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from senet_cli.attention import ATTENTION, stages_by_rule
from senet_cli.backbones import BACKBONES, BackboneSpec, BlockAttention
from senet_cli.errors import OptionError, UnknownChoiceError, UnknownModelError, closest_match
from senet_cli.options import (
    COMMON_OPTION_NAMES,
    PLACEMENTS,
    VARIANTS,
    ModelConfig,
    parse_int,
    parse_int_list,
)

if TYPE_CHECKING:  # torch is imported when a model is built
    from torch import nn

MODEL_ALIASES = {"senet154": "se_resnext152_64x4d_senet"}
"""Names the papers and ports use for a zoo model whose grammar name nobody would type: SENet-154
is SE on its own modified ResNeXt-152 (backbones/resnet.py). The configuration keeps the alias."""


def list_models(pattern: str | None = None) -> list[str]:
    """Every buildable name: plain backbones first, then each attention on each backbone, then aliases.

    `pattern` filters with fnmatch, as torchvision's `list_models(include=...)`: "se_*", "*cifar".
    """
    import fnmatch

    names = BACKBONES.names() + [f"{a}_{b}" for a in ATTENTION for b in BACKBONES] + list(MODEL_ALIASES)
    return fnmatch.filter(names, pattern) if pattern else names


def parse_name(name: str) -> tuple[str | None, str]:
    """Split a model name into (attention or None, backbone), or raise with the closest name."""
    if name in MODEL_ALIASES:
        return parse_name(MODEL_ALIASES[name])
    if name in BACKBONES:
        return None, name
    prefix, _, rest = name.partition("_")
    if prefix in ATTENTION and rest in BACKBONES:
        return prefix, rest
    if prefix in ATTENTION and rest:
        raise UnknownChoiceError("backbone", rest, BACKBONES, where=f"model '{name}'")
    raise UnknownModelError(name, ATTENTION, closest_match(name, list_models()))


def make_config(name: str, **options: Any) -> ModelConfig:
    """Check a name and its options and return the frozen configuration they describe."""
    attention, backbone = parse_name(name)
    spec = BACKBONES.get(backbone)
    common = {key: options.pop(key) for key in COMMON_OPTION_NAMES if key in options}
    if attention is None:
        if options:
            raise OptionError(
                next(iter(options)), next(iter(options.values())), "no attention option",
                f"'{name}' is a plain backbone, so attention options ({', '.join(options)}) do not "
                f"apply; name an attention model such as 'se_{name}'",
            )
        module_options: tuple[tuple[str, Any], ...] = ()
        ratio, stages = ModelConfig.ratio, stages_by_rule("all", spec.stage_count)
    else:
        attention_spec = ATTENTION.get(attention)
        module_options = attention_spec.resolve_options(options)
        _check_per_stage(module_options, spec)
        ratio = common.get("ratio", attention_spec.default_ratio)
        stages = stages_by_rule(attention_spec.stage_rule, spec.stage_count)
    placement = _check_choice("placement", common.get("placement", "standard"), PLACEMENTS)
    if placement != "standard":
        _check_placement(placement, attention, spec)
    variant = _check_choice("variant", common.get("variant", spec.variants[0]), VARIANTS)
    if variant not in spec.variants and len(spec.variants) > 1:
        raise OptionError("variant", variant, f"one of {', '.join(spec.variants)}",
                          f"variant {variant} needs an ImageNet stem; {backbone} takes {', '.join(spec.variants)}")
    if variant not in spec.variants:
        raise OptionError("variant", variant, f"one of {', '.join(spec.variants)}",
                          f"variant {variant} applies to ResNet bottlenecks only; {backbone} has one layout")
    return ModelConfig(
        name=name,
        backbone=backbone,
        attention=attention,
        ratio=_check_ratio(ratio),
        variant=variant,
        placement=placement,
        stages=_check_stages(common.get("stages", stages), spec),
        num_classes=_check_num_classes(common.get("num_classes"), spec),
        attention_options=module_options,
    )


def build_from_config(config: ModelConfig) -> nn.Module:
    """Build the model a configuration describes (random weights, on the default device).

    Attention modules that start as the identity (Non-local's W, GC's add branch) re-initialise
    themselves after the backbone's own weight init has run over every conv and BN.
    """
    spec = BACKBONES.get(config.backbone)
    block_attention = None
    if config.attention is not None:
        attention = ATTENTION.get(config.attention)
        options = dict(config.attention_options)

        def build_attention(channels: int, stage: int, **context: Any) -> nn.Module:
            return attention.build(
                channels, stage=stage, ratio=config.ratio, options=config.attention_options, **context
            )

        block_attention = BlockAttention(
            attribute=attention.name,
            build=build_attention,
            placement=config.placement,
            stages=config.stages,
            slot=attention.slot,
            selects_block=lambda index, count: attention.selects_block(options, index, count),
        )
    model = spec.build(config.num_classes, config.variant, block_attention)
    if block_attention is not None:
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if reset is not None and type(module).__module__.startswith("senet_cli.attention"):
                reset()
    if config.pruned:  # what `senet prune` took out: pass-throughs (senet_cli/prune/record.py)
        from senet_cli.attention.base import AttentionModule
        from senet_cli.prune.record import apply_pruning

        apply_pruning(model, config.pruned, config.name, (AttentionModule,))
    # what was built, for reports and checkpoints
    model.senet_config = config  # type: ignore[assignment]  # torch's stub: Tensor/Module values only
    return model


def baseline_config(config: ModelConfig) -> ModelConfig:
    """The plain backbone with the same backbone options: what attention is measured against."""
    return make_config(config.backbone, variant=config.variant, num_classes=config.num_classes)


def _check_ratio(value: Any) -> int:
    ratio = parse_int(value, "ratio")
    if ratio < 1:
        raise OptionError("ratio", ratio, "a positive integer",
                          f"ratio must be a positive integer (the paper uses 16), got {ratio}")
    return ratio


def _check_choice(what: str, value: Any, choices: Sequence[str]) -> str:
    text = getattr(value, "value", value)  # accept Enum members too
    if text not in choices:
        raise UnknownChoiceError(what, str(text), choices)
    return str(text)


def _check_stages(value: Any, spec: BackboneSpec) -> tuple[int, ...]:
    stages = parse_int_list(value, "stages")
    allowed = range(1, spec.stage_count + 1)
    if not stages or any(stage not in allowed for stage in stages) or len(set(stages)) != len(stages):
        listed = ", ".join(str(s) for s in allowed)
        raise OptionError("stages", list(stages), f"distinct values among {listed}",
                          f"stages must be distinct values among {listed} ({spec.name} has {spec.stage_count}), "
                          f"got {list(stages)}")
    return tuple(sorted(stages))


def _check_per_stage(options: tuple[tuple[str, Any], ...], spec: BackboneSpec) -> None:
    for key, value in options:
        if isinstance(value, tuple) and len(value) != spec.stage_count:
            raise OptionError(
                key, list(value), f"one value or {spec.stage_count}",
                f"option '{key}' takes one value or one per stage: {spec.name} has {spec.stage_count} stages, "
                f"got {len(value)} values",
            )


def _check_placement(placement: str, attention: str | None, spec: BackboneSpec) -> None:
    if attention is None:
        raise OptionError("placement", placement, "standard for a plain backbone",
                          f"placement applies to attention models; '{spec.name}' is a plain backbone")
    slot = ATTENTION.get(attention).slot
    if slot != "branch":
        fixed = "after blocks" if slot == "after" else "it replaces the 3x3 conv"
        raise OptionError("placement", placement, "standard",
                          f"'{attention}' has a fixed place ({fixed}); placement applies to modules on the "
                          f"residual branch")
    supported = (*spec.placements, "inner") if spec.inner else spec.placements
    if placement not in supported:
        needs = "a ResNet or MobileNetV2 unit" if placement == "inner" else "a residual block"
        raise OptionError(
            "placement", placement, f"one of {', '.join(supported)}",
            f"placement {placement} needs {needs}; {spec.name} supports {', '.join(supported)}",
        )


def _check_num_classes(value: Any, spec: BackboneSpec) -> int:
    if value is None:
        return spec.default_num_classes
    number = parse_int(value, "num_classes")
    if number < 1:
        raise OptionError("num_classes", number, "at least 1", f"num_classes must be at least 1, got {number}")
    return number
