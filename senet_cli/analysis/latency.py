"""`profile()`: latency, throughput and peak memory of a model against its plain backbone.

Method (also in README):
- Models are built with random weights on the device, put in eval mode and, for inference, run
  under `torch.inference_mode()`; `mode="train"` times a full step: forward, cross-entropy on
  random labels, backward and an SGD step.
- Each model gets `warmup` untimed runs first (at least 3 more with `compile=True`, whose first
  calls compile).
- The model, its baseline and any per-stage ablations are then timed round-robin, one run each per
  round, so drift of the machine (clocks, other load) hits all of them alike. On CUDA the device is
  synchronised before each host clock read, so a sample is the whole run on the GPU, launch
  overhead included; cuDNN autotuning (`torch.backends.cudnn.benchmark`) is on while timing, as in
  timm's benchmark script, and PyTorch's default TF32 setting for convolutions is left as it is.
- A sample is one run's wall time; the report gives median, p10, p90 (linear interpolation between
  order statistics), min and mean in milliseconds. Throughput = batch / median, in images/s.
  overhead_pct = (median_model - median_baseline) / median_baseline x 100.
- Peak memory: on CUDA, allocator memory (not the driver's reserve) of one run of each model: its
  parameters and buffers, the input batch, and the rise of `torch.cuda.max_memory_allocated` over
  what was allocated before the run (activations, workspaces, gradients in training). The other
  models on the GPU at the same time are not charged to it. On CPU, the process's
  peak resident set size (ru_maxrss) at the end of the batch: shared by model and baseline, and
  monotonic over the process.
- Per-stage attribution (`per_stage=True`): for each stage with attention, the same model with that
  stage's attention removed is timed in the same rounds; the stage's cost is the difference of
  medians. Limits: differences of two noisy medians, and the stage costs need not add up to the
  total overhead (caches and kernel choices interact); no per-module synchronisation is used, so
  the absolute numbers are not distorted.

`time_modules()` exposes the same harness for any modules (timm's, torchvision's, your own), so a
comparison with models outside the zoo is timed the same way (benchmarks/profile_cuda.py uses it).
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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


@dataclass(frozen=True)
class Timing:
    """How to run and time: what `profile()` and `time_modules()` share."""

    device: torch.device
    dtype: torch.dtype = torch.float32
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    mode: str = "inference"
    warmup: int = 10
    iters: int | None = 30  # None: time until min_time
    min_time: float | None = None


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
    timing = _timing(device=device, batches=batches, warmup=warmup, iters=iters, min_time=min_time, dtype=dtype,
                     amp=amp, channels_last=channels_last, compile=compile, mode=mode, threads=threads)
    height, width = input_shape(config, input_size, 1)[2:]

    configs = {"model": config}
    if config.attention is not None:
        configs["baseline"] = baseline_config(config)
        if per_stage and len(config.stages) > 1:  # with one stage, its ablation is the baseline
            for stage in config.stages:
                kept = tuple(s for s in config.stages if s != stage)
                configs[f"stage{stage}"] = replace(config, stages=kept)
    runners = {key: _Runner.prepare(c.name, build_from_config(c), timing) for key, c in configs.items()}

    results = []
    with _cudnn_autotuning(timing.device):
        for batch in batches:
            try:
                measured = _time_runners(runners, batch, (height, width), timing, config.num_classes, on_round)
                results.append(_batch_result(config, batch, measured, per_stage))
            except torch.cuda.OutOfMemoryError:
                results.append(BatchResult(batch, None, None, None, error="out of memory"))
            except (RuntimeError, ValueError) as error:
                if "out of memory" not in str(error).lower():
                    # e.g. Inception's aux classifier on a small training input, BAM's BatchNorm1d at batch 1
                    raise SenetError(f"{config.name} cannot run a {mode} step on {height}x{width} input at batch "
                                     f"{batch}: {first_line(error)}") from None
                results.append(BatchResult(batch, None, None, None, error="out of memory"))
            finally:
                if timing.device.type == "cuda":
                    torch.cuda.empty_cache()
    return ProfileReport(config, timing.device.type, dtype, amp, mode, (height, width), torch.get_num_threads(),
                         channels_last, compile, _memory_note(timing.device), tuple(results))


def time_modules(
    modules: Mapping[str, nn.Module],
    *,
    batch: int = 1,
    input_size: tuple[int, int] = (224, 224),
    num_classes: int = 1000,
    device: str = "cpu",
    warmup: int = 10,
    iters: int | None = None,
    min_time: float | None = None,
    dtype: str = "float32",
    amp: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    mode: str = "inference",
    threads: int | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> dict[str, Measurement]:
    """Time any modules (yours, timm's, torchvision's) with `profile()`'s harness, interleaved.

    The harness `senet profile` uses, for models that are not in the zoo: each module is moved to
    the device and dtype in place, warmed up, then timed round-robin with the others on one input
    of `batch` x 3 x input_size. Returns one Measurement per key, in the order given. Out-of-memory
    errors propagate.
    """
    timing = _timing(device=device, batches=(batch,), warmup=warmup, iters=iters, min_time=min_time, dtype=dtype,
                     amp=amp, channels_last=channels_last, compile=compile, mode=mode, threads=threads)
    runners = {key: _Runner.prepare(key, module, timing) for key, module in modules.items()}
    with _cudnn_autotuning(timing.device):
        return _time_runners(runners, batch, tuple(input_size), timing, num_classes, on_round)


def _timing(*, device: str, batches: Sequence[int], warmup: int, iters: int | None, min_time: float | None,
            dtype: str, amp: bool, channels_last: bool, compile: bool, mode: str, threads: int | None) -> Timing:
    target = resolve_device(device)
    check_timing(batches=batches, warmup=warmup, iters=iters, min_time=min_time, dtype=dtype, amp=amp,
                 mode=mode, threads=threads)
    if threads is not None:
        torch.set_num_threads(threads)
    runs = iters if iters is not None else (None if min_time is not None else 30)
    return Timing(target, DTYPES[dtype], amp, channels_last, compile, mode,
                  warmup + (3 if compile else 0), runs, min_time)


def _memory_note(device: torch.device) -> str:
    if device.type == "cuda":
        return "CUDA allocator: the model's weights and input plus the peak one run allocates (max_memory_allocated)"
    return "process peak resident set size (ru_maxrss) so far, shared by model and baseline"


@contextmanager
def _cudnn_autotuning(device: torch.device) -> Iterator[None]:
    """On CUDA, let cuDNN pick the fastest kernels during warm-up, as timm's benchmark does."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


