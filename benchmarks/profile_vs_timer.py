"""Does `senet profile`'s median agree with torch.utils.benchmark on the same model, threads and input?

Part 1, agreement. For each model and batch the model is built once; then, in many short rounds
whose order alternates, the same model object is timed by `time_modules` (the harness behind
`senet profile`) and by `torch.utils.benchmark.Timer(...).blocked_autorange()`, under the same
inference_mode, thread count and input shape. Short interleaved rounds matter on a shared machine:
its speed drifts by 10-40% over minutes, which would otherwise land on one harness and not the
other. Printed: the median over rounds of each harness's median, their ratio (target: within 5%),
and the middle half (p25-p75) of the per-round ratios.

Part 2, repeatability: `profile()` itself (model and baseline interleaved, as the CLI runs it)
repeated five times, with the spread of its medians and of the overhead.

Run: python benchmarks/profile_vs_timer.py [--threads 2] [--rounds 15] [--iters 10] [--min-run-time 0.5]
"""

from __future__ import annotations

import argparse
import statistics

import numpy
import torch
import torch.utils.benchmark as tb

from senet_cli.profile import profile, time_modules
from senet_cli.zoo import build_model

CASES = (("resnet18", 1, 224), ("se_resnet18", 1, 224), ("se_resnet50", 1, 224), ("se_resnet18", 8, 224))


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values) * 100


def compare(name: str, batch: int, side: int, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Per-round medians (ms) of our harness and of Timer on one model object."""
    model = build_model(name).eval()
    x = torch.randn(batch, 3, side, side)
    timer = tb.Timer("with torch.inference_mode(): model(x)", globals={"model": model, "x": x, "torch": torch},
                     num_threads=args.threads)

    def ours() -> float:
        measured = time_modules({name: model}, batch=batch, input_size=(side, side), iters=args.iters, warmup=2,
                                threads=args.threads)
        return measured[name].latency_ms.median

    def reference() -> float:
        return timer.blocked_autorange(min_run_time=args.min_run_time).median * 1000.0

    ours(), reference()  # warm-up of both, untimed
    mine, theirs = [], []
    for round_ in range(args.rounds):
        if round_ % 2 == 0:
            mine.append(ours())
            theirs.append(reference())
        else:
            theirs.append(reference())
            mine.append(ours())
    return mine, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--iters", type=int, default=10, help="time_modules runs per round")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="Timer.blocked_autorange's, per round, s")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}; {args.rounds} alternating rounds of: time_modules, {args.iters} runs after 2 "
          f"warm-up | Timer.blocked_autorange(min_run_time={args.min_run_time})")
    print(f"{'model':<14}{'batch':>6}{'ours (ms)':>11}{'spread':>8}{'Timer (ms)':>12}{'spread':>8}{'ratio':>8}"
          f"{'ratio p25-p75':>16}")
    for name, batch, side in CASES:
        mine, theirs = compare(name, batch, side, args)
        a, b = statistics.median(mine), statistics.median(theirs)
        ratios = sorted(x / y for x, y in zip(mine, theirs, strict=True))
        print(f"{name:<14}{batch:>6}{a:>11.3f}{spread(mine):>7.1f}%{b:>12.3f}{spread(theirs):>7.1f}%{a / b:>8.3f}"
              f"{numpy.percentile(ratios, 25):>10.3f}-{numpy.percentile(ratios, 75):.3f}")

    reports = [
        profile("se_resnet50", batches=(1,), input_size=224, iters=30, warmup=5, threads=args.threads).results[0]
        for _ in range(5)
    ]
    model = [r.model.latency_ms.median for r in reports]
    overhead = [r.overhead_pct for r in reports]
    print(f"se_resnet50 batch 1, 5 repeated profile() runs (30 interleaved runs each): median "
          f"{min(model):.2f}-{max(model):.2f} ms (spread {spread(model):.1f}%), overhead vs resnet50 "
          f"{min(overhead):+.1f}% to {max(overhead):+.1f}%")


if __name__ == "__main__":
    main()
