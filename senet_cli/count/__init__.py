"""`count()`: parameters, MACs and elementwise ops of a model, per block, against its plain backbone.

api.py holds `count()` (and `count_sweep()`: every model x ratio) and results.py what it returns;
dispatch.py runs a model on the meta device under a dispatch-level counter with the formula table
of formulas.py; blocks.py splits what it ran into rows; references.py runs fvcore and thop for
comparison. Torch is imported only when counting.
"""

from __future__ import annotations

from senet_cli.count.api import count, count_sweep
from senet_cli.count.references import COUNTERS, ReferenceCount
from senet_cli.count.results import CONVENTION, Baseline, BlockCount, CountReport, Overhead

__all__ = ["CONVENTION", "COUNTERS", "Baseline", "BlockCount", "CountReport", "Overhead", "ReferenceCount", "count",
           "count_sweep"]
