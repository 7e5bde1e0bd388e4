"""Folding a per-channel gate into the weights around it, found by tracing one batch.

A channel gate multiplies the tensor x it receives by g[c] per channel. With g fixed (its mean over
the images), `x * g` is linear in x, so it can live in the weights instead:

- into the producer of x, when x is exactly the output of a BatchNorm (`g * BN(x)` is BN with weight
  and bias scaled by g) or of a conv (output channels and bias scaled by g);
- else (a non-linearity sits between them: MBConv's activation before SE, placement `post`) into
  the consumer, when the gated tensor feeds exactly one conv and nothing else: `conv(x * g)` is the
  conv with its input channels scaled by g (exact with zero padding, as pad(x) * g = pad(x * g)).

Who produces and who consumes a tensor is read from one forward pass with hooks on every leaf
module: a tensor's producer is the last leaf that returned that very object (an in-place ReLU
returns its input, so it counts as the producer); its consumers, the leaves that took it as input.
Hooks cannot see functional ops (a residual `out += identity`), so every fold is then checked: the
model with the module replaced by the constant scale g and the folded model must give the same
logits on that batch (`check`); a fold that does not is refused in one line, not written.

A module is folded only when it is a pure channel gate: its output equals its input times its gate
submodule's output, a [B, C, 1, 1] tensor (checked on the same batch). Spatial, coordinate, triplet
and position-wise gates, and modules that add a term or stand in for a conv, are refused by the
caller before this point.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from senet_cli.errors import ArgumentError

FOLD_RTOL = 1e-4
"""Largest logit difference, relative to the largest logit, between the constant-gate
model and the folded one: float32 rounding of a folded weight changes logits by about 1e-7 of them;
a fold that misses another use of the tensor, by 1e-3 and more even on a random-weight model."""


def unfoldable(reason: str) -> ArgumentError:
    """The one-line refusal of a fold, offering mode remove (each audience spells the argument its way)."""
    return ArgumentError("{reason}; use {remove}", arguments={"remove": ("mode", "remove")}, reason=reason)


class ConstantScale(nn.Module):
    """x * g per channel with a fixed g: what a folded gate computes, kept as a module for the check."""

    scale: torch.Tensor

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.view(1, -1, *([1] * (x.ndim - 2)))


@dataclass
class Trace:
    """One attention module's surroundings on the traced batch."""

    producer: str | None = None  # the leaf that returned the module's input tensor itself
    consumers: list[str] = field(default_factory=list)  # leaves that took the module's output as input
    pure_gate: bool = False  # output == input * gate on the batch
    gate_shape: tuple[int, ...] = ()


def trace(network: nn.Module, modules: Sequence[str], gates: dict[str, str], images: torch.Tensor) -> dict[str, Trace]:
    """Producer, consumers and gate purity of each of `modules` (paths; `gates[path]` its gate submodule's
    path relative to it) on one forward of `images`."""
    traces = {path: Trace() for path in modules}
    owner: dict[int, str] = {}
    alive: list[torch.Tensor] = []  # keeps traced tensors alive, so an id is never reused meanwhile
    outputs: dict[int, str] = {}
    gate_values: dict[str, torch.Tensor] = {}
    handles = []

    def leaf_pre(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, inputs: tuple) -> None:
            for value in inputs:
                if isinstance(value, torch.Tensor) and id(value) in outputs:
                    traces[outputs[id(value)]].consumers.append(name)
        return hook

    def leaf_post(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: tuple, output: object) -> None:
            if isinstance(output, torch.Tensor):
                owner[id(output)] = name
                alive.append(output)
        return hook

    def attention_pre(path: str) -> Callable[..., None]:
        def hook(_module: nn.Module, inputs: tuple) -> None:
            first = inputs[0] if inputs else None
            if isinstance(first, torch.Tensor):
                traces[path].producer = owner.get(id(first))
        return hook

    def attention_post(path: str) -> Callable[..., None]:
        def hook(_module: nn.Module, inputs: tuple, output: object) -> None:
            gate = gate_values.get(path)
            x = inputs[0] if inputs else None
            if isinstance(output, torch.Tensor) and isinstance(x, torch.Tensor) and gate is not None:
                traces[path].gate_shape = tuple(gate.shape)
                channel = gate.ndim >= 2 and gate.shape[:2] == x.shape[:2] and all(s == 1 for s in gate.shape[2:])
                expected = x * gate.reshape(*gate.shape, *([1] * (x.ndim - gate.ndim)))
                traces[path].pure_gate = bool(channel and torch.allclose(output, expected, rtol=1e-5, atol=1e-6))
            if isinstance(output, torch.Tensor):
                outputs[id(output)] = path
                alive.append(output)
        return hook

    def gate_post(path: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: tuple, output: object) -> None:
            if isinstance(output, torch.Tensor):
                gate_values[path] = output.detach().clone()
        return hook

    inside = tuple(f"{path}." for path in modules)
    for name, module in network.named_modules():
        if name in traces:
            handles.append(module.register_forward_pre_hook(attention_pre(name)))
            handles.append(module.register_forward_hook(attention_post(name)))
            if gates.get(name):
                handles.append(module.get_submodule(gates[name]).register_forward_hook(gate_post(name)))
        elif not any(True for _ in module.children()) and not name.startswith(inside):
            handles.append(module.register_forward_pre_hook(leaf_pre(name)))
            handles.append(module.register_forward_hook(leaf_post(name)))
    try:
        with torch.inference_mode():
            network(images)
    finally:
        for handle in handles:
            handle.remove()
    return traces


