"""senet: build, count, profile and inspect attention-augmented CNNs.

The public API mirrors the CLI. It is imported lazily (PEP 562) so that `senet --help`, which
imports this package, does not import torch.

    >>> import senet_cli
    >>> model = senet_cli.build_model("se_resnet50", ratio=16)
    >>> report = senet_cli.count("se_resnet50", input_size=224)
    >>> report.params, report.baseline.params
    (28088024, 25557032)
"""

from __future__ import annotations

from typing import Any

from senet_cli._version import __version__
from senet_cli.errors import SenetError

_LAZY = {
    "build_model": "senet_cli.zoo",
    "list_models": "senet_cli.zoo",
    "make_config": "senet_cli.zoo",
    "count": "senet_cli.analysis.report",
    "CountReport": "senet_cli.analysis.report",
    "profile": "senet_cli.analysis.latency",
    "ProfileReport": "senet_cli.analysis.latency",
    "time_modules": "senet_cli.analysis.latency",
    "inspect": "senet_cli.analysis.inspection",
    "InspectReport": "senet_cli.analysis.inspection",
    "load_checkpoint": "senet_cli.analysis.checkpoint",
    "save_checkpoint": "senet_cli.analysis.checkpoint",
}

__all__ = ["SenetError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'senet_cli' has no attribute '{name}'")
