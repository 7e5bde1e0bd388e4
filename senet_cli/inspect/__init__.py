"""`inspect()`: load a checkpoint safely, find its architecture, and summarise its attention gates.

api.py holds `inspect()` and results.py what it returns; checkpoint.py loads and saves files
safely; detection.py (with fits.py) finds the architecture from the weights; images.py feeds
images; gates.py hooks and accumulates gate statistics. Torch is imported only when inspecting
or loading.
"""

from __future__ import annotations

from senet_cli.inspect.api import inspect
from senet_cli.inspect.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from senet_cli.inspect.results import DropCandidate, GateStats, Histogram, InspectReport, Preprocess

__all__ = [
    "Checkpoint", "DropCandidate", "GateStats", "Histogram", "InspectReport", "Preprocess", "inspect",
    "load_checkpoint", "save_checkpoint",
]

