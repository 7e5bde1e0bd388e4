"""Cost formulas per aten op: what one call costs in multiply-accumulates and elementwise ops.

Two measures, named by what they hold:
  macs             multiply-accumulates of convolutions, linear layers and matmul/bmm. One fused
                   multiply-add is one MAC; this is what the SENet, ECA and CBAM papers (and
                   torchvision's docs) call "FLOPs". A conv's or addmm's bias add is not a MAC.
  elementwise_ops  one op per *input* element for pooling and reductions (global average pooling,
                   mean, amax, max-pool), one per *output* element for elementwise arithmetic
                   (activations, gating multiplies, residual adds, bias adds, batch norm, softmax).
                   These are the ops fvcore and thop leave out, and attention modules are made of them.

The MACs of convolution, mm, addmm, bmm and baddbmm are torch.utils.flop_counter's formulas halved
(it counts a multiply-add as two FLOPs), so the two counters agree on them by construction; the bias
adds it leaves out are counted here as elementwise ops.

The tables are keyed by `torch.ops.aten` overload packets and filled only through `register_formula`
and `register_free`, which, like flop_counter's `register_flop_formula`, refuse at import anything
that is not an op packet and any op registered twice, so a misspelt op fails loudly (`torch.ops.aten`
raises AttributeError) instead of being a key that never matches. Each op is registered together
with its in-place form where aten has one (`relu_` with `relu`, `add_` with `add`), which costs the
same and is reported under the out-of-place name (`op_name`). Ops in `FREE_OPS` move or view data
and cost nothing; any op in neither is reported as uncounted, never silently dropped.

A third measure, `bytes` (memory traffic, `moved_bytes` at the end), is the same for every op,
costed or free: it reads each tensor input once and writes each output once, at its dtype's size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch._ops import OpOverloadPacket
from torch.utils import flop_counter

Cost = tuple[int, int]
"""(macs, elementwise_ops)"""

Formula = Callable[[Sequence[Any], dict[str, Any], Any], Cost]

aten = torch.ops.aten

MAC_OPS: dict[OpOverloadPacket, Formula] = {}
REDUCTION_OPS: dict[OpOverloadPacket, Formula] = {}
ELEMENTWISE_OPS: dict[OpOverloadPacket, Formula] = {}
FREE_OPS: set[OpOverloadPacket] = set()
FORMULAS: dict[OpOverloadPacket, Formula] = {}
"""The three costed tables in one: what the dispatcher looks an op's packet up in."""
OP_NAMES: dict[OpOverloadPacket, str] = {}
"""Every registered packet -> the name reports give it (an in-place form's is its out-of-place op's)."""


def _inplace_form(op: OpOverloadPacket) -> OpOverloadPacket | None:
    """`op`'s in-place variant (`relu` -> `relu_`): same name plus "_", and it writes to its first argument."""
    namespace = getattr(torch.ops, op._qualified_op_name.partition("::")[0])
    candidate = getattr(namespace, op.__name__ + "_", None)
    if not isinstance(candidate, OpOverloadPacket):
        return None
    for overload in candidate.overloads():
        alias = getattr(candidate, overload)._schema.arguments[0].alias_info
        if alias is not None and alias.is_write:
            return candidate
    return None


def _claim(ops: Sequence[Any]) -> dict[OpOverloadPacket, str]:
    """Each op and its in-place form -> its report name. Raises, before anything is registered, on an
    op that is not an op packet or is already registered (as costed or as free)."""
    claimed: dict[OpOverloadPacket, str] = {}
    for op in ops:
        if not isinstance(op, OpOverloadPacket):
            raise TypeError(
                f"expected an op overload packet such as torch.ops.aten.relu, got {op!r} of type {type(op).__name__}"
            )
        for packet in (op, _inplace_form(op)):
            if packet is None:
                continue
            if packet in OP_NAMES or packet in claimed:
                raise ValueError(f"{packet._qualified_op_name} is registered twice")
            claimed[packet] = op.__name__
    return claimed


def register_formula(table: dict[OpOverloadPacket, Formula], *ops: OpOverloadPacket) -> Callable[[Formula], Formula]:
    """Decorator: charge each of `ops`, and its in-place form, by the decorated formula; `table` is
    MAC_OPS, REDUCTION_OPS or ELEMENTWISE_OPS. The formula is returned unchanged."""
    if not any(table is known for known in (MAC_OPS, REDUCTION_OPS, ELEMENTWISE_OPS)):
        raise ValueError("table must be MAC_OPS, REDUCTION_OPS or ELEMENTWISE_OPS")

    def register(formula: Formula) -> Formula:
        claimed = _claim(ops)
        for packet in claimed:
            table[packet] = FORMULAS[packet] = formula
        OP_NAMES.update(claimed)
        return formula

    return register


