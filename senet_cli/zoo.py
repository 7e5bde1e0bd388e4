"""Model names -> configured models.

Grammar: `<attention>_<backbone>` (`se_resnet50`, `cbam_resnet18_cifar`), or a bare backbone name
for the plain model. Options are keyword arguments: the common ones (`ratio`, `variant`,
`placement`, `stages`, `num_classes`) and each attention module's own (`senet list` shows them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from senet_cli.attention import ATTENTION
from senet_cli.backbones import BACKBONES, BackboneSpec, BlockAttention
from senet_cli.errors import SenetError, close_match_hint, unknown_choice
from senet_cli.options import (
    ALL_STAGES,
    PLACEMENTS,
    VARIANTS,
    ModelConfig,
    parse_int,
    parse_int_list,
)

COMMON_OPTIONS = ("ratio", "variant", "placement", "stages", "num_classes")


def list_models(pattern: str | None = None) -> list[str]:
    """Every buildable name: plain backbones first, then each attention on each backbone.

    `pattern` filters with fnmatch, as torchvision's `list_models(include=...)`: "se_*", "*cifar".
    """
    import fnmatch

    names = BACKBONES.names() + [f"{a}_{b}" for a in ATTENTION for b in BACKBONES]
    return fnmatch.filter(names, pattern) if pattern else names


def parse_name(name: str) -> tuple[str | None, str]:
    """Split a model name into (attention or None, backbone), or raise with the closest name."""
    if name in BACKBONES:
        return None, name
    prefix, _, rest = name.partition("_")
    if prefix in ATTENTION and rest in BACKBONES:
        return prefix, rest
    if prefix in ATTENTION and rest:
        raise SenetError(
            f"unknown backbone '{rest}' in model '{name}'{close_match_hint(rest, BACKBONES)}; "
            f"backbones: {', '.join(BACKBONES)}"
        )
    hint = close_match_hint(name, list_models())
    raise SenetError(
        f"unknown model '{name}'{hint}; names are <attention>_<backbone> or a bare backbone, "
        f"with attention in {{{', '.join(ATTENTION)}}} (run 'senet list')"
    )


def make_config(name: str, **options: Any) -> ModelConfig:
    """Check a name and its options and return the frozen configuration they describe."""
    attention, backbone = parse_name(name)
    spec = BACKBONES.get(backbone)
    common = {key: options.pop(key) for key in COMMON_OPTIONS if key in options}
    if attention is None:
        if options:
            raise SenetError(
                f"'{name}' is a plain backbone, so attention options ({', '.join(options)}) do not "
                f"apply; name an attention model such as 'se_{name}'"
            )
        module_options: tuple[tuple[str, Any], ...] = ()
    else:
        module_options = ATTENTION.get(attention).resolve_options(options)
    return ModelConfig(
        name=name,
        backbone=backbone,
        attention=attention,
        ratio=_check_ratio(common.get("ratio", 16)),
        variant=_check_choice("variant", common.get("variant", "v1.5"), VARIANTS),
        placement=_check_choice("placement", common.get("placement", "standard"), PLACEMENTS),
        stages=_check_stages(common.get("stages", ALL_STAGES)),
        num_classes=_check_num_classes(common.get("num_classes"), spec),
        attention_options=module_options,
    )


def build_from_config(config: ModelConfig) -> Any:
    """Build the model a configuration describes (random weights, on the default device)."""
    spec = BACKBONES.get(config.backbone)
    block_attention = None
    if config.attention is not None:
        attention = ATTENTION.get(config.attention)

        def build_attention(channels: int, stage: int) -> Any:
            return attention.build(
                channels, stage=stage, ratio=config.ratio, options=config.attention_options
            )

        block_attention = BlockAttention(
            attribute=attention.name,
            build=build_attention,
            placement=config.placement,
            stages=config.stages,
        )
    model = spec.build(config.num_classes, config.variant, block_attention)
    model.senet_config = config  # what was built, for reports and checkpoints
    return model


def build_model(name: str, **options: Any) -> Any:
    """Build `name` as a torch.nn.Module with random weights: `build_model("se_resnet50", ratio=8, variant="v1")`.

    Raises `SenetError` (a ValueError) naming the accepted values for a bad name or option.
    Build under `with torch.device("meta"):` to get the structure without allocating weights.
    """
    return build_from_config(make_config(name, **options))


def baseline_config(config: ModelConfig) -> ModelConfig:
    """The plain backbone with the same backbone options: what attention is measured against."""
    return make_config(config.backbone, variant=config.variant, num_classes=config.num_classes)


def _check_ratio(value: Any) -> int:
    ratio = parse_int(value, "ratio")
    if ratio < 1:
        raise SenetError(f"ratio must be a positive integer (the paper uses 16), got {ratio}")
    return ratio


def _check_choice(what: str, value: Any, choices: Sequence[str]) -> str:
    text = getattr(value, "value", value)  # accept the CLI's enums too
    if text not in choices:
        raise unknown_choice(what, str(text), choices)
    return str(text)


def _check_stages(value: Any) -> tuple[int, ...]:
    stages = parse_int_list(value, "stages")
    if not stages or any(stage not in ALL_STAGES for stage in stages) or len(set(stages)) != len(stages):
        raise SenetError(f"stages must be distinct values among 1, 2, 3, 4, got {list(stages)}")
    return tuple(sorted(stages))


def _check_num_classes(value: Any, spec: BackboneSpec) -> int:
    if value is None:
        return spec.default_num_classes
    number = parse_int(value, "num_classes")
    if number < 1:
        raise SenetError(f"num_classes must be at least 1, got {number}")
    return number


def describe_options(options: Mapping[str, Any]) -> str:
    """"ratio=16, variant=v1.5" for tables."""
    return ", ".join(f"{key}={value}" for key, value in options.items())
