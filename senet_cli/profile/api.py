"""`profile()`: latency, throughput and peak memory of a model against its plain backbone.

Method (also in README):
- Models are built with random weights on the device, put in eval mode and, for inference, run
  under `torch.inference_mode()`; `mode="train"` times a full step: forward, cross-entropy on
  random labels, backward and an SGD step.
- Each model gets `warmup` untimed runs first (3 more with `compile=True`, whose first calls compile).
- The model, its baseline and any per-stage ablations are then timed round-robin, one run each per
  round, so drift of the machine (clocks, other load) hits all of them alike. On CUDA the device is
  synchronised before each host clock read, so a sample is the whole run on the GPU, launch
  overhead included; cuDNN autotuning (`torch.backends.cudnn.benchmark`) is on while timing, as in
  timm's benchmark script, and PyTorch's default TF32 setting for convolutions is left as it is.
- A sample is one run's wall time; the report gives median, p10, p90 (numpy's linear
  interpolation between order statistics), min and mean in milliseconds. Throughput = batch /
  median, in images/s. overhead_pct = (median_model - median_baseline) / median_baseline x 100.
- Peak memory: on CUDA, allocator memory (not the driver's reserve) of one run of each model: its
  parameters and buffers, the input batch, and the rise of `torch.cuda.max_memory_allocated` over
  what was allocated before the run (activations, workspaces, gradients in training). The other
  models on the GPU at the same time are not charged to it. On CPU, the process's peak resident
  set size (ru_maxrss) at the end of the batch: shared by model and baseline, and monotonic over
  the process.
- With a `senet calibrate` device file as the roofline (inference, the file's device and thread
  count), the speed probe (probe.py) is timed after each round too: its median / the file's
  `probe_us` is the machine's speed against the calibration's over the same minutes (`probe_ratio`),
  and one note says when it is more than PROBE_TOLERANCE away from 1.
- Per-stage attribution (`per_stage=True`): for each stage with attention, the same model with that
  stage's attention removed is timed in the same rounds; the stage's cost is the difference of
  medians. Limits: differences of two noisy medians, and the stage costs need not add up to the
  total overhead (caches and kernel choices interact); no per-module synchronisation is used, so
  the absolute numbers are not distorted.

`time_modules()` exposes the same harness for any modules (timm's, torchvision's, your own), so a
comparison with models outside the zoo is timed the same way (benchmarks/profile_cuda.py uses it).
The results are in results.py; torch is imported only when timing starts (harness.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from senet_cli.count.latency import DeviceCalibration, setting_text
from senet_cli.count.roofline import DevicePeaks, parse_device, preset_for_gpu
from senet_cli.errors import ArgumentError, SenetError, first_line, is_out_of_memory, running_model
from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.profile.results import SPEED_NOTE, BatchResult, Measurement, ProfileReport, StageCost
from senet_cli.profile.timing import Timing
from senet_cli.prune.source import subject_of
from senet_cli.subject import Subject, input_shape

if TYPE_CHECKING:  # torch is imported when timing starts
    from torch import nn

    from senet_cli.profile.probe import SpeedProbe


def check_batches(batches: Sequence[int]) -> tuple[int, ...]:
    """The batch sizes to sweep, each at least 1."""
    if not batches or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in batches):
        raise ArgumentError("batch sizes must be at least 1, got {value}", arguments=("batches",),
                            value=list(batches))
    return tuple(batches)


def profile(
    model: str | ModelConfig | ExternalConfig | Subject,
    *,
    batches: Sequence[int] = (1,),
    input_size: int | Sequence[int] | None = None,
    per_stage: bool = False,
    timing: Timing | None = None,
    on_round: Callable[[int, int], None] | None = None,
    attention_classes: Sequence[str] = (),
    roofline: str | DevicePeaks | None = "auto",
    **options: Any,
) -> ProfileReport:
    """Time `model` (a zoo name, or a ModelConfig) and its plain backbone, interleaved, at each batch
    size. See the module doc.

    A model outside the zoo (`torchvision:NAME`, `timm:NAME`, `file.py:callable`; see `count()`) is
    timed against a copy of itself whose attention modules (found by class, with the caller's
    `attention_classes`) are replaced by pass-throughs; without such a copy (a module that replaces
    a conv) it is timed alone, and the report's notes say why.

    roofline: a device to put each median next to count's roofline bound for (a preset name,
    "PEAK_TFLOPS,BANDWIDTH_GBS" or a DevicePeaks); "auto": the preset of the GPU the run is on when
    its name is known, else none; None: none. Only for inference (the bound covers a forward pass).

    `timing` says how to run and time (a `Timing`); its fields may also be given as keywords
    (`iters=20`, `device="cuda"`), which override it. The other keywords are build options.
    on_round(done, total) reports progress per batch.
    """
    timing, options = Timing.take(timing, options)
    subject = subject_of(model, options, attention_classes)  # a checkpoint file: its (pruned) architecture
    batches = check_batches(batches)
    height, width = input_shape(subject, input_size, 1)[2:]
    peaks = None if roofline is None or roofline == "auto" else parse_device(roofline)
    if peaks is not None and peaks.calibration is not None and timing.mode == "inference":
        peaks.calibration.check_precision(timing.dtype, timing.amp)  # before any timing, as count does

    import torch

    from senet_cli.profile import harness

    device = harness.prepare(timing)
    built, num_classes, notes, stages = _models(subject, per_stage)
    if roofline == "auto" and device.type == "cuda":
        peaks = preset_for_gpu(torch.cuda.get_device_name(device))
    if timing.mode != "inference" and peaks is not None:
        notes += (f"no bound or prediction in {timing.mode} mode: count's bound and the latency model cover one "
                  "forward pass (inference)",)
        peaks = None
    if device.type == "cpu" and not timing.flush_denormal:  # the model's code runs here first: the same one line
        first = min(batches)
        with running_model(subject.name, f"run {_step('inference')} on {height}x{width} input at batch {first}"):
            made = harness.denormal_modules(built["model"][1], (height, width), timing, device, first)
        notes += _denormal_note(made, first)
    runners = {key: harness.Runner.prepare(name, module, timing, device) for key, (name, module) in built.items()}
    probe = _speed_probe(peaks, timing, device, torch.get_num_threads())
    results = []
    with harness.cudnn_autotuning(device):
        for batch in batches:
            try:
                # e.g. Inception's aux classifier on a small training input, BAM's BatchNorm1d at batch 1, or
                # a model outside the zoo raising anything: one line; running out of memory is the batch's result
                with running_model(subject.name, f"run {_step(timing.mode)} on {height}x{width} input at batch "
                                                 f"{batch}"):
                    if probe is not None:
                        probe.reset()
                    measured = harness.time_runners(runners, batch, (height, width), timing, device, num_classes,
                                                    on_round, probe)
            except (RuntimeError, MemoryError) as error:
                if not is_out_of_memory(error):
                    raise
                results.append(BatchResult(batch, None, None, None, error="out of memory"))
                continue
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            result = _batch_result(stages, batch, measured, per_stage)
            if probe is not None and probe.median_us is not None and peaks is not None and peaks.calibration:
                result = replace(result, probe_ratio=probe.median_us / peaks.calibration.probe_us)
            try:  # the bound is count's, outside the timing: its failure is not the run's
                results.append(_with_bound(result, subject, batch, (height, width), timing, peaks))
            except SenetError as error:
                results.append(result)
                notes += (f"no roofline bound at batch {batch}: {first_line(error)}",)
    notes += _bound_notes(tuple(results), peaks, timing, torch.get_num_threads())
    return ProfileReport(subject.config, timing, (height, width), torch.get_num_threads(), harness.memory_note(device),
                         tuple(results), notes, peaks)


def _speed_probe(peaks: DevicePeaks | None, timing: Timing, device: Any, threads: int) -> SpeedProbe | None:
    """The speed probe to time beside the models (profile/probe.py), when the roofline is a calibration
    that timed it in this run's setting (device and threads) and the run predicts (inference); else None."""
    calibration = None if peaks is None else peaks.calibration
    if (calibration is None or not calibration.probe_us or timing.mode != "inference"
            or calibration.setting != setting_text(device.type, threads)):
        return None
    from senet_cli.profile.probe import SpeedProbe
    from senet_cli.vocabulary import torch_dtype

    return SpeedProbe(device, torch_dtype(timing.dtype))


