"""What every job checks before it runs a model: the input shape it can take, and the device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from senet_cli.backbones import BACKBONES
from senet_cli.errors import DeviceUnavailableError, OptionError, UnknownChoiceError
from senet_cli.options import ModelConfig, parse_int

DEVICES = ("cpu", "cuda")


def input_shape(
    config: ModelConfig, input_size: int | Sequence[int] | None, batch: int
) -> tuple[int, int, int, int]:
    """[batch, 3, H, W] for `config`, checked against the backbone's total stride."""
    spec = BACKBONES.get(config.backbone)
    batch = parse_int(batch, "batch")
    if batch < 1:
        raise OptionError("batch", batch, "at least 1", f"batch must be at least 1, got {batch}")
    if input_size is None:
        height = width = spec.default_input
    elif isinstance(input_size, int):
        height = width = input_size
    else:
        height, width = (int(side) for side in input_size)
    if min(height, width) < spec.min_input:
        raise OptionError(
            "input_size", (height, width), f"at least {spec.min_input} a side",
            f"input {height}x{width} is too small for {config.backbone}: it downsamples by "
            f"{spec.min_input}, so each side must be at least {spec.min_input}",
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
