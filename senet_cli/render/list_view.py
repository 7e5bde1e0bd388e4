"""Views of the zoo catalogue for `senet list`."""

from __future__ import annotations

import json
from typing import Any

from senet_cli.attention import ATTENTION
from senet_cli.backbones import BACKBONES
from senet_cli.options import PLACEMENTS, VARIANTS
from senet_cli.render.tables import TableData
from senet_cli.zoo import list_models

GRAMMAR = "<attention>_<backbone> (se_resnet50, cbam_resnet18_cifar), or a bare backbone for the plain model"

COMMON_OPTIONS = (
    ("ratio", "per module", "channel reduction r of modules that reduce (16 for se/cbam/bam/gc/ge/sk, "
     "32 coord, 8 danet, 2 nonlocal)"),
    ("variant", "v1.5", f"{' | '.join(VARIANTS)}: stride on the bottleneck's 3x3 (v1.5) or first 1x1 (v1); "
     "ResNets only"),
    ("placement", "standard", f"{' | '.join(PLACEMENTS)}: where a branch module sits in a block (SENet "
     "Fig. 5); pre/identity need a ResNet"),
    ("stages", "per module", "stages that get attention, 1..the backbone's stage count"),
    ("num_classes", "1000 (10 for _cifar)", "classifier outputs"),
)


def catalogue() -> dict[str, Any]:
    """The JSON view: stable keys `grammar`, `attention`, `backbones`, `common_options`, `models`."""
    return {
        "grammar": GRAMMAR,
        "attention": [
            {
                "name": spec.name, "title": spec.title, "paper": spec.paper,
                "placement": spec.describe_placement(), "slot": spec.slot, "blocks": spec.blocks,
                "default_stages": spec.stages, "uses_ratio": spec.uses_ratio,
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
                "placements": list(spec.placements),
            }
            for _, spec in BACKBONES.items()
        ],
        "common_options": [{"name": n, "default": d, "help": h} for n, d, h in COMMON_OPTIONS],
        "models": list_models(),
    }


def catalogue_json() -> str:
    return json.dumps(catalogue(), indent=2) + "\n"


def catalogue_tables() -> list[TableData]:
    attention = TableData(
        title="Attention modules (prefix of the model name)",
        headers=("name", "paper", "placed at", "options (-o KEY=VALUE)"),
        rows=tuple(
            (spec.name, f"{spec.title}\n{spec.paper}",
             spec.describe_placement().replace("; ", "\n")
             + (f"\n--ratio default {spec.default_ratio}" if spec.uses_ratio else ""),
             "\n".join(o.describe() for o in spec.options) or "none")
            for _, spec in ATTENTION.items()
        ),
        left_columns=4,
        wrapped_from=1,
    )
    backbones = TableData(
        title="Backbones",
        headers=("name", "description", "stages", "classes", "input", "min input"),
        rows=tuple(
            (spec.name, spec.description, str(spec.stage_count), str(spec.default_num_classes),
             str(spec.default_input), str(spec.min_input))
            for _, spec in BACKBONES.items()
        ),
        left_columns=2,
    )
    common = TableData(
        title=f"Names: {GRAMMAR}. Options every model takes",
        headers=("option", "default", "meaning"),
        rows=COMMON_OPTIONS,
        left_columns=3,
        caption=f"{len(list_models())} models; 'senet list --format json' lists them all.",
    )
    return [attention, backbones, common]