def register_free(*ops: OpOverloadPacket) -> None:
    """Mark each of `ops`, and its in-place form, as costing nothing (data movement, views, allocation)."""
    claimed = _claim(ops)
    FREE_OPS.update(claimed)
    OP_NAMES.update(claimed)


def op_name(packet: OpOverloadPacket) -> str:
    """The name reports give an op: a registered in-place form's out-of-place name, else the packet's."""
    return OP_NAMES.get(packet) or packet.__name__


def _if_present(name: str) -> tuple[OpOverloadPacket, ...]:
    """`aten.<name>` where this torch has it, else nothing: only for ops newer than torch 2.4."""
    packet = getattr(aten, name, None)
    return (packet,) if isinstance(packet, OpOverloadPacket) else ()


def _first_tensor(value: Any) -> torch.Tensor:
    """The first tensor of an op's output (batch norm returns (out, mean, invstd))."""
    if isinstance(value, torch.Tensor):
        return value
    for item in value:
        if isinstance(item, torch.Tensor):
            return item
    raise TypeError("op returned no tensor")


# torch.utils.flop_counter's formulas count a multiply-add as 2 FLOPs; halved, they are MACs. Its
# registered formulas take tensors or shapes (they map tensors to shapes themselves).


def conv_macs(x_shape: Sequence[int], w_shape: Sequence[int], out_shape: Sequence[int], transposed: bool) -> int:
    """MACs of an N-d convolution: every output element takes (C_in / groups) * prod(kernel) MACs.

    The weight is [C_out, C_in/groups, *kernel] (transposed: [C_in, C_out/groups, *kernel], and
    then every *input* element is spread over C_out/groups * prod(kernel) outputs).
    """
    return flop_counter.conv_flop_count(list(x_shape), list(w_shape), list(out_shape), transposed) // 2


