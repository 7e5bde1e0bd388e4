"""A model configuration in a few words, for table titles: only what differs from the defaults."""

from __future__ import annotations

from senet_cli.options import ExternalConfig, ModelConfig


def short_options(config: ModelConfig | ExternalConfig) -> str:
    """The options that differ from the defaults, plus the ratio of a ratio-using module (a model
    outside the zoo: its keywords and the attention classes named for it)."""
    if isinstance(config, ExternalConfig):
        parts = [f"{key}={value}" for key, value in config.kwargs]
        return " ".join(parts + [f"attention={reference}" for reference in config.attention_classes])
    from senet_cli.attention import ATTENTION, stages_by_rule
    from senet_cli.backbones import BACKBONES

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
    return " ".join(parts)
