"""A probe of the machine's own speed, independent of what a benchmark measures.

On this project's shared VM the whole machine runs 5-20% faster or slower for minutes at a time with
nothing else running (benchmarks/RESULTS.md). A benchmark that calibrates at one minute and measures
models at the next sees that shift as an error of the model. Timing one fixed op next to each
measurement tells the two apart: `probe_ms()` before, between and after, and the ratios between probes
are the machine's shift. The probe allocates nothing while timed (a matmul into a tensor it already
has): an op that allocates its output is also timed by the allocator's state, and glibc's moves with
what the process freed before (a 3x3 conv with a fresh output took 2.2 ms as a process's first op and
1.5-1.6 ms after a calibration, on the same machine minutes apart).
"""

from __future__ import annotations

import statistics


def probe_ms(threads: int | None = None) -> float:
    """Median milliseconds of one fixed 512x512 by 512x512 float32 matmul written into an existing
    tensor, on the CPU with `threads` threads (default: torch's current count, which is restored):
    5 timings of about 0.2 s each with torch.utils.benchmark's Timer."""
    import torch
    from torch.utils.benchmark import Timer

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        generator = torch.Generator().manual_seed(0)
        a, b = (torch.randn(512, 512, generator=generator) for _ in range(2))
        out = torch.empty(512, 512)
        with torch.inference_mode():
            timer = Timer("torch.mm(a, b, out=out)", globals={"torch": torch, "a": a, "b": b, "out": out},
                          num_threads=torch.get_num_threads())  # Timer's own default is one thread
            number = max(1, round(0.2 / timer.timeit(1).median))
            return statistics.median(timer.timeit(number).median for _ in range(5)) * 1e3
    finally:
        torch.set_num_threads(before)
