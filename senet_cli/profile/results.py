"""What `profile()` and `time_modules()` return, as frozen dataclasses; `ProfileReport.to_dict()` is
the JSON contract."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.profile.timing import Timing


@dataclass(frozen=True)
class LatencyStats:
    """Per-run wall time in milliseconds."""

    median: float
    p10: float
    p90: float
    min: float
    mean: float

    @classmethod
    def from_samples(cls, seconds: Sequence[float]) -> LatencyStats:
        import numpy

        ms = sorted(s * 1000.0 for s in seconds)
        p10, p90 = (float(q) for q in numpy.percentile(ms, (10, 90)))  # linear interpolation
        return cls(statistics.median(ms), p10, p90, ms[0], statistics.fmean(ms))


@dataclass(frozen=True)
class Measurement:
    """One model's timing at one batch size."""

    model: str
    latency_ms: LatencyStats
    throughput: float  # images per second, batch / median
    peak_memory_mb: float | None  # MiB (2^20 bytes)
    iterations: int


@dataclass(frozen=True)
class StageCost:
    """Latency attributed to one stage's attention by ablation."""

    stage: int
    attention_ms: float
    attention_pct: float  # of the full model's median


@dataclass(frozen=True)
class BatchResult:
    """The model and its baseline at one batch size, or why that batch could not run."""

    batch: int
    model: Measurement | None
    baseline: Measurement | None
    overhead_pct: float | None
    per_stage: tuple[StageCost, ...] = ()
    error: str | None = None  # e.g. "out of memory": this batch was skipped, the sweep went on


@dataclass(frozen=True)
class ProfileReport:
    """What `profile()` measured for one model; `to_dict()` is the JSON contract."""

    config: ModelConfig | ExternalConfig
    timing: Timing
    input: tuple[int, int]
    threads: int  # the CPU threads torch used
    memory: str  # what peak_memory_mb measures
    results: tuple[BatchResult, ...]
    notes: tuple[str, ...] = ()  # a model outside the zoo: the attention found, what the baseline is

    @property
    def model(self) -> str:
        return self.config.name

    def to_dict(self) -> dict[str, Any]:
        def measurement(m: Measurement | None) -> dict[str, Any] | None:
            if m is None:
                return None
            return {
                "model": m.model, "latency_ms": vars(m.latency_ms).copy(), "throughput": m.throughput,
                "peak_memory_mb": m.peak_memory_mb, "iterations": m.iterations,
            }

        results = []
        for r in self.results:
            entry = {"batch": r.batch, **(measurement(r.model) or {"latency_ms": None, "throughput": None,
                                                                    "peak_memory_mb": None})}
            entry.pop("model", None)
            entry["baseline"] = measurement(r.baseline)
            entry["overhead_pct"] = r.overhead_pct
            if r.per_stage:
                entry["per_stage"] = [vars(s).copy() for s in r.per_stage]
            if r.error:
                entry["error"] = r.error
            results.append(entry)
        timing = self.timing
        return {
            "model": self.model, "device": timing.device, "dtype": timing.dtype, "amp": timing.amp,
            "mode": timing.mode, "input": list(self.input), "threads": self.threads,
            "channels_last": timing.channels_last, "compiled": timing.compile,
            "memory": self.memory, "options": self.config.as_dict(), "results": results,
            **({"notes": list(self.notes)} if self.notes else {}),
        }
