"""A probe of the machine's own speed, independent of what a benchmark measures.

On this project's shared VM the whole machine runs 5-20% faster or slower for minutes at a time with
nothing else running (benchmarks/RESULTS.md). A benchmark that calibrates at one minute and measures
models at the next sees that shift as an error of the model. Timing one fixed op next to each
measurement tells the two apart: `probe_ms()` before, between and after, and the ratios between probes
are the machine's shift.
"""

from __future__ import annotations

import statistics


def probe_ms(threads: int | None = None) -> float:
    """Median milliseconds of one fixed 3x3 64->64 convolution on a 56x56 map, batch 1, on the CPU
    with `threads` threads (default: torch's current count, which is restored): 5 timings of about
    0.2 s each with torch.utils.benchmark's Timer."""
    import torch
    from torch.utils.benchmark import Timer

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        generator = torch.Generator().manual_seed(0)
        conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
        x = torch.randn(1, 64, 56, 56, generator=generator)
        with torch.inference_mode():
            timer = Timer("conv(x)", globals={"conv": conv, "x": x})
            number = max(1, round(0.2 / timer.timeit(1).median))
            return statistics.median(timer.timeit(number).median for _ in range(5)) * 1e3
    finally:
        torch.set_num_threads(before)
