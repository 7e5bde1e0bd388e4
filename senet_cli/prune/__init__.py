"""`prune()`: fold or remove attention modules of a checkpoint, measure what it costs, write the result.

api.py holds `prune()` and results.py what it returns; fold.py finds the weights a gate folds into and
folds it; record.py is what a pruned checkpoint records and the function that rebuilds its
architecture. Torch is imported only when pruning.
"""

from __future__ import annotations

from senet_cli.prune.api import prune
from senet_cli.prune.results import BlockPrune, Evaluation, PruneReport

__all__ = ["BlockPrune", "Evaluation", "PruneReport", "prune"]
