"""Issue #22: how much slower is a small op right after a large conv than looped alone?

calibrate times each op in a loop, so its weights and inputs sit in L2; in a network a small op runs
once between large convs, which evict L2 (ResNet-50's layer3 3x3 conv touches 2.4 MB of weights and
1.6 MB of activations; this VM's L2 is 2 MiB a core). Printed per op: the median of 200 calls looped
alone, the median of 200 calls each right after a 3x3 256->256 conv at 28x28 (only the op is timed),
and their ratio. One thread by default.

Run: python benchmarks/cold_ops.py [--threads 1] [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import senet_cli


def median_us(call: Callable[[], object], calls: int, before: Callable[[], object] | None = None) -> float:
    """Median wall time of `call` in microseconds; `before` (untimed) runs ahead of each call."""
    times = []
    for _ in range(calls):
        if before is not None:
            before()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cbam_block = senet_cli.build_model("cbam_resnet50").eval().layer3[1]
    se_block = senet_cli.build_model("se_resnet50").eval().layer3[1]
    x = torch.randn(1, 1024, 14, 14)
    big, big_x = nn.Conv2d(256, 256, 3, 1, 1, bias=False).eval(), torch.randn(1, 256, 28, 28)
    linear, linear_x = nn.Linear(1024, 64).eval(), torch.randn(1, 1024)
    conv7, conv7_x = cbam_block.cbam.SpatialGate.spatial.conv, torch.randn(1, 2, 14, 14)
    ops: dict[str, Callable[[], object]] = {
        "CBAM module, layer3 (1024 @14)": lambda: cbam_block.cbam(x),
        "SE module, layer3 (1024 @14)": lambda: se_block.se(x),
        "linear 1024->64, batch 1": lambda: linear(linear_x),
        "CBAM's conv 7x7 2->1 @14": lambda: conv7(conv7_x),
        "x * 2.0, 1024 @14": lambda: x * 2.0,
        "batch norm 1024 @14": lambda: cbam_block.bn3(x),
    }
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.calls} calls each")
    print("| op | looped alone (us) | right after a 3x3 256 @28 conv (us) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    with torch.inference_mode():
        for name, call in ops.items():
            for _ in range(20):  # warm both
                call()
                big(big_x)
            hot = median_us(call, args.calls)
            cold = median_us(call, args.calls, before=lambda: big(big_x))
            print(f"| {name} | {hot:,.1f} | {cold:,.1f} | {cold / hot:.2f} |")


if __name__ == "__main__":
    main()
