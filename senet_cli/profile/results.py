"""What `profile()` and `time_modules()` return, as frozen dataclasses; `ProfileReport.to_dict()` is
the JSON contract."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from senet_cli.count.latency import FIGURE_KEYS
from senet_cli.count.roofline import DevicePeaks
from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.profile.timing import Timing

NOISY_SPREAD_PCT = 25.0
"""A measurement is noisy when its p10-p90 range is wider than this percentage of its median..."""
NOISY_DRIFT_PCT = 10.0
"""...or when the median of its later half of rounds differs from the earlier half's by more than this
percentage of the median (the machine changed speed during the run: load, clocks, thermals). Either
makes an overhead of a few percent unresolvable; the thresholds sit well above what a quiet machine
shows (a few percent on a GPU, under 15% on a CPU) and well below the spreads seen under load."""
SPEED_NOTE = "the machine's speed moved"
"""How profile's note on the speed probe begins (its table shows that note after the one that says
what "predicted" is)."""


@dataclass(frozen=True)
class LatencyStats:
    """Per-run wall time in milliseconds; drift_pct: (median of the later half of the runs - median of
    the earlier half) / median x 100, runs in the order they were timed (0 with fewer than 4 runs)."""

    median: float
    p10: float
    p90: float
    min: float
    mean: float
    drift_pct: float = 0.0

    @classmethod
    def from_samples(cls, seconds: Sequence[float]) -> LatencyStats:
        """Statistics of per-run times in seconds, given in the order they were timed."""
        import numpy

        in_order = [s * 1000.0 for s in seconds]
        ms = sorted(in_order)
        p10, p90 = (float(q) for q in numpy.percentile(ms, (10, 90)))  # linear interpolation
        median = statistics.median(ms)
        drift = 0.0
        if len(in_order) >= 4 and median > 0:
            half = len(in_order) // 2
            drift = (statistics.median(in_order[-half:]) - statistics.median(in_order[:half])) / median * 100.0
        return cls(median, p10, p90, ms[0], statistics.fmean(ms), drift)

    @property
    def spread_pct(self) -> float:
        """The p10-p90 range as a percentage of the median."""
        return (self.p90 - self.p10) / self.median * 100.0 if self.median > 0 else 0.0

    @property
    def noisy(self) -> bool:
        """True when the spread or the drift exceeds NOISY_SPREAD_PCT or NOISY_DRIFT_PCT."""
        return self.spread_pct > NOISY_SPREAD_PCT or abs(self.drift_pct) > NOISY_DRIFT_PCT


@dataclass(frozen=True)
class Measurement:
    """One model's timing at one batch size."""

    model: str
    latency_ms: LatencyStats
    throughput: float  # images per second, batch / median
    peak_memory_mb: float | None  # MiB (2^20 bytes)
    iterations: int
    page_faults_mib: float | None = None  # MiB of memory first touched (minor page faults x the page size) per
    # timed call, the median over the calls (None: a GPU, or a platform that counts none)


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
    roofline_ms: float | None = None  # count's roofline bound of the model at this batch
    baseline_roofline_ms: float | None = None
    predicted_ms: float | None = None  # count's prediction on a calibrated device (count/latency.py)
    baseline_predicted_ms: float | None = None
    probe_ratio: float | None = None  # the speed probe's median over these rounds / at calibration (>1: slower now)

    @property
    def noisy(self) -> bool:
        """True when the model's or the baseline's timing is noisy (LatencyStats.noisy)."""
        return any(m is not None and m.latency_ms.noisy for m in (self.model, self.baseline))

    @property
    def over_bound(self) -> float | None:
        """Measured median / roofline bound: how many times the bound the model took."""
        if self.model is None or not self.roofline_ms:
            return None
        return self.model.latency_ms.median / self.roofline_ms

    @property
    def over_predicted(self) -> float | None:
        """Measured median / predicted time (1.0: the latency model was exact)."""
        if self.model is None or not self.predicted_ms:
            return None
        return self.model.latency_ms.median / self.predicted_ms

    @property
    def predicted_at_probe_speed_ms(self) -> float | None:
        """The prediction at the speed the machine ran the probe at during these rounds: predicted x
        probe_ratio (the model's rates, all scaled alike by the machine's shift since calibrating)."""
        if self.predicted_ms is None or self.probe_ratio is None:
            return None
        return self.predicted_ms * self.probe_ratio

    @property
    def over_predicted_at_probe_speed(self) -> float | None:
        """Measured median / the prediction at the probe's speed."""
        adjusted = self.predicted_at_probe_speed_ms
        if self.model is None or not adjusted:
            return None
        return self.model.latency_ms.median / adjusted

    @property
    def roofline_overhead_pct(self) -> float | None:
        """The attention overhead of the roofline bound, in % of the baseline's bound (count's
        `roofline.overhead_pct` at this batch)."""
        if self.roofline_ms is None or not self.baseline_roofline_ms:
            return None
        return (self.roofline_ms - self.baseline_roofline_ms) / self.baseline_roofline_ms * 100.0

    @property
    def predicted_overhead_pct(self) -> float | None:
        """The attention overhead the latency model predicts, in % of the baseline's predicted time."""
        if self.predicted_ms is None or not self.baseline_predicted_ms:
            return None
        return (self.predicted_ms - self.baseline_predicted_ms) / self.baseline_predicted_ms * 100.0


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
    roofline: DevicePeaks | None = None  # the device the bounds are for, when there are bounds

    @property
    def model(self) -> str:
        return self.config.name

    def to_dict(self) -> dict[str, Any]:
        def measurement(m: Measurement | None) -> dict[str, Any] | None:
            if m is None:
                return None
            return {
                "model": m.model, "latency_ms": vars(m.latency_ms).copy(), "throughput": m.throughput,
                "peak_memory_mb": m.peak_memory_mb, "iterations": m.iterations, "noisy": m.latency_ms.noisy,
                "page_faults_mib": m.page_faults_mib,
            }

        results = []
        for r in self.results:
            entry = {"batch": r.batch, **(measurement(r.model) or {"latency_ms": None, "throughput": None,
                                                                    "peak_memory_mb": None, "page_faults_mib": None})}
            entry.pop("model", None)
            entry["baseline"] = measurement(r.baseline)
            entry["overhead_pct"] = r.overhead_pct
            entry["noisy"] = r.noisy
            if self.roofline is not None:
                entry["roofline_ms"] = r.roofline_ms
                entry["baseline_roofline_ms"] = r.baseline_roofline_ms
                entry["roofline_overhead_pct"] = r.roofline_overhead_pct
                entry["measured_over_bound"] = r.over_bound
                if self.roofline.calibration is not None:
                    entry["predicted_ms"] = r.predicted_ms
                    entry["baseline_predicted_ms"] = r.baseline_predicted_ms
                    entry["predicted_overhead_pct"] = r.predicted_overhead_pct
                    entry["measured_over_predicted"] = r.over_predicted
                    entry["probe_ratio"] = r.probe_ratio
                    entry["predicted_at_probe_speed_ms"] = r.predicted_at_probe_speed_ms
                    entry["measured_over_predicted_at_probe_speed"] = r.over_predicted_at_probe_speed
            if r.per_stage:
                entry["per_stage"] = [vars(s).copy() for s in r.per_stage]
            if r.error:
                entry["error"] = r.error
            results.append(entry)
        timing = self.timing
        return {
            "model": self.model, "device": timing.device, "dtype": timing.dtype, "amp": timing.amp,
            "mode": timing.mode, "input": list(self.input), "threads": self.threads,
            "channels_last": timing.channels_last, "compiled": timing.compile, "flush_denormal": timing.flush_denormal,
            "memory": self.memory, "options": self.config.as_dict(), "results": results,
            **({"notes": list(self.notes)} if self.notes else {}),
            "noisy_thresholds": {"spread_pct": NOISY_SPREAD_PCT, "drift_pct": NOISY_DRIFT_PCT},
            "roofline": None if self.roofline is None else {
                "device": self.roofline.name, "peak_tflops": self.roofline.peak_tflops(timing.dtype, timing.amp),
                "bandwidth_gbs": self.roofline.bandwidth_gbs, "source": self.roofline.source,
                "calibrated": self.roofline.calibration is not None,
                "probe_us": None if self.roofline.calibration is None else self.roofline.calibration.probe_us or None,
                **(dict.fromkeys(FIGURE_KEYS) if self.roofline.calibration is None
                   else self.roofline.calibration.figures()),
            },
        }