PROBE_TOLERANCE = 0.10
"""How far the speed probe may run from its calibration-time value (as a fraction) before profile says
the machine's speed has moved: calibrate's own repeat runs agree within about this much."""


def _probe_notes(results: Sequence[BatchResult], calibration: DeviceCalibration | None) -> tuple[str, ...]:
    """One line where the speed probe ran more than PROBE_TOLERANCE slower or faster than while
    calibrating, at some batch: by how much, and the prediction at that speed against the median."""
    timed = [r for r in results if r.probe_ratio is not None]
    if calibration is None or not any(abs(r.probe_ratio - 1) > PROBE_TOLERANCE for r in timed if r.probe_ratio):
        return ()
    from senet_cli.profile.probe import probe_text

    def said(r: BatchResult) -> str:
        ratio = r.probe_ratio
        assert ratio is not None
        adjusted, against = r.predicted_at_probe_speed_ms, r.over_predicted_at_probe_speed
        pace = f"{ratio:.2f}x its time" + (f" ({'slower' if ratio > 1 else 'faster'})"
                                             if abs(ratio - 1) > PROBE_TOLERANCE else "")
        return f"batch {r.batch} {pace}" + (
            f", predicted at that speed {adjusted:.4g} ms, median / that {against:.2f}x"
            if adjusted is not None and against is not None else "")

    return (f"{SPEED_NOTE}: the speed probe ({probe_text(calibration.device)}, timed after each round; "
            f"{calibration.probe_us:,.1f} us while calibrating) ran at {'; '.join(map(said, timed))}. The "
            "predictions are at the calibration's speed; rerun on a quiet machine, and if the probe_ratio stays "
            "away from 1, calibrate again on the machine as it will be used",)


