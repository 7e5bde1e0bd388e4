"""The zoo as data: every attention module, backbone and common option, from the registries.

`senet list` (tables and JSON) and the README's tables are made from `catalogue()`, so a module's
default ratio, stages or options are written once, in its registry entry. Torch-free.
"""

from __future__ import annotations

from typing import Any

from senet_cli.attention import ATTENTION
from senet_cli.backbones import BACKBONES
from senet_cli.options import COMMON_OPTIONS
from senet_cli.zoo.models import list_models

GRAMMAR = "<attention>_<backbone> (se_resnet50, cbam_resnet18_cifar), or a bare backbone for the plain model"


def ratio_defaults() -> str:
    """"16 for se/cbam/...; 32 coord; ...": each default ratio and the modules that use it."""
    by_ratio: dict[int, list[str]] = {}
    for name, spec in ATTENTION.items():
        if spec.uses_ratio:
            by_ratio.setdefault(spec.default_ratio, []).append(name)
    most = max(by_ratio, key=lambda ratio: len(by_ratio[ratio]))
    parts = [f"{most} for {'/'.join(by_ratio.pop(most))}"]
    parts += [f"{ratio} {'/'.join(names)}" for ratio, names in by_ratio.items()]
    return ", ".join(parts)


def common_options() -> list[dict[str, str]]:
    """The options every model takes: name, default as shown, meaning."""
    options = []
    for option in COMMON_OPTIONS:
        help_text = option.help + (f" ({ratio_defaults()})" if option.name == "ratio" else "")
        options.append({"name": option.name, "default": option.default, "help": help_text})
    return options


def catalogue() -> dict[str, Any]:
    """The JSON view: stable keys `grammar`, `attention`, `backbones`, `common_options`, `models`."""
    return {
        "grammar": GRAMMAR,
        "attention": [
            {
                "name": spec.name, "title": spec.title, "paper": spec.paper,
                "placement": spec.describe_slot(), "slot": spec.slot, "blocks": spec.block_rule,
                "default_stages": spec.stage_rule, "uses_ratio": spec.uses_ratio,
                "default_ratio": spec.default_ratio if spec.uses_ratio else None,
                "options": [
                    {"name": o.name, "kind": o.kind, "default": o.default, "choices": list(o.choices), "help": o.help}
                    for o in spec.options
                ],
            }
            for _, spec in ATTENTION.items()
        ],
        "backbones": [
            {
                "name": spec.name, "family": spec.family, "description": spec.description,
                "num_classes": spec.default_num_classes, "input": spec.default_input,
                "min_input": spec.min_input, "stages": spec.stage_count,
                "placements": [*spec.placements, *(["inner"] if spec.inner else [])],
            }
            for _, spec in BACKBONES.items()
        ],
        "common_options": common_options(),
        "models": list_models(),
    }
