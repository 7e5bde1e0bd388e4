"""`inspect()`: run images through a checkpoint's model and summarise its attention gates.

api.py holds `inspect()` and results.py what it returns; images.py feeds images; gates.py hooks
and accumulates gate statistics; distributed.py splits the images over processes. Reading the
checkpoint and recognising its architecture live in senet_cli/checkpoint/. Torch is imported only
when inspecting.
"""

from __future__ import annotations

from senet_cli.inspect.api import inspect
from senet_cli.inspect.results import DropCandidate, GateStats, Histogram, InspectReport, Preprocess

__all__ = ["DropCandidate", "GateStats", "Histogram", "InspectReport", "Preprocess", "inspect"]
