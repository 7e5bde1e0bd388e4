"""Issue #22: is an input a network's op reads as warm as calibrate's looped ops see it?

calibrate loops each op on one input; in a network an op reads what another op has just written
into memory of its own. This script reads a tensor of each size with a reduction (`x.amax()` over
the map of an N x C x H x W tensor, as CBAM's channel gate does), timed four ways, one thread,
medians of --calls calls in --rounds interleaved rounds:

- looped: the same tensor read again and again (what calibrate's points measure);
- after copy_: written in place just before (`x.copy_(src)`: the same memory, so its lines were
  in the caches before the write);
- after a new write: a new tensor written just before (`src * 1.0001`, the allocator's memory, as a
  network's op output), then read;
- after a flush: read after 256 MiB of other memory was written (past every cache);

and, with --sizes, how each compares with `senet calibrate`'s read and cold_read points.
Printed per size: the four medians in microseconds, and what a read of a fresh output costs over
the looped one, per MiB. The latency model charges an input the cold read when more than the
cores' private caches (`cache_bytes`, the L2 here) were touched since it was last touched.

Run: python benchmarks/cold_reads.py [--sizes 0.25,1,2,4,8,25] [--rounds 5] [--calls 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import torch
from cold_ops import median_us  # benchmarks/ is on the path when this script runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.25,1,2,4,8,25", help="MiB of the tensor read")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"# reads of fresh outputs vs looped reads, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"torch {torch.__version__}, 1 thread; {uptime}")
    print("| MiB | looped (us) | after copy_ | after a new write | after a flush | fresh - looped, us per MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    flush = torch.zeros(2**26)  # 256 MiB
    for mib in (float(s) for s in args.sizes.split(",")):
        real_mib, m = one_size(mib, flush, args.rounds, args.calls)
        print(f"| {real_mib:.3g} | {m['looped']:.1f} | {m['copy']:.1f} | {m['new']:.1f} | {m['flush']:.1f} | "
              f"{(m['new'] - m['looped']) / real_mib:.1f} |")


def one_size(mib: float, flush: torch.Tensor, rounds: int, calls: int) -> tuple[float, dict[str, float]]:
    """The tensor's MiB and the four ways' medians (microseconds) for a 1 x C x 56 x 56 tensor of about `mib`."""
    side = 56
    channels = max(1, round(mib * 2**20 / 4 / side / side))
    src = torch.randn(1, channels, side, side)
    held = {"x": src.clone()}

    def read() -> object:
        return held["x"].amax((2, 3))

    def copy_in() -> object:
        return held["x"].copy_(src)

    def new_write() -> object:
        held["x"] = src * 1.0001
        return held["x"]

    def flushed() -> object:
        return flush.add_(1.0)

    ways: dict[str, list[float]] = {"looped": [], "copy": [], "new": [], "flush": []}
    for _ in range(rounds):
        ways["looped"].append(median_us(read, calls))
        ways["copy"].append(median_us(read, calls, copy_in))
        ways["new"].append(median_us(read, calls, new_write))
        ways["flush"].append(median_us(read, calls, flushed))
    return src.numel() * 4 / 2**20, {way: statistics.median(times) for way, times in ways.items()}


if __name__ == "__main__":
    main()
