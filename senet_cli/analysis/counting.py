"""Run a model once under a dispatch-level counter and attribute every op to the module that ran it.

Why our own TorchDispatchMode rather than `torch.utils.flop_counter.FlopCounterMode`: its table
has no formulas for the pooling, gating and activation ops attention modules are made of, and its
per-module totals are cumulative over the module tree; we need each op charged exactly once, to
the innermost module running when it was dispatched, so that per-block rows add up to totals.

The model runs on the meta device: shapes propagate, no arithmetic happens and no memory is
allocated, so counting a 64x3x1024x1024 batch costs what a 1x3x32x32 one does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from senet_cli.analysis.formulas import FORMULAS, FREE_OPS, op_key


@dataclass
class OpRecord:
    """One dispatched op: where it ran and what it cost."""

    module: str
    op: str
    macs: int
    elementwise_ops: int


@dataclass
class Trace:
    """Everything one counted forward pass produced."""

    ops: list[OpRecord] = field(default_factory=list)
    first_call: dict[str, int] = field(default_factory=dict)  # module path -> order of first call
    uncounted: Counter[str] = field(default_factory=Counter)  # ops with no formula -> calls


class _CostMode(TorchDispatchMode):
    def __init__(self, trace: Trace, stack: list[str]) -> None:
        super().__init__()
        self.trace = trace
        self.stack = stack

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        key = op_key(func)
        formula = FORMULAS.get(key)
        if formula is not None:
            macs, elementwise = formula(args, kwargs, out)
            if macs or elementwise:
                self.trace.ops.append(OpRecord(self.stack[-1], key, macs, elementwise))
        elif key not in FREE_OPS:
            self.trace.uncounted[key] += 1
        return out


def trace_costs(model: nn.Module, inputs: torch.Tensor) -> Trace:
    """Run `model(inputs)` once in eval mode under the counter and return what each module cost.

    The op's module is the innermost module whose forward was running: hooks on every submodule
    keep a stack of module paths ("" is the model itself).
    """
    trace = Trace()
    stack: list[str] = [""]
    handles = []

    def enter(path: str) -> Any:
        def hook(module: nn.Module, args: Any) -> None:
            stack.append(path)
            trace.first_call.setdefault(path, len(trace.first_call))

        return hook

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()

    for path, module in model.named_modules():
        if path:
            handles.append(module.register_forward_pre_hook(enter(path)))
            handles.append(module.register_forward_hook(leave))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _CostMode(trace, stack):
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return trace
