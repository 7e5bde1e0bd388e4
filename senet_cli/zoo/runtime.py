"""What every job checks before it runs a model: the device (the input shape: senet_cli/subject.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from senet_cli.errors import DeviceUnavailableError, UnknownChoiceError
from senet_cli.vocabulary import DEVICES

if TYPE_CHECKING:  # torch is imported when a device is resolved
    import torch

    from senet_cli.options import ExternalConfig, ModelConfig
    from senet_cli.subject import Subject


def input_shape(model: ModelConfig | ExternalConfig | Subject, input_size: int | Sequence[int] | None,
                batch: int) -> tuple[int, int, int, int]:
    """[batch, 3, H, W] for `model` (a configuration or a subject), checked against its total stride:
    senet_cli.subject.input_shape, kept importable here."""
    from senet_cli.subject import input_shape as checked_shape  # here: the subject module imports the zoo's

    return checked_shape(model, input_size, batch)


def resolve_device(device: str) -> torch.device:
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
