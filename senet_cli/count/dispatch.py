"""Run a model once under a dispatch-level counter and attribute every op to the module that ran it.

Why our own TorchDispatchMode rather than `torch.utils.flop_counter.FlopCounterMode`: its table
has no formulas for the pooling, gating and activation ops attention modules are made of, and its
per-module totals are cumulative over the module tree; we need each op charged exactly once, to
the innermost module running when it was dispatched, so that per-block rows add up to totals.
Each op is costed by the formula formulas.py registers for its overload packet (`func.overloadpacket`).

The model runs on the meta device: shapes propagate, no arithmetic happens and no memory is
allocated, so counting a 64x3x1024x1024 batch costs what a 1x3x32x32 one does.

Speed: meta kernels run as Python decompositions (about 0.5 ms an op), and a deep ResNet repeats
the same ops on the same shapes block after block. The mode therefore memoises each op's output
metadata by (op, input shapes and arguments) and, on a repeat, makes fresh meta tensors of that
metadata instead of calling the kernel. The memo, `SHAPE_MEMO`, is shared by every trace in the
process (a model and its baseline run mostly the same ops) and bounded by its `limit`. Only ops that
neither write to nor alias their inputs are memoised (read from the op schema), so in-place ops
and views still run for real.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from senet_cli.count.formulas import (
    FORMULAS,
    FREE_OPS,
    distinct_bytes,
    fresh_bytes,
    moved_bytes,
    op_name,
    read_tensors,
    tensors_in,
)
from senet_cli.count.latency import BATCH_NORMS, BINARY_OPS, CONV_OPS, FIRST_TOUCH, REDUCTIONS, OpPredict

AUTOCAST_LOWER = frozenset({
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "convolution",
    "linear", "matmul", "__matmul__", "mm", "bmm", "addmm", "baddbmm", "addbmm", "einsum", "prelu",
    "scaled_dot_product_attention",
})
"""Torch functions that torch's CUDA autocast runs in float16 (its lower-precision list, by name):
their float32 tensor arguments, weights included, are cast first."""
AUTOCAST_FLOAT32 = frozenset({
    "exp", "log", "pow", "__pow__", "rsqrt", "reciprocal", "softplus", "layer_norm", "group_norm", "softmax",
    "log_softmax", "sum", "prod", "norm", "logsumexp", "cumsum", "cdist",
})
"""Torch functions autocast runs in float32 (its float32 list, by name): low-precision tensor arguments
are cast to float32 first."""


@dataclass
class OpRecord:
    """One dispatched op: where it ran and what it cost."""

    module: str
    op: str
    macs: int
    elementwise_ops: int
    bytes: int = 0  # read and written, see formulas.moved_bytes
    # MACs per output element (a conv's C_in / groups x kernel area, a matmul's K); for a reduction
    # (latency.REDUCTIONS) input elements per output element; else 0
    depth: int = 0
    stride: int = 0  # a reduction's element stride along its innermost reduced dimension (1: contiguous); a
    # convolution's largest spatial stride; else 0
    width: int = 0  # a convolution's output channels per group (1: depthwise, or one output map); else 0
    positions: int = 0  # a convolution's output positions per image (a 2-d one's H_out x W_out); else 0
    written: int = 0  # bytes written into the op's own new output (formulas.fresh_bytes): 0 in place
    reads: tuple[tuple[int, int], ...] = ()  # (bytes, reuse distance) of each input storage it reads: the bytes
    # the pass moved since that memory was last touched, its own included (latency.FIRST_TOUCH: not before)

    def predicted_by(self, predict: OpPredict) -> float:
        """The seconds `predict` (latency.DeviceCalibration.forward_predictor) gives this op: the one
        place that hands a record's fields to the latency model, in OpPredict's order."""
        return predict(self.op, self.macs, self.bytes, self.depth, self.stride, self.written, self.reads, self.width,
                       self.positions)


@dataclass
class Trace:
    """Everything one counted forward pass produced."""

    ops: list[OpRecord] = field(default_factory=list)
    first_call: dict[str, int] = field(default_factory=dict)  # module path -> order of first call
    uncounted: Counter[str] = field(default_factory=Counter)  # ops with no formula -> calls


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


def _all_meta(out: Any) -> bool:
    """Whether every tensor of an op's output (through tuples and lists) is on the meta device."""
    if isinstance(out, torch.Tensor):
        return out.device.type == "meta"
    if isinstance(out, (tuple, list)):
        return all(_all_meta(item) for item in out)
    return True


def _rebuild(description: Any) -> Any:
    """Fresh meta tensors (and plain values) matching a `_describe` result."""
    if description[0] == "T":
        return torch.empty_strided(description[1], description[2], dtype=description[3], device="meta")
    if description[0] == "V":
        return description[1]
    kind, items = description
    return kind(_rebuild(item) for item in items)


