"""Run a model once under a dispatch-level counter and attribute every op to the module that ran it.

Why our own TorchDispatchMode rather than `torch.utils.flop_counter.FlopCounterMode`: its table
has no formulas for the pooling, gating and activation ops attention modules are made of, and its
per-module totals are cumulative over the module tree; we need each op charged exactly once, to
the innermost module running when it was dispatched, so that per-block rows add up to totals.

The model runs on the meta device: shapes propagate, no arithmetic happens and no memory is
allocated, so counting a 64x3x1024x1024 batch costs what a 1x3x32x32 one does.

Speed: meta kernels run as Python decompositions (about 0.5 ms an op), and a deep ResNet repeats
the same ops on the same shapes block after block. The mode therefore memoises each op's output
metadata by (op, input shapes and arguments) and, on a repeat, makes fresh meta tensors of that
metadata instead of calling the kernel. The memo is shared by every trace in the process (a
model and its baseline run mostly the same ops), bounded by `_MEMO_LIMIT` entries. Only ops that
neither write to nor alias their inputs are memoised (read from the op schema), so in-place ops
and views still run for real.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Iterator
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


def _is_pure(func: Any) -> bool:
    """True when the op neither mutates nor returns a view of any input (per its schema)."""
    schema = func._schema
    return not any(
        arg.alias_info is not None for arg in (*schema.arguments, *schema.returns)
    )


def _signature(value: Any, devices: set[str]) -> Any:
    """A hashable description of an op argument: tensors by shape, stride and dtype. The device
    types of the tensors met are added to `devices`."""
    if isinstance(value, torch.Tensor):
        devices.add(value.device.type)
        return ("T", tuple(value.shape), value.stride(), value.dtype)
    if isinstance(value, (list, tuple)):
        return tuple(_signature(item, devices) for item in value)
    return value if isinstance(value, (int, float, bool, str, type(None), torch.dtype)) else repr(value)


def _describe(out: Any) -> Any:
    """Output metadata: a tensor's (shape, stride, dtype), recursively through tuples and lists."""
    if isinstance(out, torch.Tensor):
        return ("T", tuple(out.shape), out.stride(), out.dtype)
    if isinstance(out, (tuple, list)):
        return (type(out), [_describe(item) for item in out])
    return ("V", out)


def _rebuild(description: Any) -> Any:
    """Fresh meta tensors (and plain values) matching a `_describe` result."""
    if description[0] == "T":
        return torch.empty_strided(description[1], description[2], dtype=description[3], device="meta")
    if description[0] == "V":
        return description[1]
    kind, items = description
    return kind(_rebuild(item) for item in items)


_MEMO_LIMIT = 100_000
_MEMO: dict[Any, tuple[list[Any], Any]] = {}
_PURE: dict[Any, bool] = {}


class _CostMode(TorchDispatchMode):
    def __init__(self, trace: Trace, stack: list[str]) -> None:
        super().__init__()
        self.trace = trace
        self.stack = stack
        if len(_MEMO) > _MEMO_LIMIT:
            _MEMO.clear()
        self.memo = _MEMO
        self.pure = _PURE

    def _run(self, func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        pure = self.pure.get(func)
        if pure is None:
            pure = self.pure[func] = _is_pure(func)
        if not pure:
            return func(*args, **kwargs)
        devices: set[str] = set()
        key = (func, _signature(args, devices), _signature(tuple(sorted(kwargs.items())), devices))
        if devices - {"meta"}:
            return func(*args, **kwargs)
        cached = self.memo.get(key)
        if cached is None:
            out = func(*args, **kwargs)
            self.memo[key] = _describe(out)
            return out
        return _rebuild(cached)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = self._run(func, args, kwargs)
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

    The op's module is the innermost module whose forward was running: two global module hooks
    (cheaper than a pair per submodule) keep a stack of module paths ("" is the model itself).
    """
    from torch.nn.modules.module import (
        register_module_forward_hook,
        register_module_forward_pre_hook,
    )

    trace = Trace()
    stack: list[str] = [""]
    paths = {id(module): path for path, module in model.named_modules() if path}

    def enter(module: nn.Module, args: Any) -> None:
        path = paths.get(id(module))
        if path is not None:
            stack.append(path)
            trace.first_call.setdefault(path, len(trace.first_call))

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        if id(module) in paths:
            stack.pop()

    handles = [register_module_forward_pre_hook(enter), register_module_forward_hook(leave)]
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


@contextlib.contextmanager
def skip_weight_init() -> Iterator[None]:
    """Make `torch.nn.init`'s in-place initialisers no-ops for the duration.

    For models built on the meta device only: their weights are never read, and initialising
    them (torchvision's ResNet runs kaiming_normal_ on every conv) is 90% of the build time.
    """
    names = [name for name in dir(nn.init) if name.endswith("_") and not name.startswith("_")]
    saved = {name: getattr(nn.init, name) for name in names}

    def leave_as_is(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor

    try:
        for name in names:
            setattr(nn.init, name, leave_as_is)
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a short burst of allocation.

    Building a deep model creates thousands of objects; a full collection triggered mid-build then
    walks everything torch's import created (measured: one 0.18 s pause in a 0.45 s count of
    se_resnet152). Nothing here needs collecting before the count ends; the collector is restored,
    and runs as usual, afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
