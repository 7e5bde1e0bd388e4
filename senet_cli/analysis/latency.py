"""`profile()`: latency, throughput and peak memory of a model against its plain backbone.

Method (also in README):
- Models are built with random weights on the device, put in eval mode and, for inference, run
  under `torch.inference_mode()`; `mode="train"` times a full step: forward, cross-entropy on
  random labels, backward and an SGD step.
- Each model gets `warmup` untimed runs first (at least 3 more with `compile=True`, whose first
  calls compile).
- The model, its baseline and any per-stage ablations are then timed round-robin, one run each per
  round, so drift of the machine (clocks, other load) hits all of them alike. On CUDA the device is
  synchronised before each host clock read, so a sample is the whole run on the GPU.
- A sample is one run's wall time; the report gives median, p10, p90 (linear interpolation between
  order statistics), min and mean in milliseconds. Throughput = batch / median, in images/s.
  overhead_pct = (median_model - median_baseline) / median_baseline x 100.
- Peak memory: on CUDA, `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`, over one
  run of each model on its own (allocator memory, not the driver's reserve). On CPU, the process's
  peak resident set size (ru_maxrss) at the end of the batch: shared by model and baseline, and
  monotonic over the process.
- Per-stage attribution (`per_stage=True`): for each stage with attention, the same model with that
  stage's attention removed is timed in the same rounds; the stage's cost is the difference of
  medians. Limits: differences of two noisy medians, and the stage costs need not add up to the
  total overhead (caches and kernel choices interact); no per-module synchronisation is used, so
  the absolute numbers are not distorted.
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from senet_cli.analysis.report import input_shape
from senet_cli.errors import SenetError, first_line
from senet_cli.options import ModelConfig
from senet_cli.zoo import baseline_config, build_from_config, make_config

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MODES = ("inference", "train")


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
        ms = sorted(s * 1000.0 for s in seconds)
        return cls(statistics.median(ms), percentile(ms, 10), percentile(ms, 90), ms[0], statistics.fmean(ms))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """q-th percentile with linear interpolation between order statistics (numpy's default)."""
    position = (len(sorted_values) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@dataclass(frozen=True)
class Measurement:
    model: str
    latency_ms: LatencyStats
    throughput: float  # images per second, batch / median
    peak_memory_mb: float | None
    iterations: int


@dataclass(frozen=True)
class StageCost:
    """Latency attributed to one stage's attention by ablation."""

    stage: int
    attention_ms: float
    attention_pct: float  # of the full model's median


@dataclass(frozen=True)
class BatchResult:
    batch: int
    model: Measurement | None
    baseline: Measurement | None
    overhead_pct: float | None
    per_stage: tuple[StageCost, ...] = ()
    error: str | None = None  # e.g. "out of memory": this batch was skipped, the sweep went on


@dataclass(frozen=True)
class ProfileReport:
    config: ModelConfig
    device: str
    dtype: str
    amp: bool
    mode: str
    input: tuple[int, int]
    threads: int
    channels_last: bool
    compiled: bool
    memory: str  # what peak_memory_mb measures
    results: tuple[BatchResult, ...]

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
        return {
            "model": self.model, "device": self.device, "dtype": self.dtype, "amp": self.amp,
            "mode": self.mode, "input": list(self.input), "threads": self.threads,
            "channels_last": self.channels_last, "compiled": self.compiled,
            "memory": self.memory, "options": self.config.as_dict(), "results": results,
        }


def resolve_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        built = torch.version.cuda or "none"
        raise SenetError(f"--device cuda asked for, but no CUDA device is visible (torch built with CUDA {built}); use --device cpu")
    if device not in ("cpu", "cuda"):
        raise SenetError(f"unknown device '{device}'; accepted: cpu, cuda")
    return torch.device(device)


def check_timing(
    *, batches: Sequence[int], warmup: int, iters: int | None, min_time: float | None, dtype: str,
    amp: bool, mode: str, threads: int | None,
) -> None:
    """Raise SenetError for timing arguments `profile()` cannot use (the CLI calls it up front)."""
    if dtype not in DTYPES:
        raise SenetError(f"unknown dtype '{dtype}'; accepted: {', '.join(DTYPES)}")
    if amp and dtype != "float32":
        raise SenetError("--amp runs a float32 model under autocast; do not combine it with --dtype")
    if mode not in MODES:
        raise SenetError(f"unknown mode '{mode}'; accepted: {', '.join(MODES)}")
    if warmup < 0:
        raise SenetError(f"warm-up must be 0 or more, got {warmup}")
    if iters is not None and iters < 1:
        raise SenetError(f"iters must be at least 1, got {iters}")
    if iters is not None and min_time is not None:
        raise SenetError("give iters or min-time, not both")
    if min_time is not None and min_time <= 0:
        raise SenetError(f"min-time must be positive, got {min_time}")
    if not batches or any(b < 1 for b in batches):
        raise SenetError(f"batch sizes must be at least 1, got {list(batches)}")
    if threads is not None and threads < 1:
        raise SenetError(f"threads must be at least 1, got {threads}")


def profile(
    model: str,
    *,
    device: str = "cpu",
    batches: Sequence[int] = (1,),
    input_size: int | Sequence[int] | None = None,
    warmup: int = 10,
    iters: int | None = None,
    min_time: float | None = None,
    dtype: str = "float32",
    amp: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    mode: str = "inference",
    per_stage: bool = False,
    threads: int | None = None,
    on_round: Callable[[int, int], None] | None = None,
    **options: Any,
) -> ProfileReport:
    """Time `model` and its plain backbone, interleaved, at each batch size. See the module doc.

    iters: timed runs per model (default 30 unless min_time is given); min_time: keep timing until
    each model has run this many seconds (and at least 5 times). on_round(done, total) reports
    progress per batch.
    """
    config = make_config(model, **options)
    target = resolve_device(device)
    check_timing(batches=batches, warmup=warmup, iters=iters, min_time=min_time, dtype=dtype, amp=amp,
                 mode=mode, threads=threads)
    if threads is not None:
        torch.set_num_threads(threads)
    height, width = input_shape(config, input_size, 1)[2:]
    runs = iters if iters is not None else (None if min_time is not None else 30)

    configs = {"model": config}
    if config.attention is not None:
        configs["baseline"] = baseline_config(config)
        if per_stage and len(config.stages) > 1:  # with one stage, its ablation is the baseline
            for stage in config.stages:
                kept = tuple(s for s in config.stages if s != stage)
                configs[f"stage{stage}"] = replace(config, stages=kept)
    prepared = {key: _prepare(c, target, DTYPES[dtype], channels_last, compile, mode) for key, c in configs.items()}

    results = []
    for batch in batches:
        try:
            results.append(_measure_batch(config, prepared, batch, (height, width), target, DTYPES[dtype], amp,
                                          channels_last, mode, warmup + (3 if compile else 0), runs, min_time,
                                          on_round, per_stage))
        except torch.cuda.OutOfMemoryError:
            results.append(BatchResult(batch, None, None, None, error="out of memory"))
        except (RuntimeError, ValueError) as error:
            if "out of memory" not in str(error).lower():
                # e.g. Inception's aux classifier on a small training input, BAM's BatchNorm1d at batch 1
                raise SenetError(f"{config.name} cannot run a {mode} step on {height}x{width} input at batch "
                                 f"{batch}: {first_line(error)}") from None
            results.append(BatchResult(batch, None, None, None, error="out of memory"))
        finally:
            if target.type == "cuda":
                torch.cuda.empty_cache()
    memory = ("torch.cuda.max_memory_allocated over one run of each model" if target.type == "cuda"
              else "process peak resident set size (ru_maxrss) so far, shared by model and baseline")
    return ProfileReport(config, target.type, dtype, amp, mode, (height, width), torch.get_num_threads(),
                         channels_last, compile, memory, tuple(results))


@dataclass
class _Runner:
    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer | None


def _prepare(config: ModelConfig, device: torch.device, dtype: torch.dtype, channels_last: bool,
             compile: bool, mode: str) -> _Runner:
    model = build_from_config(config).to(device=device, dtype=dtype)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train(mode == "train")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3) if mode == "train" else None
    module = torch.compile(model) if compile else model
    return _Runner(config.name, module, optimizer)


def _measure_batch(config, prepared, batch, size, device, dtype, amp, channels_last, mode, warmup, runs,
                   min_time, on_round, per_stage) -> BatchResult:
    x = torch.randn(batch, 3, *size, device=device, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    labels = torch.randint(0, config.num_classes, (batch,), device=device)
    steps = {key: _step_fn(runner, x, labels, mode, amp, device) for key, runner in prepared.items()}
    peaks: dict[str, float | None] = {}
    for key, step in steps.items():
        for _ in range(warmup):
            step()
        peaks[key] = _peak_memory(step, device)
    samples: dict[str, list[float]] = {key: [] for key in steps}
    order = list(steps)
    done = 0
    total = runs if runs is not None else 0
    while True:
        for key in order:
            samples[key].append(_timed(steps[key], device))
        order.reverse()  # alternate who goes first, so neither always follows the other
        done += 1
        if on_round:
            on_round(done, total)
        if runs is not None and done >= runs:
            break
        if runs is None and done >= 5 and min(sum(s) for s in samples.values()) >= min_time:
            break
    if device.type == "cpu":
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        peaks = {key: rss for key in peaks}
    measured = {
        key: Measurement(prepared[key].name, stats := LatencyStats.from_samples(s), batch / stats.median * 1000.0,
                         peaks[key], len(s))
        for key, s in samples.items()
    }
    model = measured["model"]
    baseline = measured.get("baseline")
    overhead = None
    if baseline is not None:
        overhead = (model.latency_ms.median - baseline.latency_ms.median) / baseline.latency_ms.median * 100.0
    ablations = {int(key[5:]): m for key, m in measured.items() if key.startswith("stage")}
    if per_stage and baseline is not None and not ablations:
        ablations = {config.stages[0]: baseline}  # one stage with attention: removing it is the baseline
    costs = tuple(
        StageCost(stage, model.latency_ms.median - m.latency_ms.median,
                  (model.latency_ms.median - m.latency_ms.median) / model.latency_ms.median * 100.0)
        for stage, m in ablations.items()
    )
    return BatchResult(batch, model, baseline, overhead, costs)


def _step_fn(runner: _Runner, x, labels, mode: str, amp: bool, device: torch.device) -> Callable[[], None]:
    autocast_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def autocast():
        return torch.autocast(device.type, dtype=autocast_dtype, enabled=amp)

    if mode == "inference":
        def step() -> None:
            with torch.inference_mode(), autocast():
                runner.module(x)
    else:
        loss_fn = nn.CrossEntropyLoss()

        def step() -> None:
            runner.optimizer.zero_grad(set_to_none=True)
            with autocast():
                out = runner.module(x)
                logits = out[0] if isinstance(out, tuple) else out  # Inception v3 adds aux logits in training
                loss = loss_fn(logits.float(), labels)
            loss.backward()
            runner.optimizer.step()
    return step


def _timed(step: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _peak_memory(step: Callable[[], None], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20
