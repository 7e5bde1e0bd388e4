"""Issue #22: where inside a network the latency model misses, op by op, and what a cold op costs.

`attention_ops.py` times each attention module alone; a module's ops run differently inside the
network, after the backbone's long convolutions. This script times every op of a forward pass IN
the network: a TorchDispatchMode reads the wall clock right before and right after each dispatched
op (the op alone: the modules' Python and the mode's own bookkeeping fall outside), one thread, the
models interleaved run by run (drift of the machine hits all alike), the median over the runs per
op. count's trace of the same model, priced with a device file (`forward_predictor`: the per-op cost
and the after-op fraction included), gives each op's prediction. Ops are grouped by (attention or
backbone, op name) and matched by module path and op name (views and allocations, which count does
not trace, are timed and listed apart; an op count traced under another name, or not at that
module, gets a row of its own, marked). Printed per model: each group's measured and predicted
microseconds; for each model after the first (the baseline), what its attention ops took and what
its backbone's ops took more or less than the baseline's.

Then, with --tiny, tiny ops of an SE block (the squeeze's mean, its 1x1 convs, ReLU, sigmoid, batch
norm) timed looped, right after a 3x3 conv of ResNet's first stage and after a 64 MiB sweep: what an
op pays when the op before it (or a sweep) has taken the caches, the branch predictors and the
code it needs. calibrate's per-op cost is the looped figure.

Run: python benchmarks/in_network_ops.py DEVICE.json [--models resnet18,se_resnet18] [--batch 1]
     [--runs 20] [--tiny]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode

from senet_cli.attention.base import AttentionModule
from senet_cli.count.dispatch import trace_costs
from senet_cli.count.formulas import moved_bytes, op_name
from senet_cli.count.latency import DeviceCalibration
from senet_cli.zoo import build_model

TRACED_AS = {"conv2d": "convolution", "conv1d": "convolution", "batch_norm": "native_batch_norm",
             "max_pool2d": "max_pool2d_with_indices", "adaptive_avg_pool2d": "mean", "linear": "addmm",
             "softmax": "_softmax", "log_softmax": "_log_softmax", "layer_norm": "native_layer_norm",
             "group_norm": "native_group_norm"}
"""Ops as inference mode dispatches them (what `senet profile` times) -> as count traces them (under
no_grad on the meta device, where they decompose): the same kernels, matched by these names.
`matmul` and `einsum` are named by their operands (`_product_name`)."""
UNTRACED = "untraced (views, allocations)"
"""The row of ops count does not trace because they move nothing."""


def _product_name(args: Any) -> str:
    """A matmul or einsum as count traces it: mm for two matrices, bmm for batches of them."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    return "mm" if len(tensors) == 2 and all(t.dim() == 2 for t in tensors) else "bmm"


class _OpTimer(TorchDispatchMode):
    """Appends (module path, op name as count traces it, seconds; UNTRACED for a view or allocation)
    for every op dispatched inside. The clock is read right around the op."""

    def __init__(self, record: list[tuple[str, str, float]], stack: list[str]) -> None:
        super().__init__()
        self.record = record
        self.stack = stack

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        started = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        seconds = time.perf_counter() - started
        name = op_name(func.overloadpacket)
        if not moved_bytes(func, args, kwargs or {}, out):  # a view or an allocation, as count decides it
            name = UNTRACED
        elif name in ("matmul", "einsum"):
            name = _product_name(args if name == "matmul" else args[1])
        self.record.append((self.stack[-1], TRACED_AS.get(name, name), seconds))
        return out


def attention_paths(model: nn.Module) -> list[str]:
    """Paths of the model's attention modules (their ops are the attention's share)."""
    return [path for path, module in model.named_modules() if isinstance(module, AttentionModule)]


def group(path: str, op: str, attention: list[str]) -> str:
    """The row an op is summed into: "attention <op>" or "backbone <op>"."""
    inside = any(path == a or path.startswith(a + ".") for a in attention)
    return f"{'attention' if inside else 'backbone'} {op}"


def timed_in_network(models: dict[str, nn.Module], x: torch.Tensor,
                     runs: int) -> dict[str, dict[tuple[str, str], float]]:
    """Per model, per (module path, op name): the median over `runs` interleaved runs of the summed
    seconds of those ops in one forward pass."""
    paths: dict[int, str] = {}
    for model in models.values():
        paths.update({id(module): path for path, module in model.named_modules() if path})
    stack = [""]

    def enter(module: nn.Module, args: Any) -> None:
        if id(module) in paths:
            stack.append(paths[id(module)])

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        if id(module) in paths:
            stack.pop()

    handles = [register_module_forward_pre_hook(enter), register_module_forward_hook(leave)]
    samples: dict[str, dict[tuple[str, str], list[float]]] = {name: collections.defaultdict(list) for name in models}
    order = list(models)
    try:
        with torch.inference_mode():
            for run in range(runs + 2):  # two warm-up runs
                for name in order:
                    record: list[tuple[str, str, float]] = []
                    with _OpTimer(record, stack):
                        models[name](x)
                    if run >= 2:
                        sums: dict[tuple[str, str], float] = collections.defaultdict(float)
                        for path, op, seconds in record:
                            sums[(path, op)] += seconds
                        for key, seconds in sums.items():
                            samples[name][key].append(seconds)
                order.reverse()
    finally:
        for handle in handles:
            handle.remove()
    return {name: {key: statistics.median(values) for key, values in found.items()} for name, found in samples.items()}


