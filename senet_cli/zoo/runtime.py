"""What every job checks before it runs a model: the input shape it can take, and the device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from senet_cli.backbones import BACKBONES
from senet_cli.errors import DeviceUnavailableError, OptionError, UnknownChoiceError
from senet_cli.options import ExternalConfig, ModelConfig, parse_int
from senet_cli.vocabulary import DEVICES

EXTERNAL_INPUT = 224
"""The input side of a model outside the zoo when none is given (ImageNet's)."""


def input_shape(
    config: ModelConfig | ExternalConfig, input_size: int | Sequence[int] | None, batch: int
) -> tuple[int, int, int, int]:
    """[batch, 3, H, W] for `config`, checked against the backbone's total stride (a model outside
    the zoo: 224 by default, any size; one it cannot take fails when it runs)."""
    if isinstance(config, ExternalConfig):
        default_input, min_input, what = EXTERNAL_INPUT, 1, config.name
    else:
        spec = BACKBONES.get(config.backbone)
        default_input, min_input, what = spec.default_input, spec.min_input, config.backbone
    batch = parse_int(batch, "batch")
    if batch < 1:
        raise OptionError("batch", batch, "at least 1", f"batch must be at least 1, got {batch}")
    if input_size is None:
        height = width = default_input
    elif isinstance(input_size, int):
        height = width = parse_int(input_size, "input_size")
    else:
        height, width = (parse_int(side, "input_size") for side in input_size)
    if min(height, width) < min_input:
        raise OptionError(
            "input_size", (height, width), f"at least {min_input} a side",
            f"input {height}x{width} is too small for {what}: it downsamples by "
            f"{min_input}, so each side must be at least {min_input}",
        )
    return batch, 3, height, width


def resolve_device(device: str) -> Any:
    """`device` ("cpu" or "cuda") as a torch.device, refused when torch cannot see it."""
    if device not in DEVICES:
        raise UnknownChoiceError("device", device, DEVICES)
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "{requested} asked for, but no CUDA device is visible (torch built with CUDA {built}); use {fallback}",
            arguments={"requested": ("device", "cuda"), "fallback": ("device", "cpu")},
            built=torch.version.cuda or "none",
        )
    return torch.device(device)
