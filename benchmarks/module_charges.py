"""Issue #22: where inside a network does measured time exceed the latency model's charge?

Runs a zoo model (one thread by default) with a forward pre-hook and hook on every module that take
the wall clock, so each module call's *exclusive* time (its own, less its children's) is known; the
median over the runs is set beside the latency model's charge for the ops that module ran (count's
trace on the meta device, priced with a `senet calibrate` device file). Rows are module kinds, the
blocks' modules summed over blocks (layer3.0.bn1 and layer4.2.bn1 are one row, `bn1`), sorted by how
much measured exceeds charged. The hooks add a few microseconds to every call: compare rows with
each other (a batch norm's ratio with a conv's), not with 1.0. Also printed: module calls and traced
ops per forward pass (the per-op cost covers one module call per op).

Run: python benchmarks/module_charges.py DEVICE.json [--model cbam_resnet50] [--batch 1] [--runs 15]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time

import torch

import senet_cli
from senet_cli.count.dispatch import trace_costs
from senet_cli.count.latency import DeviceCalibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calibration", help="a senet calibrate device file")
    parser.add_argument("--model", default="cbam_resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    calibration = DeviceCalibration.load(args.calibration)
    x = torch.randn(args.batch, 3, 224, 224)
    meta = senet_cli.build_model(args.model).eval().to("meta")
    charged: dict[str, float] = collections.defaultdict(float)
    ops: collections.Counter[str] = collections.Counter()
    trace = trace_costs(meta, torch.empty(x.shape, device="meta"))
    predict = calibration.forward_predictor()  # in the order the ops ran: each pays for the one before it
    for op in trace.ops:
        charged[op.module] += op.predicted_by(predict) * 1e6
        ops[op.module] += 1

    model = senet_cli.build_model(args.model).eval()
    stack: list[list] = []  # [path, start, children's time]
    own: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter[str] = collections.Counter()

    def enter(path: str):
        def hook(module, inputs):
            calls[path] += 1
            stack.append([path, time.perf_counter(), 0.0])
        return hook

    def leave(module, inputs, output):
        path, start, children = stack.pop()
        total = time.perf_counter() - start
        own[path] += total - children
        if stack:
            stack[-1][2] += total

    for path, module in model.named_modules():
        module.register_forward_pre_hook(enter(path or "(model)"))
        module.register_forward_hook(leave)
    samples: dict[str, list[float]] = collections.defaultdict(list)
    with torch.inference_mode():
        for run in range(args.runs + 3):
            own.clear()
            calls.clear()
            model(x)
            if run >= 3:  # warm-up runs first
                for path, seconds in own.items():
                    samples[path].append(seconds * 1e6)
    measured = {path: statistics.median(values) for path, values in samples.items()}
    rows: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    for path in set(measured) | set(charged):
        parts = path.split(".")
        kind = ".".join(parts[2:]) if path.startswith("layer") and len(parts) > 2 else path
        rows[kind][0] += measured.get(path, 0.0)
        rows[kind][1] += charged.get(path, 0.0)
        rows[kind][2] += ops[path]
    print(f"{args.model}, batch {args.batch}, {args.threads} thread(s), median of {args.runs} runs with hooks: "
          f"{sum(measured.values()) / 1e3:.1f} ms measured, {sum(charged.values()) / 1e3:.1f} ms charged; "
          f"{sum(calls.values())} module calls, {len(trace.ops)} traced ops per forward pass")
    print("| module | measured (us) | charged (us) | measured / charged | ops |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind, (spent, price, count) in sorted(rows.items(), key=lambda item: item[1][1] - item[1][0])[:25]:
        ratio = f"{spent / price:.2f}" if price else ""
        print(f"| {kind} | {spent:,.0f} | {price:,.0f} | {ratio} | {count:.0f} |")


if __name__ == "__main__":
    main()
