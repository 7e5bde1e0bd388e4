"""senet: build, count, profile and inspect attention-augmented CNNs.

The public API mirrors the CLI, and importing it does not import torch (each job imports torch
when it runs), so the command line's help starts fast.

    >>> import senet_cli
    >>> model = senet_cli.build_model("se_resnet50", ratio=16)
    >>> report = senet_cli.count("se_resnet50", input_size=224)
    >>> report.params, report.baseline.params
    (28088024, 25557032)

The jobs live in packages named after them (senet_cli/count/, profile/, inspect/, prune/), which export
functions of the same names, as fvcore.nn.flop_count does. The imports below bind
`senet_cli.count` (and profile, inspect, prune) to the functions after their packages load, so the names
stay functions whatever is imported later; reach the packages' modules with
`from senet_cli.count import results` (not `import senet_cli.count.results as results`).
"""

from __future__ import annotations

from senet_cli._version import __version__
from senet_cli.checkpoint import load_checkpoint, save_checkpoint
from senet_cli.count import CountReport, count, count_sweep
from senet_cli.errors import SenetError
from senet_cli.inspect import InspectReport, inspect
from senet_cli.profile import Measurement, ProfileReport, Timing, profile, time_modules
from senet_cli.prune import PruneReport, prune
from senet_cli.zoo import build_model, list_models, make_config

__all__ = [
    "CountReport", "InspectReport", "Measurement", "ProfileReport", "PruneReport", "SenetError", "Timing",
    "__version__", "build_model", "count", "count_sweep", "inspect", "list_models", "load_checkpoint", "make_config",
    "profile", "prune", "save_checkpoint", "time_modules",
]
