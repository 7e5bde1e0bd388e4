"""Attention found by structure: a module whose output is its input multiplied by a gate it computed
from that input (`x * g(x)`, `x * g.expand_as(x)`, CBAM's `x * g1(x)` then `* g2(...)`).

How: the model runs once on the meta device with a pre-hook on every module recording the
arguments of its first call (shapes only: meta tensors hold no data). Each candidate module (not
a torch.nn built-in, not a container) then runs once more on its own recorded arguments under a
TorchDispatchMode that follows every aten op and marks each tensor:

- INPUT: the module's first tensor argument, or a view of it (a view op: view, expand, permute...);
- DERIVED: computed from the input (any op with a DERIVED or INPUT operand);
- REDUCED: DERIVED through a tensor with fewer elements than the input (a mean, a pooling, a strided
  conv), or from such a tensor;
- GATED: a product `a * g` (aten.mul, aten.mul_) where `a` is INPUT or GATED and `g` is DERIVED,
  SHAPED and *reduced*: it varies over fewer elements than the product (it broadcasts, or is an expand with
  stride 0 somewhere), or it is REDUCED (timm's SimpleCoordAttn: `gate(a_h + a_w)` has the features'
  shape, summed from two strip-pooled maps), or a view or copy of such a product;
- SHAPED: computed through a parameter (a conv's or a linear's weight, a norm's affine) or a
  squashing activation (sigmoid, hard sigmoid, softmax, tanh, clamp): how a gate is learned or
  bounded. A normalisation's factor, `x * rsqrt(mean(x ** 2))` (RMSNorm), is neither: no gate;
- WEIGHED: a product `b * w` of two DERIVED tensors (neither INPUT nor GATED), `w` reduced as above;
- BRANCHED: a sum over one dimension (aten.sum.dim_IntList) of a WEIGHED tensor: the branch form of
  SK and SplitAttn, `sum_m(branch_m * softmax weight_m)`, or a view or copy of it.

The module is attention when its output is GATED (a gate on its input: role "gate"), or BRANCHED
(it replaces the conv that made the branches: role "conv"). This leaves out what is not attention:
`x * sigmoid(x)` (SiLU: the factor has the product's shape, nothing was reduced), a LayerScale
`x * gamma` (gamma is a parameter, not derived from x), a residual `x + f(x)` (no product), and a
block holding an SE (the product's operand is the block's BN output, not the block's input).
The branch form (SK, SplitAttn: the sum of gated branches) and the convolution-replacing modules
are matched by class (senet_cli/outside/known.py).

For each product the probe also says which submodule's output (through views only) is the gate,
and over which dimensions of the features it varies: its kind ("channel": one dimension;
"spatial": several, not the channel dimension 1; "channel x position": several including dimension
1, as the zoo names a gate varying over both) and its channel count. Torch is imported inside.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

INPUT, DERIVED, GATED, REDUCED, WEIGHED, BRANCHED, SHAPED = 1, 2, 4, 8, 16, 32, 64

_SQUASHING = frozenset({
    # bounded activations a gate is made with: a gate computed without parameters (SimAM, the
    # parameter-free GE) still passes through one of these
    "sigmoid", "sigmoid_", "hardsigmoid", "hardsigmoid_", "softmax", "_softmax", "tanh", "tanh_", "hardtanh",
    "hardtanh_", "clamp", "clamp_", "log_sigmoid_forward",
})

_BUILTIN_PREFIX = "torch.nn."

_VALUE_FREE = frozenset({
    # ops whose result takes only the shape, dtype or device of their operand, not its values: a
    # tensor made by them is not computed from the input (DropPath's `x.new_empty(shape).bernoulli_()`)
    "new_empty", "new_empty_strided", "new_zeros", "new_ones", "new_full", "empty_like", "zeros_like",
    "ones_like", "full_like", "rand_like", "randn_like", "randint_like", "bernoulli", "bernoulli_",
    "uniform_", "normal_", "fill_", "zero_", "exponential_", "geometric_", "random_",
})


@dataclass(frozen=True)
class GateUse:
    """One submodule whose output multiplies the features: its path relative to the attention module,
    the kind of gate ("channel", "spatial", "channel x position") and the channels it varies over."""

    path: str
    kind: str
    channels: int


@dataclass(frozen=True)
class Probe:
    """What one module does to its input: whether its output is the input times a gate
    (`multiplies`), or the sum of branches weighed by gates computed from them (`branches`), the
    gate submodules seen multiplying its input (those with a module of their own), and the submodules
    whose outputs weighed the branches (`weights`: SK's softmax, [B, M, C, 1, 1])."""

    multiplies: bool
    gates: tuple[GateUse, ...]
    branches: bool = False
    weights: tuple[str, ...] = ()


SLOW_MODULE_S = 0.1
"""A module whose first forward on meta took longer than this is not probed (its submodules still
are): a gate takes microseconds there; an LSTM stage (sequencer2d) takes seconds each time it runs."""


def record_inputs(model: Any, shape: tuple[int, ...]) -> dict[str, tuple[tuple[Any, ...], dict[str, Any], float]]:
    """{module path: (args, kwargs, seconds) of its first call} from one forward of `model` (on meta) on
    a meta input of `shape`. Raises what the forward raises."""
    import time

    import torch

    recorded: dict[str, tuple[tuple[Any, ...], dict[str, Any], float]] = {}
    started: dict[str, float] = {}
    handles = []
    for path, module in model.named_modules():
        if not path:
            continue

        def before(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], path: str = path) -> None:
            if path not in recorded and path not in started:
                started[path] = time.perf_counter()
                recorded[path] = (args, dict(kwargs), 0.0)

        def after(_module: Any, _args: Any, _output: Any, path: str = path) -> None:
            if path in started:
                args, kwargs, _ = recorded[path]
                recorded[path] = (args, kwargs, time.perf_counter() - started.pop(path))

        handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(module.register_forward_hook(after))
    try:
        with torch.no_grad():
            model(torch.empty(shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return recorded


def is_candidate(module: Any) -> bool:
    """A module whose forward is worth probing: its class is not one of torch.nn's own (a conv, an
    activation, a norm) and it is not a container."""
    from torch import nn

    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        return False
    return not type(module).__module__.startswith(_BUILTIN_PREFIX)


def probe(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Probe | None:
    """How `module` treats its first tensor argument, run once on `args` (meta tensors); None when it
    takes no tensor or does not run on its recorded arguments."""
    import torch

    first = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if first is None or first.device.type != "meta":
        return None
    mode = _Tracker(first)
    names: dict[int, str] = {}
    handles = [sub.register_forward_hook(lambda _m, _a, out, name=name: _name_output(names, mode, out, name))
               for name, sub in module.named_modules() if name]
    try:
        with torch.no_grad(), mode:
            output = module(*args, **kwargs)
    except (Exception, SystemExit):  # noqa: BLE001 (a module called outside its model may refuse: it is not judged)
        return None
    finally:
        for handle in handles:
            handle.remove()
    tensor = output if isinstance(output, torch.Tensor) else None
    # a gate on the input keeps its shape: gMLP's spatial gating unit (half the channels times a map of the
    # other half) gates, but nn.Identity cannot stand in for it, so it is no attention of the gate role
    multiplies = tensor is not None and tensor.shape == first.shape and bool(mode.flags_of(tensor) & GATED)
    branches = tensor is not None and bool(mode.flags_of(tensor) & BRANCHED)
    uses: dict[str, GateUse] = {}
    for gate_id, kind, channels in mode.products:
        name = names.get(gate_id)
        if name is not None and name not in uses:
            uses[name] = GateUse(name, kind, channels)
    weights = tuple(dict.fromkeys(names[w] for w in mode.weights if w in names)) if branches else ()
    return Probe(multiplies, tuple(uses.values()), branches, weights)


def _name_output(names: dict[int, str], mode: Any, output: Any, name: str) -> None:
    """A submodule's output tensor: remember whose it is (the innermost module that returned it)."""
    import torch

    if isinstance(output, torch.Tensor):
        mode.keep(output)
        names.setdefault(mode.origin_of(output), name)


def gate_kind(product: tuple[int, ...], gate: Any, reduced: bool = False) -> tuple[str, int] | None:
    """(kind, channels) of a gate multiplying features of shape `product`, or None when the gate varies
    over every element and was not computed through a reduction (`reduced`): an activation, not a gate.
    The batch dimension 0 is not counted; a dimension varies where the gate's broadcast size there is
    above 1 with a non-zero stride."""
    shape = tuple(gate.shape)
    strides = tuple(gate.stride())
    shape, strides = (1,) * (len(product) - len(shape)) + shape, (0,) * (len(product) - len(strides)) + strides
    varies = [d for d in range(1, len(product)) if shape[d] > 1 and strides[d] != 0]
    own = math.prod(shape[d] for d in range(1, len(product)) if d in varies)
    if own >= math.prod(product[1:]) and not reduced:
        return None
    if len(varies) == 1:
        return "channel", shape[varies[0]]
    if 1 in varies:
        return "channel x position", shape[1]
    return "spatial", 1


class _Tracker:
    """A TorchDispatchMode marking tensors INPUT / DERIVED / GATED (see the module doc)."""

    def __new__(cls, first: Any) -> Any:
        from torch.utils._python_dispatch import TorchDispatchMode

        class Tracker(TorchDispatchMode):
            def __init__(self) -> None:
                super().__init__()
                self.flags: dict[int, int] = {id(first): INPUT | DERIVED}
                self.origin: dict[int, int] = {}  # view of a tensor -> the tensor it views (through views)
                self.alive: list[Any] = [first]  # ids stay unique while the tensors live
                self.products: list[tuple[int, str, int]] = []  # (gate origin id, kind, channels)
                self.weighing: dict[int, int] = {}  # weighed product id -> its weight's origin id
                self.weights: list[int] = []  # origin ids of the weights of branch sums
                self.size = first.numel()
                self.ops = 0

            def keep(self, tensor: Any) -> None:
                self.alive.append(tensor)

            def flags_of(self, tensor: Any) -> int:
                return self.flags.get(id(tensor), 0)

            def origin_of(self, tensor: Any) -> int:
                return self.origin.get(id(tensor), id(tensor))

            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                import torch

                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                operands = [a for a in _tensors((args, kwargs))]
                flags = 0
                for operand in operands:
                    flags |= self.flags_of(operand)
                if getattr(getattr(func, "overloadpacket", None), "__name__", "") in _VALUE_FREE:
                    for result in _tensors(out):  # an in-place fill or draw makes its operand value-free too
                        self.flags.pop(id(result), None)
                        self.alive.append(result)
                    return out
                derived = DERIVED if flags & (DERIVED | INPUT) else 0
                results = list(_tensors(out))
                packet = getattr(func, "overloadpacket", None)
                shaped = SHAPED if flags & SHAPED or getattr(packet, "__name__", "") in _SQUASHING or any(
                    isinstance(operand, torch.nn.Parameter) for operand in operands) else 0
                carried = flags & REDUCED | shaped  # what results inherit besides DERIVED
                if packet in (torch.ops.aten.mul, torch.ops.aten.mul_) and len(args) >= 2 \
                        and all(isinstance(a, torch.Tensor) for a in args[:2]) and results:
                    gated = self._gated(args[0], args[1], results[0])
                    weighed = not gated and self._weighed(args[0], args[1], results[0])
                    if gated or weighed:
                        flag = DERIVED | (GATED if gated else WEIGHED)
                        self._mark(results[0], flag)
                        if packet is torch.ops.aten.mul_:
                            self._mark(args[0], flag)
                        return out
                if func is torch.ops.aten.sum.dim_IntList and operands and self.flags_of(operands[0]) & WEIGHED \
                        and len(args) > 1 and len(args[1]) == 1:
                    if id(operands[0]) in self.weighing:
                        self.weights.append(self.weighing[id(operands[0])])
                    for result in results:
                        self._mark(result, DERIVED | BRANCHED)
                    return out
                kept = self.flags_of(operands[0]) & (GATED | BRANCHED) if operands and packet in (
                    torch.ops.aten.clone, torch.ops.aten._to_copy) else 0
                view = bool(getattr(func, "is_view", False)) and operands
                for result in results:
                    if view:
                        source = operands[0]
                        self._mark(result, derived | carried | (self.flags_of(source) & (INPUT | GATED | BRANCHED)))
                        self.origin[id(result)] = self.origin_of(source)
                    else:
                        small = derived and result.numel() < self.size
                        self._mark(result, derived | carried | kept | (REDUCED if small else 0))
                name = getattr(packet, "__name__", "")
                if name.endswith("_") and operands and derived:  # written in place through a view: its base
                    self.flags[self.origin_of(operands[0])] = self.flags.get(self.origin_of(operands[0]), 0) | \
                        derived | carried
                self.ops += 1
                if self.ops > OP_LIMIT:
                    raise _TooLong
                return out

            def _gated(self, a: Any, b: Any, product: Any) -> bool:
                for features, gate in ((a, b), (b, a)):
                    if self.flags_of(features) & (INPUT | GATED) and self.flags_of(gate) & DERIVED \
                            and self.flags_of(gate) & SHAPED and not self.flags_of(gate) & (INPUT | GATED):
                        kind = gate_kind(tuple(product.shape), gate, bool(self.flags_of(gate) & REDUCED))
                        if kind is not None:
                            self.products.append((self.origin_of(gate), *kind))
                            return True
                return False

            def _weighed(self, a: Any, b: Any, product: Any) -> bool:
                for branches, weight in ((a, b), (b, a)):
                    if self.flags_of(branches) & DERIVED and self.flags_of(weight) & DERIVED \
                            and not (self.flags_of(branches) | self.flags_of(weight)) & (INPUT | GATED) \
                            and gate_kind(tuple(product.shape), weight) is not None:
                        self.weighing[id(product)] = self.origin_of(weight)
                        return True
                return False

            def _mark(self, tensor: Any, flags: int) -> None:
                self.alive.append(tensor)
                if flags:
                    self.flags[id(tensor)] = self.flags.get(id(tensor), 0) | flags

        return Tracker()


OP_LIMIT = 4000
"""A module whose one forward runs more aten ops than this is not judged (its submodules still are):
a gate is a few dozen ops; a stage of LSTMs (sequencer2d) re-run under the tracker would cost seconds."""


class _TooLong(Exception):
    """Raised inside a probe past OP_LIMIT ops."""


def _tensors(value: Any) -> Iterator[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
