"""`profile()` and `time_modules()`: latency, throughput and peak memory, interleaved with a baseline.

timing.py holds `Timing` (how to run and time, checked once); api.py `profile()` and
`time_modules()`; results.py what they return; harness.py the torch side (runners, rounds, memory), imported only when
timing starts.
"""

from __future__ import annotations

from senet_cli.profile.api import profile, time_modules
from senet_cli.profile.results import BatchResult, LatencyStats, Measurement, ProfileReport, StageCost
from senet_cli.profile.timing import MODES, Timing
from senet_cli.vocabulary import DTYPES

__all__ = [
    "DTYPES", "MODES", "BatchResult", "LatencyStats", "Measurement", "ProfileReport", "StageCost", "Timing",
    "profile", "time_modules",
]
