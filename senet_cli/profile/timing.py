"""`Timing`: how `profile()` and `time_modules()` run and time models, checked once when made."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from senet_cli.errors import ArgumentError, UnknownChoiceError
from senet_cli.vocabulary import DEVICES, DTYPES

MODES = ("inference", "train")
"""inference: eval mode under torch.inference_mode(); train: forward, cross-entropy, backward, SGD step."""
DEFAULT_ITERS = 30
MAX_THREADS_PER_CORE = 4
"""`threads` is at most this many per CPU core: oversubscription is a choice to measure, tens of
thousands of threads a mistake OpenMP answers with a segfault."""
COMPILE_WARMUP = 3  # extra untimed runs with compile=True: the first calls compile


@dataclass(frozen=True)
class Timing:
    """How to run and time, shared by `profile()`, `time_modules()` and `senet profile`.

    device: "cpu" or "cuda"; dtype: a DTYPES name; amp: a float32 model under autocast (float16 on
    CUDA, bfloat16 on CPU); channels_last: NHWC memory format; compile: torch.compile every model;
    mode: a MODES name; warmup: untimed runs per model first; iters: timed runs per model (30 when
    neither it nor min_time is given); min_time: instead of iters, time until every model has run
    this many seconds (and at least 5 times); threads: CPU threads (torch.set_num_threads), or
    torch's default; flush_denormal: on a CPU, treat denormal floats as zero while timing
    (torch.set_flush_denormal): random weights can make a softmax or sigmoid underflow into
    denormals, which x86 CPUs compute several times slower (GC's context pooling: 4x). Every value
    is checked here, once.
    """

    device: str = "cpu"
    dtype: str = "float32"
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    mode: str = "inference"
    warmup: int = 10
    iters: int | None = None
    min_time: float | None = None
    threads: int | None = None
    flush_denormal: bool = False

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise UnknownChoiceError("device", self.device, DEVICES)
        if self.dtype not in DTYPES:
            raise UnknownChoiceError("dtype", self.dtype, DTYPES)
        if self.amp and self.dtype != "float32":
            raise ArgumentError("{amp} runs a float32 model under autocast; do not combine it with {dtype}",
                                arguments={"amp": ("amp", True), "dtype": "dtype"})
        if self.mode not in MODES:
            raise UnknownChoiceError("mode", self.mode, MODES)
        _at_least("warmup", self.warmup, 0)
        if self.iters is not None:
            _at_least("iters", self.iters, 1)
        if self.iters is not None and self.min_time is not None:
            raise ArgumentError("give {iters} or {min_time}, not both", arguments=("iters", "min_time"))
        if self.min_time is not None and not self.min_time > 0:
            raise ArgumentError("{min_time} must be positive, got {value}", arguments=("min_time",),
                                value=self.min_time)
        if self.threads is not None:
            _at_least("threads", self.threads, 1)
            most = MAX_THREADS_PER_CORE * (os.cpu_count() or 1)
            if self.threads > most:  # OpenMP crashes (SIGSEGV) when it cannot start tens of thousands
                raise ArgumentError("{threads} must be between 1 and {most} ({per} per CPU core here), got {value}",
                                    arguments=("threads",), most=most, per=MAX_THREADS_PER_CORE, value=self.threads)

    @property
    def runs(self) -> int | None:
        """Timed runs per model, or None to time until `min_time`."""
        if self.iters is not None:
            return self.iters
        return None if self.min_time is not None else DEFAULT_ITERS

    @property
    def warmup_runs(self) -> int:
        """Untimed runs per model, with the extra ones torch.compile needs."""
        return self.warmup + (COMPILE_WARMUP if self.compile else 0)

    @classmethod
    def take(cls, timing: Timing | None, options: Mapping[str, Any]) -> tuple[Timing, dict[str, Any]]:
        """Split keyword arguments into a Timing (built on `timing`, if given) and the rest.

        How `profile("se_resnet50", iters=20, ratio=8)` reads: `iters` is timing, `ratio` a build option.
        """
        names = {field.name for field in fields(cls)}
        given = {key: value for key, value in options.items() if key in names}
        rest = {key: value for key, value in options.items() if key not in names}
        return (replace(timing, **given) if timing is not None else cls(**given)), rest


def _at_least(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        word = "0 or more" if minimum == 0 else f"at least {minimum}"
        raise ArgumentError(f"{{{name}}} must be {word}, got {{value}}", arguments=(name,), value=value)
