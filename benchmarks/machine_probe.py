"""A probe of the machine's own speed, independent of what a benchmark measures.

On this project's shared VM the whole machine runs 5-40% faster or slower for seconds to minutes at
a time with nothing else running (benchmarks/RESULTS.md). A benchmark that calibrates at one minute
and measures models at the next sees that shift as an error of the model. Timing one fixed op next to
each measurement tells the two apart. The op is senet's own speed probe (senet_cli/profile/probe.py,
which `senet calibrate` records and `senet profile` times between its rounds): a matrix product into
a tensor it already has, so the allocator's state cannot move it.
"""

from __future__ import annotations

import statistics


def probe_ms(threads: int | None = None, measurements: int = 5) -> float:
    """Median milliseconds of senet's speed probe on the CPU with `threads` threads (default: torch's
    current count, which is restored), over `measurements` measurements of about 5 ms of calls each."""
    import torch

    from senet_cli.profile.probe import SpeedProbe

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        probe = SpeedProbe(torch.device("cpu"), torch.float32)
        return statistics.median(probe.measure() for _ in range(measurements)) / 1e3
    finally:
        torch.set_num_threads(before)