class ShapeMemo:
    """Output metadata of pure ops, keyed by (op, argument signature), and which ops are pure.

    `get` returns fresh meta tensors shaped like the memoised output; `put` memoises an output.
    Once `limit` outputs are held, the next `put` empties the memo first, so it never holds more.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._outputs: dict[Any, Any] = {}
        self._pure: dict[Any, bool] = {}

    def __len__(self) -> int:
        return len(self._outputs)

    def is_pure(self, func: Any) -> bool:
        """True when the op neither mutates nor returns a view of any input (per its schema)."""
        pure = self._pure.get(func)
        if pure is None:
            schema = func._schema
            pure = self._pure[func] = not any(
                arg.alias_info is not None for arg in (*schema.arguments, *schema.returns)
            )
        return pure

    def get(self, key: Any) -> Any:
        """Fresh meta outputs like the one memoised under `key`, or None when there is none."""
        description = self._outputs.get(key)
        return None if description is None else _rebuild(description)

    def put(self, key: Any, out: Any) -> None:
        """Memoise the metadata of `out`. Not memoised: a None output (`get` could not tell it apart), and
        an output not wholly on the meta device: a factory op with no tensor argument (`torch.arange(n)`
        in a forward, timm's ConViT, SAM ViT and DINOv3 RoPE) makes a real CPU tensor, and a meta copy
        of it given to the next caller would then meet that caller's CPU tensors (issue 21)."""
        if out is None or not _all_meta(out):
            return
        if len(self._outputs) >= self.limit:
            self._outputs.clear()
        self._outputs[key] = _describe(out)

    def clear(self) -> None:
        """Forget every output and purity verdict, as in a fresh process."""
        self._outputs.clear()
        self._pure.clear()


SHAPE_MEMO = ShapeMemo()


def _cast_floating(value: Any, source: torch.dtype, target: torch.dtype, cache: dict[int, Any] | None = None) -> Any:
    """`value` with every tensor of dtype `source` cast to `target`, through lists, tuples and dicts.
    With `cache`, a leaf tensor that requires grad (a parameter) is cast once and the cast reused, as
    autocast's weight cache does within one autocast region."""
    if isinstance(value, torch.Tensor):
        if value.dtype != source:
            return value
        if cache is None or not (value.is_leaf and value.requires_grad):
            return value.to(target)
        key = id(value)
        if key not in cache:
            cache[key] = (value, value.to(target))  # the source is kept so its id stays unique
        return cache[key][1]
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_floating(item, source, target, cache) for item in value)
    if isinstance(value, dict):
        return {key: _cast_floating(item, source, target, cache) for key, item in value.items()}
    return value