def _denormal_note(modules: Sequence[str], batch: int = 1) -> tuple[str, ...]:
    """One line when some modules' outputs hold denormal floats (CPU): what, where, and the way out."""
    if not modules:
        return ()
    named = ", ".join(modules[:3]) + (f" and {len(modules) - 3} more" if len(modules) > 3 else "")
    return (f"denormal floats made by {len(modules)} module(s) ({named}) at batch {batch}: a CPU computes on "
            "them several times slower, so the ops reading them time slower than with normal values (random "
            "weights make a softmax or sigmoid underflow: GC's context pooling ran 4x slower); the flush-denormal "
            "option times them as zeros",)


def _step(mode: str) -> str:
    """'an inference step', 'a training step': the article the mode's first sound takes."""
    return f"{'an' if mode[:1] in 'aeiou' else 'a'} {mode} step"


def _models(subject: Subject, per_stage: bool) -> tuple[dict[str, tuple[str, nn.Module]], int, tuple[str, ...],
                                                        tuple[int, ...]]:
    """The model, its baseline (the same model without attention: the plain backbone, or the model with
    its attention replaced by pass-throughs) where it has one, and with `per_stage` the model without
    each stage's attention (with one stage, that is the baseline); its classifier width (for training
    labels); what the report says of them; the stages holding attention."""
    model = subject.build()
    found = subject.attention(model)
    built = {"model": (subject.name, model)}
    baseline = subject.baseline(found)
    if baseline is not None:
        built["baseline"] = (baseline.name, baseline.build())
    stages = subject.attention_stages(model, found)
    notes = subject.notes(found, baseline is not None)
    if per_stage and baseline is None and found:
        notes += ("no per-stage cost for any stage: none of its attention has a pass-through",)
    if per_stage and baseline is not None and len(stages) > 1:
        for stage in stages:
            ablation = subject.without_stage(stage, found, model)
            said = subject.stage_note(stage, found, model)
            notes += (said,) if said else ()
            if ablation is None:
                notes += () if said else (f"no per-stage cost for stage {stage}: its attention has no pass-through",)
                continue
            built[f"stage{stage}"] = (ablation.name, ablation.build())
    return built, subject.output_classes(model), notes, stages


def _with_bound(result: BatchResult, subject: Subject, batch: int, size: tuple[int, int],
                timing: Timing, peaks: DevicePeaks | None) -> BatchResult:
    """`result` with count's roofline bound of the model and its baseline at this batch, when a device is set."""
    if peaks is None:
        return result
    from senet_cli.count import count

    counted = count(subject, input_size=size, batch=batch, dtype=timing.dtype, amp=timing.amp, roofline=peaks)
    bound = counted.roofline
    assert bound is not None
    return replace(result, roofline_ms=bound.ms, baseline_roofline_ms=bound.baseline_ms,
                   predicted_ms=bound.predicted_ms, baseline_predicted_ms=bound.baseline_predicted_ms)


