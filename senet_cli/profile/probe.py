"""`SpeedProbe`: one fixed op, timed beside what calibrate and profile measure, to see the machine's speed.

The latency model predicts a time at the rates `senet calibrate` measured. On a shared or throttled
machine the whole machine runs faster or slower for minutes at a time: on this project's 2-core VM,
the minute a calibration ran in and the minutes of a later measurement differed by 10-25%
(benchmarks/RESULTS.md, 2026-12-06), more than any term of the model. calibrate times the probe once
per round and keeps its median in the device file (`probe_us`); profile times the same probe once per
round of its own, between the models, so probe now / probe at calibration is the machine's speed
against the calibration's, over the very minutes the models were timed. profile reports it next to
measured / predicted, so a user can tell a slow machine from a wrong prediction.

The probe is a square matrix product written into a tensor it already holds (it allocates nothing,
so the allocator's state cannot move it), timed with torch.utils.benchmark's Timer like calibrate's
points: two warm-up calls, then about PROBE_SECONDS of calls (the count fixed by the first
measurement), the mean per call; on CUDA the Timer synchronises around the calls.
"""

from __future__ import annotations

from typing import Any

from senet_cli.vocabulary import DEVICES

PROBE_SIDE = dict(zip(DEVICES, (512, 2048), strict=True))  # per device type: cpu, cuda
"""The matrices' side per device type: about 1.5 ms per product on one core of this project's CPU,
about 0.1-0.4 ms on a data-centre GPU."""
PROBE_SECONDS = 0.005
"""Seconds of calls per measurement (at least one call)."""


def _side(device: str) -> int:
    """The matrices' side on `device` (a device type; the CPU's for one not listed)."""
    return PROBE_SIDE.get(device, PROBE_SIDE[DEVICES[0]])


def probe_text(device: str) -> str:
    """What the probe runs on `device` (a device type), for a method line or a note."""
    side = _side(device)
    return f"a {side} x {side} by {side} x {side} matrix product into an existing tensor"


def benchmark_timer() -> Any:
    """torch.utils.benchmark's Timer, imported without the line a CUDA build of torch logs on a machine
    without the CUDA runtime ("No CUDA runtime is found, using CUDA_HOME=..."): torch.utils.benchmark
    imports torch.utils.cpp_extension, which logs it at import, and nothing here compiles."""
    import logging

    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils.benchmark import Timer
    finally:
        logger.setLevel(level)
    return Timer


class SpeedProbe:
    """The fixed op, on one device and dtype; `measure()` times it once and keeps the time.

    Mutable on purpose: it gathers one time per round of whoever calls it (calibrate, profile's
    harness) and `median_us` summarises them."""

    def __init__(self, device: Any, dtype: Any) -> None:
        import torch

        side = _side(device.type)
        generator = torch.Generator().manual_seed(0)
        self._a, self._b = (torch.randn(side, side, generator=generator).to(device=device, dtype=dtype)
                            for _ in range(2))
        self._out = torch.empty(side, side, device=device, dtype=dtype)
        self._number = 0  # calls per measurement, fixed by the first
        self.samples_us: list[float] = []

    def _timer(self) -> Any:
        """A Timer on torch's thread count now (made per measurement, outside the timed calls: a caller
        such as time_modules may set the threads after the probe was made)."""
        import torch

        return benchmark_timer()("torch.mm(a, b, out=out)",
                                 globals={"torch": torch, "a": self._a, "b": self._b, "out": self._out},
                                 num_threads=torch.get_num_threads())  # Timer's own default is one thread

    def measure(self) -> float:
        """Microseconds per product, over about PROBE_SECONDS of calls (kept in `samples_us`)."""
        import torch

        with torch.inference_mode():
            timer = self._timer()
            if not self._number:
                self._number = max(1, round(PROBE_SECONDS / max(timer.timeit(1).median, 1e-9)))
            seconds = timer.timeit(self._number).median
        self.samples_us.append(seconds * 1e6)
        return seconds * 1e6

    def reset(self) -> None:
        """Forget the times measured so far (a new batch size of profile starts afresh)."""
        self.samples_us.clear()

    @property
    def median_us(self) -> float | None:
        """The median of the times measured since the last reset (None before any)."""
        import statistics

        return statistics.median(self.samples_us) if self.samples_us else None