def predicted(model: nn.Module, batch: int, calibration: DeviceCalibration) -> dict[tuple[str, str], float]:
    """Per (module path, op name): the latency model's seconds for those ops of one forward pass."""
    meta = build_meta_copy(model)
    trace = trace_costs(meta, torch.empty(batch, 3, 224, 224, device="meta"))
    predict = calibration.forward_predictor()
    out: dict[tuple[str, str], float] = collections.defaultdict(float)
    for op in trace.ops:
        out[(op.module, op.op)] += op.predicted_by(predict)
    return out


def build_meta_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` on the meta device (count traces there)."""
    import copy

    return copy.deepcopy(model).to("meta")


def tiny_ops(runs: int) -> None:
    """Tiny ops of an SE block looped, right after a 3x3 conv and after a 64 MiB sweep (medians, us)."""

    class Mean(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean((2, 3), keepdim=True)

    ops: dict[str, tuple[nn.Module, tuple[int, ...]]] = {
        "mean over a 64 x 56 x 56 map": (Mean(), (1, 64, 56, 56)),
        "mean over a 64 x 7 x 7 map": (Mean(), (1, 64, 7, 7)),
        "conv 1x1 64 -> 4 on 1 x 1": (nn.Conv2d(64, 4, 1), (1, 64, 1, 1)),
        "conv 1x1 4 -> 64 on 1 x 1": (nn.Conv2d(4, 64, 1), (1, 4, 1, 1)),
        "ReLU, 64 values": (nn.ReLU(), (1, 64, 1, 1)),
        "sigmoid, 64 values": (nn.Sigmoid(), (1, 64, 1, 1)),
        "batch norm 64 x 7 x 7": (nn.BatchNorm2d(64).eval(), (1, 64, 7, 7)),
    }
    conv, conv_input = nn.Conv2d(64, 64, 3, padding=1), torch.randn(1, 64, 56, 56)
    sweep = torch.zeros(64 * 2**20 // 4)

    def seconds(module: nn.Module, x: torch.Tensor) -> float:
        started = time.perf_counter()
        module(x)
        return time.perf_counter() - started

    print("\n## tiny ops: looped, right after a 3x3 conv (64 channels, 56 x 56), after a 64 MiB sweep (median us)")
    print("| op | looped | after the conv | after the sweep |")
    print("| --- | ---: | ---: | ---: |")
    with torch.inference_mode():
        for label, (module, shape) in ops.items():
            x = torch.randn(shape)
            looped, after_conv, after_sweep = [], [], []
            for _ in range(runs):
                module(x)
                looped.append(seconds(module, x))
                conv(conv_input)
                after_conv.append(seconds(module, x))
                sweep.add_(1.0)
                after_sweep.append(seconds(module, x))
            print(f"| {label} | " + " | ".join(f"{statistics.median(v) * 1e6:.1f}"
                                                for v in (looped, after_conv, after_sweep)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calibration", help="a device file from senet calibrate (same thread count)")
    parser.add_argument("--models", default="resnet18,se_resnet18,eca_resnet18,cbam_resnet18",
                        help="zoo models; the first is the baseline of the others")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="also time tiny ops looped and after a long op")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    calibration = DeviceCalibration.load(args.calibration)
    if calibration.threads != args.threads:
        raise SystemExit(f"{args.calibration} was calibrated on {calibration.threads} thread(s), not {args.threads}: "
                         f"pass --threads {calibration.threads} or calibrate again")
    names = args.models.split(",")
    models = {name: build_model(name).eval() for name in names}
    x = torch.randn(args.batch, 3, 224, 224)
    print(f"# ops in the network: measured vs the latency model, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, {args.runs} interleaved runs; "
          f"calibration {calibration.name}, {calibration.created}")
    measured = timed_in_network(models, x, args.runs)
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for name, model in models.items():
        attention = attention_paths(model)
        charged = predicted(model, args.batch, calibration)
        groups: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
        for (path, op), seconds in measured[name].items():
            key = UNTRACED if op == UNTRACED else group(path, op, attention)
            if op != UNTRACED and (path, op) not in charged:
                key += " (not in count's trace here)"  # named apart: never silently in another row
            groups[key][0] += seconds
        for (path, op), seconds in charged.items():
            groups[group(path, op, attention)][1] += seconds
        rows[name] = {key: (m, p) for key, (m, p) in groups.items()}
        total_m, total_p = (sum(v[i] for v in groups.values()) for i in (0, 1))
        print(f"\n## {name}: ops measured {total_m * 1e3:.2f} ms, predicted {total_p * 1e3:.2f} ms")
        print("| ops | measured (us) | predicted (us) | predicted / measured |")
        print("| --- | ---: | ---: | ---: |")
        for key, (m, p) in sorted(rows[name].items(), key=lambda item: -item[1][0]):
            print(f"| {key} | {m * 1e6:.0f} | {p * 1e6:.0f} | {p / m if m else float('nan'):.2f} |")
    base = names[0]
    for name in names[1:]:
        keys = set(rows[name]) | set(rows[base])
        attention = [k for k in keys if k.startswith("attention")]
        a_m, a_p = (sum(rows[name].get(k, (0.0, 0.0))[i] for k in attention) for i in (0, 1))
        print(f"\n## {name} against {base}: attention ops measured {a_m * 1e6:.0f} us, predicted {a_p * 1e6:.0f} us; "
              "backbone and untraced ops, measured (predicted) more than the baseline's, where over 20 us:")
        for key in sorted(k for k in keys if not k.startswith("attention")):
            m, p = (rows[name].get(key, (0.0, 0.0))[i] - rows[base].get(key, (0.0, 0.0))[i] for i in (0, 1))
            if abs(m) > 20e-6 or abs(p) > 20e-6:
                print(f"- {key}: {m * 1e6:+.0f} us ({p * 1e6:+.0f})")
    if args.tiny:
        tiny_ops(args.runs * 2)


if __name__ == "__main__":
    main()