@register_formula(MAC_OPS, aten.convolution, aten._convolution)
def _convolution(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    x, weight, bias = args[0], args[1], args[2]
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
    output = _first_tensor(out)
    macs = conv_macs(x.shape, weight.shape, output.shape, transposed)
    return macs, (output.numel() if bias is not None else 0)


@register_formula(MAC_OPS, aten.mm)
def _mm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    return flop_counter.mm_flop(args[0], args[1]) // 2, 0


@register_formula(MAC_OPS, aten.addmm)
def _addmm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    return flop_counter.addmm_flop(args[0], args[1], args[2]) // 2, _first_tensor(out).numel()


@register_formula(MAC_OPS, aten.bmm)
def _bmm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    return flop_counter.bmm_flop(args[0], args[1]) // 2, 0


@register_formula(MAC_OPS, aten.baddbmm)
def _baddbmm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    return flop_counter.baddbmm_flop(args[0], args[1], args[2]) // 2, _first_tensor(out).numel()


@register_formula(
    REDUCTION_OPS,
    # One op per input element: each element is read and accumulated once.
    aten.mean, aten.sum, aten.amax, aten.amin, aten.prod, aten.var, aten.std, aten.var_mean, aten.std_mean,
    aten.logsumexp, aten.norm, aten.linalg_vector_norm, aten.argmax, aten.argmin,
    aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_max_pool2d, aten.adaptive_max_pool3d,
    aten.avg_pool2d, aten.avg_pool3d, aten.max_pool2d, aten.max_pool2d_with_indices, aten.max_pool3d_with_indices,
    aten.avg_pool1d, aten.max_pool1d,
)
def _per_input_element(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    return 0, args[0].numel()


@register_formula(
    ELEMENTWISE_OPS,
    # One op per output element. Batch norm counts one per element: at inference it is a fused
    # scale-and-shift (fvcore's comment: some ignore it "due to inference-time fusion"; we show it).
    aten.add, aten.sub, aten.rsub, aten.mul, aten.div, aten.neg, aten.reciprocal, aten.pow, aten.sqrt,
    aten.rsqrt, aten.exp, aten.log, aten.abs, aten.square, aten.sign, aten.erf, aten.lerp, aten.addcmul,
    aten.addcdiv, aten.where, aten.maximum, aten.minimum, aten.clamp, aten.clamp_min, aten.clamp_max,
    aten.relu, aten.relu6, aten.leaky_relu, aten.elu, aten.selu, aten.celu, aten.gelu, aten.silu, aten.mish,
    aten.sigmoid, aten.tanh, aten.hardsigmoid, aten.hardswish, aten.hardtanh, aten.softplus, aten.threshold,
    aten._softmax, aten._log_softmax,
    aten.native_batch_norm, aten._native_batch_norm_legit, aten._native_batch_norm_legit_no_training,
    aten.native_layer_norm, aten.native_group_norm, *_if_present("_fused_rms_norm"),  # RMSNorm's, after 2.4
)
def _per_output_element(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    return 0, _first_tensor(out).numel()


@register_formula(REDUCTION_OPS, aten.max, aten.min)
def _max_or_min(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    """`max(a, b)` is elementwise; `max(a)` and `max(a, dim)` are reductions."""
    if len(args) > 1 and isinstance(args[1], torch.Tensor):
        return _per_output_element(args, kwargs, out)
    return _per_input_element(args, kwargs, out)


register_free(
    # Data movement, views, allocation and bookkeeping: no arithmetic.
    aten.view, aten._unsafe_view, aten.reshape, aten._reshape_alias, aten.expand, aten.permute, aten.transpose,
    aten.t, aten.squeeze, aten.unsqueeze, aten.flatten, aten.cat, aten.stack, aten.clone, aten.copy,
    aten.contiguous, aten.detach, aten.alias, aten.as_strided, aten.slice, aten.select, aten.index,
    aten.index_select, aten.gather, aten.split, aten.split_with_sizes, aten.unbind, aten.chunk, aten.narrow,
    aten.empty, aten.empty_like, aten.empty_strided, aten.new_empty, aten.new_empty_strided, aten.zeros,
    aten.zeros_like, aten.ones, aten.ones_like, aten.full, aten.full_like, aten.new_zeros, aten.new_ones,
    aten.fill, aten.zero, aten.lift_fresh, aten.lift_fresh_copy, aten._to_copy, aten.to, aten.repeat,
    aten.constant_pad_nd, aten.roll, aten.flip, aten.unfold, aten.masked_fill, aten.scalar_tensor, aten.arange,
    aten._local_scalar_dense, aten.pad, aten.set_, aten.resize,
    # Nearest-neighbour resizing copies values (Gather-Excite's excite step): no arithmetic.
    aten.upsample_nearest1d, aten.upsample_nearest2d, aten.upsample_nearest3d,
    aten._upsample_nearest_exact1d, aten._upsample_nearest_exact2d, aten._upsample_nearest_exact3d,
)


# Memory traffic. Every counted op (costed or free) reads each tensor input once and writes each tensor
# output once, at its dtype's size; a broadcast (expanded, stride-0) input is read once per distinct
# element. Views and allocations move nothing; an op that overwrites its first argument without
# reading it (copy_, fill_, zero_) is not charged for reading it.
VIEW_OR_ALLOCATION_OPS: set[OpOverloadPacket] = {
    aten.view, aten._unsafe_view, aten._reshape_alias, aten.expand, aten.permute, aten.transpose, aten.t,
    aten.squeeze, aten.unsqueeze, aten.detach, aten.alias, aten.as_strided, aten.slice, aten.select,
    aten.split, aten.split_with_sizes, aten.unbind, aten.chunk, aten.narrow, aten.unfold,
    aten.empty, aten.empty_like, aten.empty_strided, aten.new_empty, aten.new_empty_strided,
    aten.lift_fresh, aten.scalar_tensor, aten._local_scalar_dense, aten.set_, aten.resize,
}
"""Free ops that move no data: views (their output aliases the input) and uninitialised allocations.
Ops whose schema says they return a view are treated the same way even when not listed here."""
BATCH_NORM_OPS: set[OpOverloadPacket] = {
    aten.native_batch_norm, aten._native_batch_norm_legit, aten._native_batch_norm_legit_no_training,
}
"""Only their first output is charged: at inference the kernels do not compute the saved mean and
inverse std they also return (the meta kernels return them anyway, as C float32 values each)."""
OVERWRITE_OPS: set[OpOverloadPacket] = {aten.copy, aten.fill, aten.zero}
"""Ops (and their in-place forms) that write their first argument's shape without reading its values."""
SHAPE_TEMPLATE_OPS: set[OpOverloadPacket] = {
    aten.zeros_like, aten.ones_like, aten.full_like, aten.rand_like, aten.randn_like, aten.randint_like,
    aten.new_zeros, aten.new_ones, aten.new_full,
}
"""Ops that fill a new tensor shaped (or typed) like their first argument without reading its values:
charged for their output alone, and their first argument is not touched (the latency model's reuse
distances)."""
for _packet in list(VIEW_OR_ALLOCATION_OPS) + list(OVERWRITE_OPS):
    _inplace = _inplace_form(_packet)
    if _inplace is not None:
        (VIEW_OR_ALLOCATION_OPS if _packet in VIEW_OR_ALLOCATION_OPS else OVERWRITE_OPS).add(_inplace)


def distinct_bytes(tensor: torch.Tensor) -> int:
    """Bytes of the distinct elements a tensor addresses: a stride-0 (broadcast) dimension counts once."""
    strides = tensor.stride()
    if 0 not in strides:
        return tensor.numel() * tensor.element_size()
    elements = 1
    for size, stride in zip(tensor.shape, strides, strict=True):
        if stride != 0:
            elements *= size
    return elements * tensor.element_size() if tensor.numel() else 0


def tensors_in(value: Any) -> list[torch.Tensor]:
    """The tensors of a value, through lists and tuples (an op's arguments or outputs)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in tensors_in(item)]
    return []


_MOVES_NOTHING, _READS_ALL, _OVERWRITES_FIRST, _FIRST_OUTPUT_ONLY = range(4)
_TRAFFIC_KIND: dict[Any, int] = {}  # OpOverload -> one of the above, decided once per overload


def _traffic_kind(func: Any) -> int:
    kind = _TRAFFIC_KIND.get(func)
    if kind is None:
        packet = func.overloadpacket
        returns = func._schema.returns
        view = bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)
        if packet in VIEW_OR_ALLOCATION_OPS or view:
            kind = _MOVES_NOTHING
        elif packet in OVERWRITE_OPS or packet in SHAPE_TEMPLATE_OPS:
            kind = _OVERWRITES_FIRST
        elif packet in BATCH_NORM_OPS:
            kind = _FIRST_OUTPUT_ONLY
        else:
            kind = _READS_ALL
        _TRAFFIC_KIND[func] = kind
    return kind


_OUT_ARGUMENTS: dict[Any, frozenset[str]] = {}  # OpOverload -> names of its out= arguments, read once


def _out_arguments(func: Any) -> frozenset[str]:
    names = _OUT_ARGUMENTS.get(func)
    if names is None:
        names = _OUT_ARGUMENTS[func] = frozenset(a.name for a in func._schema.arguments if a.is_out)
    return names


def moved_bytes(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any,
                read: Sequence[torch.Tensor] | None = None) -> int:
    """Bytes one call of `func` (an OpOverload) reads and writes: each tensor input once (parameters
    included), each tensor output once, 0 for views and allocations (see VIEW_OR_ALLOCATION_OPS).
    An op whose schema says it returns a view moves nothing even when not listed there. `read`: the
    op's `read_tensors`, where the caller has them already (count's tracer needs them twice)."""
    kind = _traffic_kind(func)
    if kind == _MOVES_NOTHING:
        return 0
    outputs = _first_tensor(out) if kind == _FIRST_OUTPUT_ONLY else out
    inputs = read_tensors(func, args, kwargs) if read is None else read
    return sum(map(distinct_bytes, inputs)) + sum(map(distinct_bytes, tensors_in(outputs)))


def read_tensors(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors one call of `func` reads, as `moved_bytes` counts them: each tensor input (an
    `out=` tensor is written, not read; an op that overwrites its first argument does not read it);
    none for views and allocations."""
    kind = _traffic_kind(func)
    if kind == _MOVES_NOTHING:
        return []
    inputs = tensors_in(args)
    if kwargs:
        outs = _out_arguments(func)
        inputs += tensors_in([value for name, value in kwargs.items() if name not in outs])
    if kind == _OVERWRITES_FIRST and args and isinstance(args[0], torch.Tensor):
        inputs = inputs[1:]
    return inputs


def fresh_bytes(func: Any, out: Any) -> int:
    """Bytes one call of `func` (an OpOverload) writes into memory it allocated for its output: its
    tensor outputs (the first only for batch norm, as `moved_bytes`, and for a pool traced with its
    indices: under inference mode a real max pool runs without them), 0 for views and allocations and
    for an op that writes into a tensor it was given (in place, `out=`: its schema's returns alias an
    argument). The latency model charges these writes at the bandwidth of a write into memory not
    touched lately (a network's fresh output seldom lands where the op before it wrote)."""
    fresh = _fresh_outputs(func)
    if fresh == _NO_OUTPUT:
        return 0
    return sum(map(distinct_bytes, tensors_in(_first_tensor(out) if fresh == _FIRST_OUTPUT else out)))


_NO_OUTPUT, _FIRST_OUTPUT, _EVERY_OUTPUT = range(3)
_FRESH_OUTPUTS: dict[Any, int] = {}  # OpOverload -> which outputs it allocates, decided once per overload (as
# _TRAFFIC_KIND: count calls fresh_bytes for every op it traces)


def _fresh_outputs(func: Any) -> int:
    which = _FRESH_OUTPUTS.get(func)
    if which is None:
        if _traffic_kind(func) == _MOVES_NOTHING or any(r.alias_info is not None for r in func._schema.returns):
            which = _NO_OUTPUT
        elif _traffic_kind(func) == _FIRST_OUTPUT_ONLY or func.overloadpacket.__name__.endswith("_with_indices"):
            which = _FIRST_OUTPUT
        else:
            which = _EVERY_OUTPUT
        _FRESH_OUTPUTS[func] = which
    return which
