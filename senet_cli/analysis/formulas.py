"""Cost formulas per aten op: what one call costs in multiply-accumulates and elementwise ops.

Two measures, named by what they hold:
  macs             multiply-accumulates of convolutions, linear layers and matmul/bmm. One fused
                   multiply-add is one MAC; this is what the SENet, ECA and CBAM papers (and
                   torchvision's docs) call "FLOPs". A conv's or addmm's bias add is not a MAC.
  elementwise_ops  one op per *input* element for pooling and reductions (global average pooling,
                   mean, amax, max-pool), one per *output* element for elementwise arithmetic
                   (activations, gating multiplies, residual adds, bias adds, batch norm, softmax).
                   These are the ops fvcore and thop leave out, and attention modules are made of them.

The tables are literal dicts keyed by the aten op's overload-packet name with any trailing "_"
(the in-place form) removed, so `relu_` costs what `relu` costs. Ops in `FREE_OPS` move or view
data and cost nothing; any op in neither table is reported as uncounted, never silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

Cost = tuple[int, int]
"""(macs, elementwise_ops)"""

Formula = Callable[[Sequence[Any], dict[str, Any], Any], Cost]


def _first_tensor(value: Any) -> torch.Tensor:
    """The first tensor of an op's output (batch norm returns (out, mean, invstd))."""
    if isinstance(value, torch.Tensor):
        return value
    for item in value:
        if isinstance(item, torch.Tensor):
            return item
    raise TypeError("op returned no tensor")


def conv_macs(x_shape: Sequence[int], w_shape: Sequence[int], out_shape: Sequence[int], transposed: bool) -> int:
    """MACs of an N-d convolution: every output element takes (C_in / groups) * prod(kernel) MACs.

    The weight is [C_out, C_in/groups, *kernel] (transposed: [C_in, C_out/groups, *kernel], and
    then every *input* element is spread over C_out/groups * prod(kernel) outputs).
    """
    per_element = w_shape[1] * math.prod(w_shape[2:])
    return (math.prod(x_shape) if transposed else math.prod(out_shape)) * per_element


def _convolution(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    x, weight, bias = args[0], args[1], args[2]
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
    output = _first_tensor(out)
    macs = conv_macs(x.shape, weight.shape, output.shape, transposed)
    return macs, (output.numel() if bias is not None else 0)


def _mm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * b.shape[1], 0


def _addmm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    a, b = args[1], args[2]
    return a.shape[0] * a.shape[1] * b.shape[1], _first_tensor(out).numel()


def _bmm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], 0


def _baddbmm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    a, b = args[1], args[2]
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], _first_tensor(out).numel()


def _per_input_element(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    return 0, args[0].numel()


def _per_output_element(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    return 0, _first_tensor(out).numel()


def _max_or_min(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost:
    """`max(a, b)` is elementwise; `max(a)` and `max(a, dim)` are reductions."""
    if len(args) > 1 and isinstance(args[1], torch.Tensor):
        return _per_output_element(args, kwargs, out)
    return _per_input_element(args, kwargs, out)


MAC_OPS: dict[str, Formula] = {
    "convolution": _convolution,
    "_convolution": _convolution,
    "mm": _mm,
    "addmm": _addmm,
    "bmm": _bmm,
    "baddbmm": _baddbmm,
}

REDUCTION_OPS: dict[str, Formula] = {
    # One op per input element: each element is read and accumulated once.
    **{
        name: _per_input_element
        for name in (
            "mean", "sum", "amax", "amin", "prod", "var", "std", "var_mean", "std_mean",
            "logsumexp", "norm", "linalg_vector_norm", "argmax", "argmin",
            "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_max_pool2d",
            "adaptive_max_pool3d", "avg_pool2d", "avg_pool3d", "max_pool2d",
            "max_pool2d_with_indices", "max_pool3d_with_indices", "avg_pool1d", "max_pool1d",
        )
    },
    "max": _max_or_min,
    "min": _max_or_min,
}

ELEMENTWISE_OPS: dict[str, Formula] = {
    # One op per output element. Batch norm counts one per element: at inference it is a fused
    # scale-and-shift (fvcore's comment: some ignore it "due to inference-time fusion"; we show it).
    name: _per_output_element
    for name in (
        "add", "sub", "rsub", "mul", "div", "neg", "reciprocal", "pow", "sqrt", "rsqrt", "exp",
        "log", "abs", "square", "sign", "erf", "lerp", "addcmul", "addcdiv", "where",
        "maximum", "minimum", "clamp", "clamp_min", "clamp_max", "relu", "relu6", "leaky_relu",
        "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh", "hardsigmoid",
        "hardswish", "hardtanh", "softplus", "threshold", "_softmax", "_log_softmax",
        "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
        "native_layer_norm", "native_group_norm", "_fused_rms_norm",
    )
}

FREE_OPS = frozenset(
    # Data movement, views, allocation and bookkeeping: no arithmetic.
    (
        "view", "_unsafe_view", "reshape", "_reshape_alias", "expand", "permute", "transpose", "t",
        "squeeze", "unsqueeze", "flatten", "cat", "stack", "clone", "copy", "contiguous", "detach",
        "alias", "as_strided", "slice", "select", "index", "index_select", "gather", "split",
        "split_with_sizes", "unbind", "chunk", "narrow", "empty", "empty_like", "empty_strided",
        "new_empty", "new_empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
        "full_like", "new_zeros", "new_ones", "fill", "zero", "lift_fresh", "lift_fresh_copy",
        "_to_copy", "to", "repeat", "constant_pad_nd", "roll", "flip", "unfold", "masked_fill",
        "scalar_tensor", "arange", "_local_scalar_dense", "pad", "set_", "resize",
        # Nearest-neighbour resizing copies values (Gather-Excite's excite step): no arithmetic.
        "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
        "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
    )
)

FORMULAS: dict[str, Formula] = {**MAC_OPS, **REDUCTION_OPS, **ELEMENTWISE_OPS}


def op_key(func: Any) -> str:
    """The formula-table key of an aten op: its packet name without the in-place underscore."""
    name: str = func._overloadpacket.__name__
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name
