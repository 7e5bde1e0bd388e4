"""BN's step counter (`num_batches_tracked`): the one tensor a checkpoint may lack, and the one integer
tensor a model keeps as an integer.

BatchNorm counts its training steps in an int64 buffer that only momentum-free BN reads (the
running averages use it when `momentum=None`; every zoo model uses a fixed momentum), so its value
never changes an output. Caffe ports and old exports drop it; our loading therefore keeps it an
integer where other integer tensors are cast to float (bounds.settle_tensors), recognition does not
count its absence as a misfit (recognise.compare), and the model gets a zero counter where the file
has none (`fill_step_counters`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

STEP_COUNTER_SUFFIXES = ("num_batches_tracked",)
"""Key endings of the optional, integer step counters: BatchNorm's `num_batches_tracked`."""


def is_step_counter(key: str) -> bool:
    """Whether `key` names a BN step counter (optional in a checkpoint, an integer in the model)."""
    return key.endswith(STEP_COUNTER_SUFFIXES)


def fill_step_counters(state: dict[str, torch.Tensor], expected: Iterable[str]) -> dict[str, torch.Tensor]:
    """`state` with a zero step counter for each counter key of `expected` it lacks (in place; returned)."""
    import torch

    for key in expected:
        if key not in state and is_step_counter(key):
            state[key] = torch.zeros((), dtype=torch.long)
    return state
