"""The timing harness behind `profile()` and `time_modules()`: runners, interleaved rounds, memory.

Each model is moved to the device and dtype, warmed up, then timed round-robin with the others,
one run each per round, so drift of the machine hits all of them alike (the method is in
profile/api.py's module doc and the README).
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from senet_cli.profile.pages import PAGE_BYTES, minor_faults
from senet_cli.profile.probe import SpeedProbe
from senet_cli.profile.results import LatencyStats, Measurement
from senet_cli.profile.timing import Timing
from senet_cli.vocabulary import torch_dtype
from senet_cli.zoo import resolve_device


def prepare(timing: Timing) -> torch.device:
    """The device `timing` names (refused when torch cannot see it), with its thread count applied."""
    device = resolve_device(timing.device)
    if timing.threads is not None:
        torch.set_num_threads(timing.threads)
    return device


def time_modules(modules: Mapping[str, nn.Module], batch: int, size: tuple[int, ...], timing: Timing,
                 num_classes: int, on_round: Callable[[int, int], None] | None,
                 probe: SpeedProbe | None = None) -> dict[str, Measurement]:
    """Prepare `modules` (moved to the device in place) and time them interleaved at one batch size."""
    device = prepare(timing)
    runners = {key: Runner.prepare(key, module, timing, device) for key, module in modules.items()}
    with cudnn_autotuning(device):
        return time_runners(runners, batch, size, timing, device, num_classes, on_round, probe)


def memory_note(device: torch.device) -> str:
    """What peak_memory_mb measures on `device`."""
    if device.type == "cuda":
        return "CUDA allocator: the model's weights and input plus the peak one run allocates (max_memory_allocated)"
    return "process peak resident set size (ru_maxrss) so far, shared by model and baseline"


@contextmanager
def cudnn_autotuning(device: torch.device) -> Iterator[None]:
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
class Runner:
    """A model ready to time: on the device, in the mode, compiled if asked, with its optimizer."""

    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer | None

    @classmethod
    def prepare(cls, name: str, model: nn.Module, timing: Timing, device: torch.device) -> Runner:
        model = model.to(device=device, dtype=torch_dtype(timing.dtype))
        if timing.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model.train(timing.mode == "train")
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3) if timing.mode == "train" else None
        if timing.compile:
            compiled = torch.compile(model)
            assert isinstance(compiled, nn.Module)  # torch.compile wraps a module in an OptimizedModule
            model = compiled
        return cls(name, model, optimizer)


@contextmanager
def denormals_flushed(flush: bool) -> Iterator[None]:
    """With `flush`, denormal floats read and written as zero inside (CPU; torch.set_flush_denormal),
    then torch's default (kept) again."""
    if not flush:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def denormal_modules(model: nn.Module, size: tuple[int, ...], timing: Timing, device: torch.device,
                     batch: int = 1) -> list[str]:
    """The modules of `model` that make denormal floats (nonzero, below the dtype's smallest normal)
    in one inference pass at `batch`: an output holds some and no input did (a ReLU or a view that
    passes them on is not named; a container whose output is its last child's is not named twice).
    The ops reading them run several times slower on a CPU."""

    def denormal(value: object) -> bool:
        values = value if isinstance(value, (tuple, list)) else (value,)
        return any(isinstance(t, torch.Tensor) and t.is_floating_point()
                   and bool(((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).any()) for t in values)

    found: list[str] = []

    def check(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if denormal(output) and not denormal(inputs) and not any(
                    other.startswith(name + ".") for other in found):  # a container of a maker made none itself
                found.append(name)
        return hook

    handles = [module.register_forward_hook(check(name)) for name, module in model.named_modules() if name]
    x = torch.randn(batch, 3, *size, device=device, dtype=torch_dtype(timing.dtype))
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return found


def time_runners(runners: Mapping[str, Runner], batch: int, size: tuple[int, ...], timing: Timing,
                 device: torch.device, num_classes: int,
                 on_round: Callable[[int, int], None] | None,
                 probe: SpeedProbe | None = None) -> dict[str, Measurement]:
    """Warm each runner up, then time all of them round-robin until `timing` says stop (denormals
    flushed to zero throughout when `timing.flush_denormal`); with a `probe`, it is measured once
    after each round (profile/probe.py: the machine's speed over the same minutes)."""
    with denormals_flushed(timing.flush_denormal and device.type == "cpu"):
        return _time_runners(runners, batch, size, timing, device, num_classes, on_round, probe)


def _time_runners(runners: Mapping[str, Runner], batch: int, size: tuple[int, ...], timing: Timing,
                  device: torch.device, num_classes: int,
                  on_round: Callable[[int, int], None] | None, probe: SpeedProbe | None) -> dict[str, Measurement]:
    x = torch.randn(batch, 3, *size, device=device, dtype=torch_dtype(timing.dtype))
    if timing.channels_last:
        x = x.to(memory_format=torch.channels_last)
    labels = torch.randint(0, num_classes, (batch,), device=device)
    steps = {key: _step_fn(runner, x, labels, timing.mode, timing.amp, device) for key, runner in runners.items()}
    peaks: dict[str, float | None] = {}
    for key, step in steps.items():
        for _ in range(timing.warmup_runs):
            step()
        peaks[key] = _peak_memory(step, device, runners[key].module, x)
    samples: dict[str, list[float]] = {key: [] for key in steps}
    faulted: dict[str, list[int]] = {key: [] for key in steps}  # minor page faults of each timed call (CPU)
    count_faults = device.type == "cpu" and minor_faults() is not None
    order = list(steps)
    runs, min_time = timing.runs, timing.min_time  # exactly one is set (Timing checks it)
    done = 0
    while True:
        for key in order:
            before = minor_faults() if count_faults else None
            samples[key].append(_timed(steps[key], device))
            if before is not None:
                faulted[key].append((minor_faults() or 0) - before)
        order.reverse()  # alternate who goes first, so neither always follows the other
        if probe is not None:
            probe.measure()
        done += 1
        if on_round:
            on_round(done, runs or 0)
        if runs is not None and done >= runs:
            break
        if min_time is not None and done >= 5 and min(sum(s) for s in samples.values()) >= min_time:
            break
    if device.type == "cpu":
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        peaks = {key: rss for key in peaks}
    return {
        key: Measurement(runners[key].name, stats := LatencyStats.from_samples(s), batch / stats.median * 1000.0,
                         peaks[key], len(s),
                         statistics.median(faulted[key]) * PAGE_BYTES / 2**20 if faulted[key] else None)
        for key, s in samples.items()
    }


def _step_fn(runner: Runner, x: torch.Tensor, labels: torch.Tensor, mode: str, amp: bool,
             device: torch.device) -> Callable[[], None]:
    autocast_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=autocast_dtype, enabled=amp)

    if mode == "inference":
        def step() -> None:
            with torch.inference_mode(), autocast():
                runner.module(x)
    else:
        loss_fn = nn.CrossEntropyLoss()
        optimizer = runner.optimizer
        assert optimizer is not None  # Runner.prepare makes one whenever the mode is "train"

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                out = runner.module(x)
                logits = out[0] if isinstance(out, tuple) else out  # Inception v3 adds aux logits in training
                loss = loss_fn(logits.float(), labels)
            loss.backward()
            optimizer.step()
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