def fold_site(network: nn.Module, path: str, found: Trace, scale: torch.Tensor) -> tuple[str, ...]:
    """Scale the weights `found` names by `scale` in `network` (in place) and put a pass-through at
    `path`; returns the modules whose weights were scaled. Raises a SenetError, in one line, where
    the gate has nowhere to fold."""
    producer = network.get_submodule(found.producer) if found.producer else None
    with torch.no_grad():
        if isinstance(producer, nn.modules.batchnorm._BatchNorm) and producer.affine:
            producer.weight.mul_(scale.to(producer.weight))
            producer.bias.mul_(scale.to(producer.bias))
            into = (found.producer or "",)
        elif isinstance(producer, nn.Conv2d | nn.Linear) and producer.weight.shape[0] == scale.numel():
            producer.weight.mul_(scale.to(producer.weight).view(-1, *([1] * (producer.weight.ndim - 1))))
            if producer.bias is not None:
                producer.bias.mul_(scale.to(producer.bias))
            into = (found.producer or "",)
        elif len(found.consumers) == 1 and _scale_inputs(network.get_submodule(found.consumers[0]), scale):
            into = (found.consumers[0],)
        else:
            before = f"its input comes from {found.producer or 'an operation outside any module'}"
            after = (f"its output feeds {len(found.consumers)} modules" if found.consumers
                     else "its output feeds no module directly (a residual add)")
            raise unfoldable(f"cannot fold {path}: {before}, not a BN or conv, and {after}, not one conv")
    _replace(network, path, nn.Identity())
    return into


def _scale_inputs(module: nn.Module, scale: torch.Tensor) -> bool:
    """Scale a conv's (or linear layer's) input channels by `scale`; False when it cannot take it."""
    if isinstance(module, nn.Linear) and module.in_features == scale.numel():
        module.weight.mul_(scale.to(module.weight)[None, :])
        return True
    if not isinstance(module, nn.Conv2d) or module.in_channels != scale.numel() or module.padding_mode != "zeros":
        return False
    weight = module.weight  # [out, in / groups, kh, kw]
    groups = module.groups
    per_group = module.in_channels // groups
    view = weight.view(groups, module.out_channels // groups, per_group, *weight.shape[2:])
    view.mul_(scale.to(weight).view(groups, 1, per_group, *([1] * (weight.ndim - 2))))
    return True


def _replace(network: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(network.get_submodule(parent) if parent else network, leaf, module)


def check(network: nn.Module, path: str, found: Trace, scale: torch.Tensor, images: torch.Tensor) -> tuple[str, ...]:
    """Fold one module in a copy of `network` and compare it with the same copy whose module is the
    constant scale (module doc); returns what it folds into, or raises when the two disagree."""
    folded, constant = copy.deepcopy(network), copy.deepcopy(network)
    into = fold_site(folded, path, found, scale)
    _replace(constant, path, ConstantScale(scale.to(images.device)))
    with torch.inference_mode():
        want, got = constant(images), folded(images)
    tolerance = FOLD_RTOL * float(want.abs().max())  # relative: a random MobileNet's logits are ~1e-11
    difference = float((want - got).abs().max())
    if not difference <= tolerance and difference > 0:
        raise unfoldable(f"cannot fold {path} into {', '.join(into)}: the folded model's logits differ from the "
                         f"constant-gate model's by {difference:.3g} (more than {tolerance:.3g}), so something "
                         f"besides that module uses the tensor")
    return into
