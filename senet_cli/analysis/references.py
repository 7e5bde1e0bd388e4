"""Totals from fvcore and thop for the same model and input, for `senet count --counter ...`.

Both need real tensors (fvcore traces with the JIT, thop runs module hooks), so the model is built
on the CPU with random weights and run once; fvcore and thop are imported only here.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable

import torch

from senet_cli.errors import unknown_choice
from senet_cli.options import ModelConfig

COUNTERS = ("fvcore", "thop")

NOTES = {
    "fvcore": (
        "fvcore counts one fused multiply-add as one 'flop' for conv/linear/matmul and adds batch "
        "norm and adaptive pooling elements; it skips mean, amax, sigmoid, mul and add, so the SE "
        "squeeze and gating multiply are missing"
    ),
    "thop": (
        "thop hooks nn.Module types only: conv MACs plus one op per output for the bias, batch norm "
        "and pooling elements; functional ops (x.mean, x * s, the residual add) are invisible to it"
    ),
}


def reference_counts(config: ModelConfig, shape: tuple[int, int, int, int], counters: Iterable[str]):
    """Run each named counter and return its ReferenceCount, in the order asked."""
    from senet_cli.analysis.report import ReferenceCount

    counters = list(dict.fromkeys(counters))
    for name in counters:
        if name not in COUNTERS:
            raise unknown_choice("counter", name, COUNTERS)
    if not counters:
        return ()
    from senet_cli.zoo import build_from_config

    model = build_from_config(config).eval()
    inputs = torch.randn(shape)
    results = []
    for name in counters:
        if name == "fvcore":
            total, conv_linear = _fvcore(model, inputs)
        else:
            total, conv_linear = _thop(config, inputs), None
        results.append(ReferenceCount(name, total, conv_linear, NOTES[name]))
    return tuple(results)


def _fvcore(model: torch.nn.Module, inputs: torch.Tensor) -> tuple[int, int]:
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, inputs)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_operator = analysis.by_operator()
        total = int(analysis.total())
    conv_linear = sum(int(v) for k, v in by_operator.items() if k in ("conv", "linear", "addmm", "matmul", "bmm", "mm"))
    return total, conv_linear


def _thop(config: ModelConfig, inputs: torch.Tensor) -> int:
    from senet_cli.zoo import build_from_config

    model = build_from_config(config).eval()  # thop adds buffers to the model it profiles
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        from thop import profile

        macs, _params = profile(model, inputs=(inputs,), verbose=False)
    return int(macs)
