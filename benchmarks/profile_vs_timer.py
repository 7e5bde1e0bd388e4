"""Does `senet profile`'s median agree with torch.utils.benchmark on the same model, threads and input?

For each model and batch: build it once, time it with `senet_cli.analysis.latency.profile` (the
model alone, interleaved with its baseline as the CLI does) and with
`torch.utils.benchmark.Timer(...).blocked_autorange()` under the same inference_mode, thread count
and input; print both medians and their ratio (target: within 5%). Then repeat `profile` to show the
run-to-run spread of its median.

Run: python benchmarks/profile_vs_timer.py [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.utils.benchmark as tb

from senet_cli.analysis.latency import profile
from senet_cli.zoo import build_model

CASES = (("resnet18", 1, 224), ("se_resnet18", 1, 224), ("se_resnet50", 1, 224), ("se_resnet18", 8, 224))


def timer_median_ms(name: str, batch: int, side: int, threads: int) -> float:
    model = build_model(name).eval()
    x = torch.randn(batch, 3, side, side)
    with torch.inference_mode():
        for _ in range(10):
            model(x)
    timer = tb.Timer("with torch.inference_mode(): model(x)", globals={"model": model, "x": x, "torch": torch},
                     num_threads=threads)
    return timer.blocked_autorange(min_run_time=3.0).median * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}; profile: {args.iters} interleaved runs after 10 warm-up; "
          f"Timer: blocked_autorange(min_run_time=3); medians over {args.rounds} alternating rounds")
    print(f"{'model':<14}{'batch':>6}{'profile (ms)':>14}{'Timer (ms)':>12}{'ratio':>8}")
    for name, batch, side in CASES:
        ours, ref = [], []
        for _ in range(args.rounds):  # alternate the two harnesses so machine drift hits both
            ours.append(profile(name, batches=(batch,), input_size=side, iters=args.iters, warmup=10,
                                threads=args.threads).results[0].model.latency_ms.median)
            ref.append(timer_median_ms(name, batch, side, args.threads))
        a, b = statistics.median(ours), statistics.median(ref)
        print(f"{name:<14}{batch:>6}{a:>14.3f}{b:>12.3f}{a / b:>8.3f}   "
              f"(per round: {' '.join(f'{x / y:.3f}' for x, y in zip(ours, ref))})")
    medians = [
        profile("se_resnet50", batches=(1,), input_size=224, iters=args.iters, warmup=5,
                threads=args.threads).results[0]
        for _ in range(5)
    ]
    model = [r.model.latency_ms.median for r in medians]
    overhead = [r.overhead_pct for r in medians]
    print(f"se_resnet50 batch 1, 5 repeated profiles: median {min(model):.2f}-{max(model):.2f} ms "
          f"(spread {(max(model) - min(model)) / statistics.median(model) * 100:.1f}%), overhead vs resnet50 "
          f"{min(overhead):+.1f}% to {max(overhead):+.1f}%")


if __name__ == "__main__":
    main()
