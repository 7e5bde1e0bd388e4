"""Issue #22: how much slower is a write into memory not touched lately, and where do a network's outputs land?

Two measurements behind calibrate's cold_write points (count/latency.py, `cold_write_seconds`):

1. `x * 2.0` on float tensors of several sizes, one thread, its output allocated each call (the
   allocator hands back the buffer just freed: warm, as calibrate's memory points) or written into
   the next slot of a pool rotated over 8 to 256 MiB (zeroed first, so no write is a page's first).
   Printed: the median microseconds per call of each.
2. `--reuse MODEL`: one real CPU forward of a zoo model at batch 1 under a dispatch mode that records,
   for every new output of over 100 kB, the bytes all ops moved since its storage was last touched
   (read or written) in that pass: p10 / p50 / p90 in MiB per op, and how many storages were not
   touched before in the pass. Calibrate's warm copies see about 0; a write past the caches needs
   tens of MiB.

Run: python benchmarks/cold_writes.py [--sizes-mib 0.4,1.6,3.2,12.8] [--rounds 5] [--reuse cbam_resnet50]
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.benchmark import Timer

from senet_cli.count.formulas import moved_bytes
from senet_cli.zoo.build import build_model

POOLS_MIB = (8, 32, 64, 128, 256)


def rotation(size_mib: float, rounds: int, calls: int) -> dict[str, float]:
    """Median microseconds per call of x * 2.0 warm and rotated over each of POOLS_MIB."""
    n = int(size_mib * 2**20 / 4)
    x = torch.rand(n)
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        times["warm"].append(Timer("x * 2.0", globals={"x": x}, num_threads=1).timeit(calls).median * 1e6)
        for pool_mib in POOLS_MIB:
            slots = max(2, int(pool_mib * 2**20 / 4) // n)
            pool = torch.zeros(slots * n)  # touched once here
            views = [pool[i * n:(i + 1) * n] for i in range(slots)]
            state = {"next": 0}

            def write(views: list[Any] = views, state: dict[str, int] = state) -> None:
                state["next"] = (state["next"] + 1) % len(views)
                torch.mul(x, 2.0, out=views[state["next"]])

            write()
            times[f"{pool_mib} MiB"].append(Timer("write()", globals={"write": write}, num_threads=1)
                                            .timeit(calls).median * 1e6)
    return {key: statistics.median(values) for key, values in times.items()}


class _Reuse(TorchDispatchMode):
    """Bytes moved since each new output's storage was last touched."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = 0
        self.last: dict[int, int] = {}
        self.rows: list[tuple[str, int]] = []  # (op, bytes since last touched; -1: not touched in this pass)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        moved = moved_bytes(func, args, kwargs, out)
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        outputs = [out] if isinstance(out, torch.Tensor) else [
            o for o in (out if isinstance(out, (tuple, list)) else []) if isinstance(o, torch.Tensor)]
        if moved:
            for tensor in outputs[:1]:
                pointer = tensor.untyped_storage().data_ptr()
                fresh = not any(i.untyped_storage().data_ptr() == pointer for i in inputs)
                if fresh and tensor.numel() * tensor.element_size() > 100_000:
                    since = self.clock - self.last[pointer] if pointer in self.last else -1
                    self.rows.append((func.overloadpacket.__name__, since))
            self.clock += moved
            for tensor in inputs + outputs:
                self.last[tensor.untyped_storage().data_ptr()] = self.clock
        return out


def reuse(model_name: str) -> None:
    torch.set_num_threads(1)
    model = build_model(model_name).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        model(x)
        model(x)  # the allocator in its steady state
        mode = _Reuse()
        with mode:
            model(x)
    by_op: dict[str, list[int]] = defaultdict(list)
    for op, since in mode.rows:
        by_op[op].append(since)
    print(f"\n{model_name}, batch 1, one CPU forward: MiB moved since each new output's storage was last touched")
    print("| op | outputs | not touched before in the pass | p10 | p50 | p90 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for op, values in sorted(by_op.items()):
        known = sorted(v for v in values if v >= 0)

        def at(share: float, known: list[int] = known) -> str:
            return f"{known[int(share * (len(known) - 1))] / 2**20:.1f}" if known else ""

        print(f"| {op} | {len(values)} | {len(values) - len(known)} | {at(0.1)} | {at(0.5)} | {at(0.9)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", default="0.4,1.6,3.2,12.8")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--reuse", default="cbam_resnet50", help="a zoo model ('' to skip)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("x * 2.0, one thread, median us per call: warm (output allocated each call) and rotated over a pool")
    print("| input = output | warm | " + " | ".join(f"{p} MiB" for p in POOLS_MIB) + " |")
    print("| --- | ---: |" + " ---: |" * len(POOLS_MIB))
    for size in (float(s) for s in args.sizes_mib.split(",")):
        row = rotation(size, args.rounds, args.calls)
        print(f"| {size:g} MiB | {row['warm']:,.1f} | " + " | ".join(f"{row[f'{p} MiB']:,.1f}" for p in POOLS_MIB)
              + " |", flush=True)
    if args.reuse:
        reuse(args.reuse)


if __name__ == "__main__":
    main()
