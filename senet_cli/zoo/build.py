"""`build_model`: any model name the commands take, built as a torch.nn.Module with random weights.

Kept apart from models.py (the zoo's names and configurations) because any name, in the zoo or
outside it, is built through its subject (senet_cli/subject.py), which builds zoo models through
models.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported when the model is built
    from torch import nn


def build_model(name: str, *, attention_classes: Sequence[str] = (), **options: Any) -> nn.Module:
    """Build `name` with random weights: `build_model("se_resnet50", ratio=8, variant="v1")`.

    A zoo name takes the zoo's options; a name outside the zoo (`torchvision:NAME`, `timm:NAME`,
    `file.py:callable`, `package.module:callable`) takes its builder's keywords, as `count()` does
    (`attention_classes` only matters to the jobs that look for attention, and is checked here).
    Raises `SenetError` (a ValueError) naming the accepted values for a bad name or option.
    Build under `with torch.device("meta"):` to get the structure without allocating weights.
    """
    from senet_cli.subject import subject_for  # here: the subject module imports the zoo's modules

    return subject_for(name, options, attention_classes).build()
