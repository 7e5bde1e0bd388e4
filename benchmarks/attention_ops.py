"""Issue #22: where the latency model's attention overhead goes wrong, module by module and op by op.

`benchmarks/latency_model.py` compares whole models; an overhead that is a few points off there is
the sum of many attention modules. This script takes each attention module of a zoo model (SE, ECA,
CBAM, ...), runs it ALONE on the feature map it meets in the model (captured by a forward hook on one
real forward), times it with torch.utils.benchmark in interleaved rounds (the median kept) and
compares it with what count's latency model charges for it: the same module traced on the meta device
by count's dispatch counter, each op priced by the calibration (`DeviceCalibration.op_seconds`).
With --ops it also lists, for the first module of each stage, every op: its predicted time and its
time under torch.profiler, its children included (the profiler adds its own few microseconds per
op: a guide, not a figure).

Run: python benchmarks/attention_ops.py [--models cbam_resnet50,se_resnet50] [--batches 1,8]
     [--threads 1] [--rounds 15] [--calibration DEVICE.json] [--ops]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import time
from typing import Any

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule
from senet_cli.count.dispatch import trace_costs
from senet_cli.count.latency import DeviceCalibration
from senet_cli.count.roofline import parse_device
from senet_cli.profile.calibrate import calibrate, time_interleaved
from senet_cli.zoo import build_model


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def attention_inputs(model: nn.Module, batch: int, side: int) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """(path, module, the input it received) for every attention module, from one real forward."""
    seen: list[tuple[str, nn.Module, torch.Tensor]] = []
    hooks = [module.register_forward_pre_hook(lambda m, args, path=path: seen.append((path, m, args[0].clone())))
             for path, module in model.named_modules() if isinstance(module, AttentionModule)]
    with torch.inference_mode():
        model(torch.randn(batch, 3, side, side))
    for hook in hooks:
        hook.remove()
    return seen


def predicted_us(module: nn.Module, x: torch.Tensor, calibration: DeviceCalibration) -> tuple[float, list[Any]]:
    """The model's charge for `module(x)` in microseconds, and its traced ops."""
    trace = trace_costs(copy.deepcopy(module).to("meta"), torch.empty(x.shape, device="meta", dtype=x.dtype))
    ops = trace.ops
    charged = sum(calibration.op_seconds(op.op, op.macs, op.bytes, op.depth, op.stride, op.written, width=op.width,
                                           positions=op.positions)
                  for op in ops)
    return charged * 1e6, ops


def measured_us(jobs: list[tuple[nn.Module, torch.Tensor]], rounds: int, seconds: float = 0.01) -> list[float]:
    """Median time per call of each `module(x)`, over `rounds` interleaved measurements, timed as
    `senet calibrate` times its points (`time_interleaved`)."""
    return [statistics.median(times) for times in time_interleaved(jobs, seconds=seconds, rounds=rounds)]


def profiled_ops(module: nn.Module, x: torch.Tensor, calls: int = 50) -> dict[str, float]:
    """CPU time per call of each aten op under torch.profiler, its children included (microseconds)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        for _ in range(5):
            module(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                module(x)
    return {event.key: event.cpu_time_total / calls for event in prof.key_averages()
            if event.key.startswith("aten::") and event.cpu_time_total > 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="se_resnet50,eca_resnet50,cbam_resnet50")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calibration", default=None, help="a senet calibrate device file (default: calibrate now)")
    parser.add_argument("--ops", action="store_true", help="list every op of each stage's first module")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("# attention modules alone: measured vs the latency model, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"torch {torch.__version__}; {args.threads} thread(s); {uptime()}")
    calibration = (parse_device(args.calibration).calibration if args.calibration
                   else calibrate("cpu", threads=args.threads))
    assert calibration is not None
    print(f"calibration: per-op cost {calibration.op_cost_us:.2f} us, {calibration.seconds:.1f} s; {uptime()}")
    for batch in (int(b) for b in args.batches.split(",")):
        for name in args.models.split(","):
            torch.manual_seed(0)
            model = build_model(name).eval()
            found = attention_inputs(model, batch, args.side)
            measured = measured_us([(module, x) for _, module, x in found], args.rounds)
            print(f"\n## {name}, batch {batch}: {len(found)} modules, {args.rounds} interleaved rounds; {uptime()}")
            print("| module | input | measured (us) | predicted (us) | predicted / measured | ops |")
            print("| --- | --- | ---: | ---: | ---: | ---: |")
            total_m = total_p = 0.0
            shapes_seen: set[tuple[int, ...]] = set()
            for (path, module, x), took in zip(found, measured, strict=True):
                charged, ops = predicted_us(module, x, calibration)
                total_m += took
                total_p += charged
                print(f"| {path} | {'x'.join(map(str, x.shape))} | {took:.1f} | {charged:.1f} | {charged / took:.2f} | "
                      f"{len(ops)} |")
                if args.ops and tuple(x.shape) not in shapes_seen:
                    shapes_seen.add(tuple(x.shape))
                    profiled = profiled_ops(module, x)
                    by_op: dict[str, float] = {}
                    for op in ops:
                        charge_op = calibration.op_seconds(op.op, op.macs, op.bytes, op.depth, op.stride, op.written,
                                                           width=op.width, positions=op.positions)
                        by_op[op.op] = by_op.get(op.op, 0.0) + charge_op * 1e6
                    for op_name, charge in sorted(by_op.items(), key=lambda item: -item[1]):
                        key = f"aten::{op_name.split('.')[0]}"
                        took_op = profiled.get(key, float("nan"))
                        print(f"|   {op_name} | | {took_op:.1f} (profiler) | {charge:.1f} | | |")
            print(f"| **all modules** | | {total_m:.1f} | {total_p:.1f} | {total_p / total_m:.2f} | |")


if __name__ == "__main__":
    main()
