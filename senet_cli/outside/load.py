"""A checkpoint of a model from outside the zoo (`torchvision:NAME`, `timm:NAME`, `file.py:callable`),
loaded into that model.

The model is built on the CPU without weight initialisation (the checkpoint overwrites every
weight; buffers a state dict does not hold, such as timm's non-persistent ones, are computed as
the builder computes them), then takes the checkpoint's tensors with a strict `load_state_dict`.
A misfit is reported as missing, unexpected and mis-shaped keys, in one line.
"""

from __future__ import annotations

import torch
from torch import nn

from senet_cli.errors import ArchitectureError
from senet_cli.inspect.checkpoint import WRAPPER_PREFIXES, Checkpoint
from senet_cli.inspect.detection import compare, fill_optional
from senet_cli.options import ExternalConfig
from senet_cli.outside.build import build_external


def materialize_external(checkpoint: Checkpoint, config: ExternalConfig,
                         device: torch.device | str = "cpu") -> nn.Module:
    """The model of `config` holding the checkpoint's weights (as float32), in eval mode on `device`."""
    model = build_external(config, init=False)
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    state = dict(checkpoint.state_dict)
    fit = compare(checkpoint.shapes, expected)
    heads = "".join(prefix for prefix in checkpoint.stripped if prefix not in WRAPPER_PREFIXES)
    if not fit.exact and heads:  # the loader took a first component every key shares for a wrapper's
        restored = {heads + key: value for key, value in state.items()}
        refit = compare({key: tuple(value.shape) for key, value in restored.items()}, expected)
        if refit.exact:
            state, fit = restored, refit
    if not fit.exact:
        raise ArchitectureError("{path} does not fit {name}: {fit}", arguments=(), path=checkpoint.path,
                                name=config.name, fit=fit.describe())
    model.load_state_dict(fill_optional(dict(state), expected), strict=True)
    return model.to(device=device, dtype=torch.float32).eval()