class _AutocastOnMeta(TorchFunctionMode):
    """torch.autocast does not act on the meta device; this mode does what it would on CUDA, at the
    level autocast works at (torch functions, before they decompose into aten ops): AUTOCAST_LOWER
    functions get their float32 tensor arguments cast to `dtype`, AUTOCAST_FLOAT32 functions their
    `dtype` arguments cast to float32; others run in their inputs' dtypes (type promotion, as under
    autocast). The casts are real copies, as autocast's are, and are charged as such by the cost
    mode; a weight is cast once per forward and reused (autocast's cache), so CBAM's shared MLP, run
    on two pooled vectors, casts its weights once."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype
        self.cache: dict[int, Any] = {}

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in AUTOCAST_LOWER:
            args, kwargs = _cast_floating((args, kwargs), torch.float32, self.dtype, self.cache)
        elif name in AUTOCAST_FLOAT32:
            args, kwargs = _cast_floating((args, kwargs), self.dtype, torch.float32)
        return func(*args, **kwargs)


class _CostMode(TorchDispatchMode):
    def __init__(self, trace: Trace, stack: list[str], memo: ShapeMemo = SHAPE_MEMO) -> None:
        super().__init__()
        self.trace = trace
        self.stack = stack
        self.memo = memo
        self.moved = 0  # bytes the traced ops moved so far
        self.touched: dict[int, int] = {}  # a live storage -> `moved` when an op last read or wrote it

    def _run(self, func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if not self.memo.is_pure(func):
            return func(*args, **kwargs)
        devices: set[str] = set()
        key = (func, _signature(args, devices), _signature(tuple(sorted(kwargs.items())), devices))
        if devices - {"meta"}:
            return func(*args, **kwargs)
        out = self.memo.get(key)
        if out is None:
            out = func(*args, **kwargs)
            self.memo.put(key, out)
        return out

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        packet = func.overloadpacket
        out = self._run(func, args, kwargs)
        formula = FORMULAS.get(packet)
        if formula is not None:
            macs, elementwise = formula(args, kwargs, out)
        elif packet in FREE_OPS:
            macs, elementwise = 0, 0
        else:
            self.trace.uncounted[op_name(packet)] += 1
            return out
        inputs = read_tensors(func, args, kwargs)
        moved = moved_bytes(func, args, kwargs, out, inputs)
        reads = self._reads(inputs) if moved else {}
        self._touch(out, args, kwargs, reads, moved)
        if macs or elementwise or moved:
            name = op_name(packet)
            depth = stride = width = positions = 0
            if macs:
                depth = macs // max(_output_numel(out), 1)
                if name in CONV_OPS:
                    stride, width, positions = _conv_stride(args), _conv_width(name, args), _conv_positions(out)
            elif name in REDUCTIONS and args and isinstance(args[0], torch.Tensor):
                depth = args[0].numel() // max(_output_numel(out), 1)
                stride = _reduced_stride(args[0], args[1] if len(args) > 1 else kwargs.get("dim"))
            elif name in BATCH_NORMS and args and isinstance(args[0], torch.Tensor) and args[0].dim() >= 2:
                depth = args[0].numel() // max(args[0].shape[0] * args[0].shape[1], 1)  # the map of each channel
            elif name in BINARY_OPS:
                depth = _per_channel_run(args, out)
            self.trace.ops.append(OpRecord(self.stack[-1], name, macs, elementwise, moved, depth, stride, width,
                                           positions, fresh_bytes(func, out), tuple(reads.values())))
        return out

    def _reads(self, inputs: Sequence[torch.Tensor]) -> dict[int, tuple[int, int]]:
        """(bytes, reuse distance) of each storage of `inputs` (the tensors the op reads, formulas'
        `read_tensors`), by storage: the bytes the ops since
        it was last touched moved, plus its own (FIRST_TOUCH when no op of this pass touched it: a
        parameter, the input). Read before the op's own traffic is added."""
        views: dict[int, dict[tuple[Any, ...], int]] = {}  # storage -> its distinct views read -> their bytes
        whole: dict[int, int] = {}  # storage -> its bytes
        for tensor in inputs:
            key = _storage_key(tensor)
            if key is not None:
                views.setdefault(key, {})[(tensor.storage_offset(), tuple(tensor.shape), tensor.stride())] = \
                    distinct_bytes(tensor)
                whole[key] = tensor.untyped_storage().nbytes()
        reads: dict[int, tuple[int, int]] = {}
        for key, seen in views.items():  # one storage read as x and x: once; as its two halves: both
            size = min(sum(seen.values()), whole[key])
            last = self.touched.get(key)
            reads[key] = (size, FIRST_TOUCH if last is None else self.moved - last + size)
        return reads

    def _touch(self, out: Any, args: Any, kwargs: dict[str, Any], reads: dict[int, tuple[int, int]],
               moved: int) -> None:
        """Count the op's traffic and mark what it read and what it made as touched now. A view made
        by an op that moves nothing is the same memory, not a touch; an allocation is new memory, just
        made (its storage may sit where a freed one was: what that one was last touched is forgotten)."""
        def aliased() -> set[int | None]:
            return {_storage_key(tensor) for tensor in tensors_in((args, list(kwargs.values())))}

        self.moved += moved
        for key in reads:
            self.touched[key] = self.moved
        for tensor in tensors_in(out):
            made = _storage_key(tensor)
            if made is not None and (moved or made not in aliased()):
                self.touched[made] = self.moved


def _storage_key(tensor: torch.Tensor) -> int | None:
    """The identity of the memory behind a tensor while it lives (None for a tensor without storage)."""
    try:
        return int(tensor.untyped_storage()._cdata)
    except (RuntimeError, NotImplementedError, AttributeError):
        return None