@dataclass
class _Runner:
    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer | None

    @classmethod
    def prepare(cls, name: str, model: nn.Module, timing: Timing) -> _Runner:
        model = model.to(device=timing.device, dtype=timing.dtype)
        if timing.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model.train(timing.mode == "train")
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3) if timing.mode == "train" else None
        return cls(name, torch.compile(model) if timing.compile else model, optimizer)


def _time_runners(runners: Mapping[str, _Runner], batch: int, size: tuple[int, int], timing: Timing,
                  num_classes: int, on_round: Callable[[int, int], None] | None) -> dict[str, Measurement]:
    device = timing.device
    x = torch.randn(batch, 3, *size, device=device, dtype=timing.dtype)
    if timing.channels_last:
        x = x.to(memory_format=torch.channels_last)
    labels = torch.randint(0, num_classes, (batch,), device=device)
    steps = {key: _step_fn(runner, x, labels, timing.mode, timing.amp, device) for key, runner in runners.items()}
    peaks: dict[str, float | None] = {}
    for key, step in steps.items():
        for _ in range(timing.warmup):
            step()
        peaks[key] = _peak_memory(step, device, runners[key].module, x)
    samples: dict[str, list[float]] = {key: [] for key in steps}
    order = list(steps)
    done = 0
    while True:
        for key in order:
            samples[key].append(_timed(steps[key], device))
        order.reverse()  # alternate who goes first, so neither always follows the other
        done += 1
        if on_round:
            on_round(done, timing.iters or 0)
        if timing.iters is not None and done >= timing.iters:
            break
        if timing.iters is None and done >= 5 and min(sum(s) for s in samples.values()) >= timing.min_time:
            break
    if device.type == "cpu":
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        peaks = {key: rss for key in peaks}
    return {
        key: Measurement(runners[key].name, stats := LatencyStats.from_samples(s), batch / stats.median * 1000.0,
                         peaks[key], len(s))
        for key, s in samples.items()
    }


def _batch_result(config: ModelConfig, batch: int, measured: Mapping[str, Measurement], per_stage: bool) -> BatchResult:
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


def _peak_memory(step: Callable[[], None], device: torch.device, module: nn.Module, x: torch.Tensor) -> float | None:
    """MiB one run of `module` needs on CUDA: its weights, the input `x`, and what the run allocates
    on top of what was there.

    Several models sit on the GPU at once (model, baseline, ablations), so the raw
    max_memory_allocated would charge each with all of them; this charges each with its own
    weights and the input and the peak its run adds (activations, workspaces).
    """
    if device.type != "cuda":
        return None
    resident_bytes = _tensor_bytes(module.parameters()) + _tensor_bytes(module.buffers()) + _tensor_bytes([x])
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before + resident_bytes) / 2**20


def _tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)
