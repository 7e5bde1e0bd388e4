"""The zoo: model names and options -> checked configurations -> models, and what every job
running them shares (input shapes, devices, building on the meta device). Torch-free to import.

Grammar: `<attention>_<backbone>` (`se_resnet50`, `cbam_resnet18_cifar`), or a bare backbone name
for the plain model. Options are keyword arguments: the common ones (`ratio`, `variant`,
`placement`, `stages`, `num_classes`) and each attention module's own (`senet list` shows them).
"""

from __future__ import annotations

from senet_cli.zoo.build import build_model
from senet_cli.zoo.catalogue import GRAMMAR, catalogue
from senet_cli.zoo.meta import build_on_meta, paused_gc, skip_weight_init
from senet_cli.zoo.models import (
    baseline_config,
    build_from_config,
    list_models,
    make_config,
    parse_name,
)
from senet_cli.zoo.runtime import DEVICES, input_shape, resolve_device

__all__ = [
    "DEVICES", "GRAMMAR", "baseline_config", "build_from_config", "build_model", "build_on_meta",
    "catalogue", "input_shape", "list_models", "make_config", "parse_name", "paused_gc",
    "resolve_device", "skip_weight_init",
]