def _conv_width(name: str, args: Any) -> int:
    """A convolution's output channels per group, from its weight (C_out x C_in / groups x kernel; a
    transposed one's C_in x C_out / groups x kernel) and its input's channels: on a CPU a 1x1 conv of
    72 -> 24 channels on a 28x28 map ran at 0.05 TFLOPS where CBAM's 7x7 conv of 2 -> 1 channels
    (one output map) of about as many MACs and as deep ran at 0.007, and a depthwise 5x5 (one output
    channel per group) at 0.02 where a dense 1x1 conv as deep ran at 0.08. 0 when not known."""
    try:
        x, weight = args[0], args[1]
        if name in ("convolution", "_convolution") and len(args) > 6 and args[6]:  # transposed
            return int(weight.shape[1])
        groups = max(int(x.shape[1]) // max(int(weight.shape[1]), 1), 1) if x.dim() == weight.dim() else 1
        return max(int(weight.shape[0]) // groups, 1)
    except (AttributeError, IndexError, TypeError, ValueError):
        return 0


def _conv_positions(out: Any) -> int:
    """A convolution's output positions per image (its output's elements per channel: H_out x W_out
    for a 2-d one). On a CPU the same 1x1 conv runs slower per MAC on a small map: one thread runs an
    unstrided 1x1 conv at batch under 16 as a matrix product per image (PyTorch's THNN path, not
    oneDNN), whose third dimension is the map. On this project's EPYC a 1x1 conv of 192 -> 1152
    channels on a 7x7 map at batch 8 ran at 0.071 TFLOPS, calibrate's 1x1 convs on 7x7 maps at
    0.068-0.073 at batch 1 and 8 alike, and one of 256 -> 1024 on a 14x14 map at batch 1, the
    nearest in MACs, depth and width, at 0.093. 0 when not known."""
    tensor = out if isinstance(out, torch.Tensor) else None
    if tensor is None or tensor.dim() < 3:
        return 0
    return max(math.prod(int(size) for size in tensor.shape[2:]), 1)


def _conv_stride(args: Any) -> int:
    """A convolution's largest spatial stride (aten.convolution's fourth argument): on a CPU a 1x1
    conv with stride 2 ran 1.2-2.2x slower than the same conv on the already halved map."""
    strides = args[3] if len(args) > 3 else None
    try:
        return max((int(step) for step in strides), default=1) if strides is not None else 1
    except (TypeError, ValueError):
        return 0


def _per_channel_run(args: Any, out: Any) -> int:
    """For an elementwise op of two tensors, the elements of the output each value of the smaller
    one covers when it is constant over the output's innermost dimensions (SE's x * s, s of shape
    N x C x 1 x 1 over an N x C x H x W map: H x W): the length of the short loop the kernel runs
    per channel. 0 when no operand is broadcast that way (same shapes, a scalar, or one constant
    over the channels only, as CBAM's spatial gate N x 1 x H x W, which keeps the inner loop whole)."""
    if not isinstance(out, torch.Tensor) or out.dim() < 2:
        return 0
    tensors = [a for a in args[:2] if isinstance(a, torch.Tensor)]
    if len(tensors) != 2:
        return 0
    small = min(tensors, key=lambda t: t.numel())
    if small.numel() <= 1 or small.numel() >= out.numel():
        return 0
    shape = (1,) * (out.dim() - small.dim()) + tuple(small.shape)
    run = 1
    for size, full in zip(reversed(shape), reversed(tuple(out.shape)), strict=True):
        if size != 1 or full == 1:
            break
        run *= full
    return run if run > 1 else 0


def _reduced_stride(tensor: torch.Tensor, dims: Any) -> int:
    """Elements between two neighbours a reduction reads along its innermost reduced dimension: 1
    when it reduces contiguous memory (a mean over the map of an NCHW tensor), H*W for a max over
    its channels. The latency model tells the two apart: on a CPU the strided one runs several times
    slower per byte. A reduction over everything (no dims) reads contiguously: 1."""
    if dims is None or (isinstance(dims, (list, tuple)) and not dims):
        return 1
    listed = list(dims) if isinstance(dims, (list, tuple)) else [dims]
    try:
        axes = [int(d) % tensor.dim() for d in listed] if tensor.dim() else []
    except (TypeError, ValueError):
        return 0
    return max(min((int(tensor.stride(axis)) for axis in axes), default=1), 1)


def _output_numel(out: Any) -> int:
    """Elements of an op's first tensor output (0 when it has none)."""
    if isinstance(out, torch.Tensor):
        return out.numel()
    if isinstance(out, (tuple, list)):
        return next((_output_numel(item) for item in out if isinstance(item, torch.Tensor)), 0)
    return 0


def trace_costs(model: nn.Module, inputs: torch.Tensor, autocast: torch.dtype | None = None,
                into: Trace | None = None) -> Trace:
    """Run `model(inputs)` once in eval mode under the counter and return what each module cost
    (`autocast`: simulate AMP in that dtype, see `_AutocastOnMeta`). `into`: the Trace to fill (a
    forward that fails leaves there what it traced before failing: count/on_cpu.py sizes its CPU
    fall-back from it). The model and input may be on the meta device or real (the CPU): ops are
    costed by their shapes alone.

    The op's module is the innermost module whose forward was running: two global module hooks
    (cheaper than a pair per submodule) keep a stack of module paths ("" is the model itself).
    """
    from torch.nn.modules.module import (
        register_module_forward_hook,
        register_module_forward_pre_hook,
    )

    trace = into if into is not None else Trace()
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
            if autocast is None:
                model(inputs)
            else:
                with _AutocastOnMeta(autocast):
                    model(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return trace
