"""What every attention module of the zoo shares: a marker base class and the gate table."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from senet_cli.errors import RatioTooLargeError, UnknownChoiceError

GATES: dict[str, Callable[[], nn.Module]] = {  # keys: senet_cli.options.GATE_NAMES
    # SENet paper Table 12 compares the excitation's final non-linearity; sigmoid is the default.
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "hardsigmoid": nn.Hardsigmoid,
}


GATE_RANGES: dict[str, tuple[float, float | None]] = {
    # A gate non-linearity's range by its class name, for the zoo's gates and for the activation classes
    # of other libraries alike (timm's own Sigmoid, HardSigmoid): inspect's histogram bins span it.
    "Sigmoid": (0.0, 1.0),
    "Hardsigmoid": (0.0, 1.0),
    "HardSigmoid": (0.0, 1.0),
    "Tanh": (-1.0, 1.0),
    "ReLU": (0.0, None),  # unbounded above: inspect's first batch sets the top edge (inspect/gates.py)
    "Softmax": (0.0, 1.0),  # SK's weights over its branches
    "SelectiveKernelAttn": (0.0, 1.0),  # timm's SK: its output is that softmax
    "RadixSoftmax": (0.0, 1.0),  # timm's SplitAttn
}
"""The one table of gate ranges (lower, upper or None for unbounded), keyed by class name so that a
class of another library with the same meaning is recognised without importing that library."""


def gate_range(module: nn.Module) -> tuple[float, float | None]:
    """The range of a gate's values: its non-linearity's (GATE_RANGES), else [0, unbounded)."""
    return GATE_RANGES.get(type(module).__name__, (0.0, None))


def is_gate(name: str, module: nn.Module) -> bool:
    """A gate submodule by the zoo's convention: named `gate`, or `gate_<axis>` (Coordinate attention's
    gate_h, gate_w) when it is a gate non-linearity (BAM's `gate_c`/`gate_s` are whole branches, not gates)."""
    last = name.split(".")[-1]
    return last == "gate" or (last.startswith("gate_") and type(module).__name__ in GATE_RANGES)


class ConvBN(nn.Module):
    """A bias-free conv followed by BatchNorm (momentum 0.01): the official CBAM and Triplet
    attention code's `BasicConv` without its activation. Keys `conv.weight`, `bn.*`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def channel_pool(x: torch.Tensor) -> torch.Tensor:
    """[max over channels; mean over channels]: the 2-channel map CBAM's and Triplet attention's
    spatial gates convolve (Triplet's "Z-pool")."""
    return torch.cat((x.amax(1, keepdim=True), x.mean(1, keepdim=True)), dim=1)


def reduced_channels(channels: int, ratio: int, minimum: int | None = None) -> int:
    """C // r, the bottleneck width of every reducing module. SK and Coordinate attention floor it
    (`minimum`: L = 32 and 8); every other module refuses a ratio that leaves it no channels."""
    width = channels // ratio
    if minimum is not None:
        return max(width, minimum)
    if width < 1:
        raise RatioTooLargeError(ratio, channels)
    return width


def make_gate(name: str) -> nn.Module:
    """The gate non-linearity as a submodule, so hooks can find the tensor that scales the features."""
    try:
        return GATES[name]()
    except KeyError:
        raise UnknownChoiceError("gate", name, GATES) from None


class AttentionModule(nn.Module):
    """Marker base class: analysis code finds attention by `isinstance(m, AttentionModule)`.

    Every subclass keeps its gate non-linearity in a submodule named `gate` (or several, each in
    its own sub-gate), so forward hooks on `*.gate` see the values that multiply the features.
    """