def _bound_notes(results: Sequence[BatchResult], peaks: DevicePeaks | None, timing: Timing,
                 threads: int) -> tuple[str, ...]:
    """One line where a bound came out above a measured median (the device's figures do not describe
    this machine, or a calibration was made in another setting: then that is named first), one where a
    calibration was made on another device or thread count, and one where this run is not the eager,
    channels-first forward pass a calibration predicts."""
    if peaks is None:
        return ()
    notes = []
    calibration = peaks.calibration
    here = setting_text(timing.device, threads)
    elsewhere = calibration is not None and calibration.setting != here
    above = [r for r in results if r.over_bound is not None and r.over_bound < 1.0]
    if above:
        batches = ", ".join(f"batch {r.batch} ({r.over_bound:.2f}x)" for r in above)
        said = f"the {peaks.name} bound is above the measured median at {batches}"
        if calibration is None:
            notes.append(f"{said}: no bound for this machine; measure it with `senet calibrate` and give its device "
                         "file as the roofline")
        elif elsewhere:
            notes.append(f"{said}: the device file was calibrated on {calibration.setting}, this run is on {here}; "
                         "calibrate with this run's setting")
        else:
            notes.append(f"{said}: this run was faster than the calibration's rates (a busy or slower machine while "
                         "calibrating); calibrate again on a quiet machine")
    if elsewhere and not above:
        assert calibration is not None
        notes.append(f"the device file was calibrated on {calibration.setting}, this run is on {here}: its "
                     "predictions are for that setting")
    notes += _probe_notes(results, calibration)
    if calibration is not None and (timing.channels_last or timing.compile):
        run = " and ".join(what for what, on in (("channels-last", timing.channels_last),
                                                 ("compiled", timing.compile)) if on)
        notes.append(f"predicted for eager, channels-first execution (what calibrate measures and count's bytes "
                     f"assume); this run is {run}, whose kernels run at other rates: measured / predicted shows by "
                     "how much")
    return tuple(notes)


def time_modules(
    modules: Mapping[str, nn.Module],
    *,
    batch: int = 1,
    input_size: tuple[int, int] = (224, 224),
    num_classes: int = 1000,
    timing: Timing | None = None,
    on_round: Callable[[int, int], None] | None = None,
    probe: SpeedProbe | None = None,
    **timing_fields: Any,
) -> dict[str, Measurement]:
    """Time any modules (yours, timm's, torchvision's) with `profile()`'s harness, interleaved.

    The harness `senet profile` uses, for models that are not in the zoo: each module is moved to
    the device and dtype in place, warmed up, then timed round-robin with the others on one input
    of `batch` x 3 x input_size. `timing` and keywords as in `profile()`. Returns one Measurement
    per key, in the order given. Out-of-memory errors propagate. A `probe` (profile/probe.py's
    SpeedProbe, on the same device) is measured once after each round, its times kept in it.
    """
    timing, unknown = Timing.take(timing, timing_fields)
    if unknown:
        raise ArgumentError("time_modules takes timing fields only; not {names}", arguments=(),
                            names=", ".join(unknown))
    (batch,) = check_batches((batch,))
    from senet_cli.profile import harness

    return harness.time_modules(modules, batch, tuple(input_size), timing, num_classes, on_round, probe)


def _batch_result(stages: Sequence[int], batch: int, measured: Mapping[str, Measurement],
                  per_stage: bool) -> BatchResult:
    model = measured["model"]
    baseline = measured.get("baseline")
    overhead = None
    if baseline is not None:
        overhead = (model.latency_ms.median - baseline.latency_ms.median) / baseline.latency_ms.median * 100.0
    ablations = {int(key[5:]): m for key, m in measured.items() if key.startswith("stage")}
    if per_stage and baseline is not None and not ablations:
        ablations = {stages[0]: baseline}  # one stage with attention: removing it is the baseline
    costs = tuple(
        StageCost(stage, model.latency_ms.median - m.latency_ms.median,
                  (model.latency_ms.median - m.latency_ms.median) / model.latency_ms.median * 100.0)
        for stage, m in ablations.items()
    )
    return BatchResult(batch, model, baseline, overhead, costs)
