"""What every attention module of the zoo shares: a marker base class and the gate table."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from senet_cli.errors import unknown_choice

GATES: dict[str, Callable[[], nn.Module]] = {  # keys: senet_cli.options.GATE_NAMES
    # SENet paper Table 12 compares the excitation's final non-linearity; sigmoid is the default.
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "hardsigmoid": nn.Hardsigmoid,
}


def make_gate(name: str) -> nn.Module:
    """The gate non-linearity as a submodule, so hooks can find the tensor that scales the features."""
    try:
        return GATES[name]()
    except KeyError:
        raise unknown_choice("gate", name, GATES) from None


class AttentionModule(nn.Module):
    """Marker base class: analysis code finds attention by `isinstance(m, AttentionModule)`.

    Every subclass keeps its gate non-linearity in a submodule named `gate` (or several, each in
    its own sub-gate), so forward hooks on `*.gate` see the values that multiply the features.
    """
