"""`build_model`: any model name the commands take, built as a torch.nn.Module with random weights.

Kept apart from models.py (the zoo's names and configurations) because a name outside the zoo is
built by outside/build.py, which itself builds zoo models on the meta device through models.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from senet_cli.outside.names import external_config, is_external, refuse_attention_classes
from senet_cli.zoo.models import build_from_config, make_config


def build_model(name: str, *, attention_classes: Sequence[str] = (), **options: Any) -> Any:
    """Build `name` with random weights: `build_model("se_resnet50", ratio=8, variant="v1")`.

    A zoo name takes the zoo's options; a name outside the zoo (`torchvision:NAME`, `timm:NAME`,
    `file.py:callable`, `package.module:callable`) takes its builder's keywords, as `count()` does
    (`attention_classes` only matters to the jobs that look for attention, and is checked here).
    Raises `SenetError` (a ValueError) naming the accepted values for a bad name or option.
    Build under `with torch.device("meta"):` to get the structure without allocating weights.
    """
    if is_external(name):
        from senet_cli.outside.build import build_external

        return build_external(external_config(name, options, attention_classes))
    refuse_attention_classes(attention_classes, name)
    return build_from_config(make_config(name, **options))
