"""Totals from fvcore and thop for the same model and input, to set beside ours.

Both need real tensors (fvcore traces with the JIT, thop runs module hooks), so the model is built
on the CPU with random weights and run once; torch, fvcore and thop are imported only when asked.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from senet_cli.errors import UnknownChoiceError
from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.subject import Subject, subject_for

COUNTERS = ("fvcore", "thop")


@dataclass(frozen=True)
class ReferenceCount:
    """Another counter's total for the same model and input, with what it counts."""

    counter: str
    macs: int
    conv_linear_macs: int | None
    note: str


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


def check_counters(counters: Iterable[str]) -> tuple[str, ...]:
    """The counters named, each once, in order; an unknown name is refused."""
    names = tuple(dict.fromkeys(counters))
    for name in names:
        if name not in COUNTERS:
            raise UnknownChoiceError("counter", name, COUNTERS)
    return names


def reference_counts(
    model: ModelConfig | ExternalConfig | Subject, shape: tuple[int, int, int, int], counters: Iterable[str]
) -> tuple[ReferenceCount, ...]:
    """Run each named counter on a real copy of `model` (random weights) and return its ReferenceCount,
    in the order asked."""
    counters = check_counters(counters)
    if not counters:
        return ()
    import torch

    subject = subject_for(model)
    network = subject.build().eval()
    inputs = torch.randn(shape)
    results = []
    for name in counters:
        if name == "fvcore":
            total, conv_linear = _fvcore(network, inputs)
        else:
            total, conv_linear = _thop(subject, inputs), None
        results.append(ReferenceCount(name, total, conv_linear, NOTES[name]))
    return tuple(results)


def _fvcore(model: Any, inputs: Any) -> tuple[int, int]:
    import torch

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


def _thop(subject: Subject, inputs: Any) -> int:
    import torch

    model = subject.build().eval()  # thop adds buffers to the model it profiles
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        from thop import profile

        macs, _params = profile(model, inputs=(inputs,), verbose=False)
    return int(macs)
