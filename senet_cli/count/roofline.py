"""A roofline bound: the least time a device could take for the ops `count` traced, op by op.

For each op, time = max(2 x MACs / peak, bytes / bandwidth): the op is either compute-bound (its
multiply-accumulates at the device's dense peak) or memory-bound (its bytes, see
formulas.moved_bytes, at the memory bandwidth). Per-op times are summed per block and in total.

Elementwise ops are not charged against the peak: they run on vector units, not tensor cores, and
do at most a few operations per element read or written (under 1 op per byte in float32), while an
H100's ridge point even for its CUDA-core float32 peak is 67 TFLOPS / 3.35 TB/s = 20 ops per byte.
Their time is always their bytes at the bandwidth, so they are charged as such.

What the bound leaves out, and why a measured time exceeds it: kernel launch overhead (several us
per op, which dominates at batch 1), kernels that reach neither peak nor bandwidth (cuDNN's
convolutions reach a fraction of peak on small or odd shapes), and caches (the bound assumes every
byte goes to DRAM; a small tensor read twice may stay in L2). The byte count assumes unfused, eager
execution; fused kernels (torch.compile, TensorRT) move fewer bytes, so their bound is lower.

Torch-free: only arithmetic on the numbers `count` produced.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from senet_cli.count.latency import DeviceCalibration, is_device_file
from senet_cli.errors import ArgumentError, UnknownChoiceError


@dataclass(frozen=True)
class DevicePeaks:
    """A device's dense (no sparsity) peaks and its memory bandwidth, with where they come from.

    fp32_tflops: float32 on CUDA cores / vector units; tf32_tflops: float32 convolutions on tensor
    cores (None where the device has none); fp16_tflops: float16/bfloat16 on tensor cores;
    bandwidth_gbs: memory bandwidth in GB/s (10^9 bytes per second). A device read from a
    `senet calibrate` file carries its calibration; its peaks are the best rates measured there.
    """

    name: str
    fp32_tflops: float
    tf32_tflops: float | None
    fp16_tflops: float
    bandwidth_gbs: float
    source: str
    calibration: DeviceCalibration | None = None  # a device file's measurements: predictions, not only bounds

    def peak_tflops(self, dtype: str = "float32", amp: bool = False) -> float:
        """The peak convolutions and matmuls run at in this precision. float32 uses the TF32
        tensor-core peak where there is one, because PyTorch lets cuDNN run float32 convolutions in
        TF32 by default (torch.backends.cudnn.allow_tf32); float16, bfloat16 and AMP use fp16's."""
        if amp or dtype in ("float16", "bfloat16"):
            return self.fp16_tflops
        return self.tf32_tflops if self.tf32_tflops is not None else self.fp32_tflops


PRESETS: dict[str, DevicePeaks] = {
    preset.name: preset
    for preset in (
        DevicePeaks("h100", 67.0, 494.7, 989.4, 3350.0,
                    "NVIDIA H100 SXM5 80GB datasheet, dense (half the sparse figures): "
                    "https://www.nvidia.com/en-us/data-center/h100/"),
        DevicePeaks("h100-pcie", 51.0, 378.0, 756.0, 2000.0,
                    "NVIDIA H100 PCIe 80GB datasheet, dense: https://www.nvidia.com/en-us/data-center/h100/"),
        DevicePeaks("h200", 67.0, 494.7, 989.4, 4800.0,
                    "NVIDIA H200 SXM 141GB datasheet, dense: https://www.nvidia.com/en-us/data-center/h200/"),
        DevicePeaks("a100", 19.5, 156.0, 312.0, 2039.0,
                    "NVIDIA A100 SXM 80GB datasheet, dense: "
                    "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
                    "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"),
        DevicePeaks("l4", 30.3, 60.0, 121.0, 300.0,
                    "NVIDIA L4 datasheet, dense (half the sparse figures): https://www.nvidia.com/en-us/data-center/l4/"),
        DevicePeaks("rtx-3090", 35.6, 35.6, 142.0, 936.0,
                    "NVIDIA GeForce RTX 3090, NVIDIA Ampere GA102 GPU Architecture whitepaper (Appendix A, "
                    "Table 9), dense: FP32 35.6, TF32 tensor 35.6, FP16 tensor 142 TFLOPS (FP16 accumulate; 71 "
                    "with FP32 accumulate: the higher figure keeps the bound a bound), GDDR6X 936 GB/s: "
                    "https://www.nvidia.com/content/PDF/nvidia-ampere-ga-102-gpu-architecture-whitepaper-v2.pdf"),
        DevicePeaks("rtx-4090", 82.6, 82.6, 330.3, 1008.0,
                    "NVIDIA GeForce RTX 4090, NVIDIA Ada GPU Architecture whitepaper (Appendix A, Table 2), "
                    "dense: FP32 82.6, TF32 tensor 82.6, FP16 tensor 330.3 TFLOPS (FP16 accumulate; 165.2 with "
                    "FP32 accumulate: the higher figure keeps the bound a bound), GDDR6X 1008 GB/s: "
                    "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf"),
    )
}
"""Named devices. Add one by its datasheet's dense figures. There is no CPU preset: a nominal CPU
figure bounds no particular machine (it came out above measured medians on this project's CPU);
`senet calibrate` measures the machine it runs on and writes a device file instead."""

REMOVED_PRESETS: dict[str, str] = {
    "cpu": "the cpu preset was removed (a nominal CPU figure, it came out above measured medians on a real "
           "machine, so it bounded nothing); measure this machine with `senet calibrate` and give its device file",
}
"""Presets that are gone, and what to use instead: a user's old command says why, not only that the
name is unknown."""

GPU_NAMES: tuple[tuple[tuple[str, ...], str | None], ...] = (
    (("h100", "pcie"), "h100-pcie"),
    (("h100", "nvl"), None),  # 3.9 TB/s, other clocks: no preset rather than the SXM one
    (("h100",), "h100"),  # "NVIDIA H100 80GB HBM3" (SXM5)
    (("h200",), "h200"),
    (("a100", "pcie"), None),  # 1,555 (40GB) or 1,935 GB/s (80GB): not the SXM 80GB preset
    (("a100", "40gb"), None),  # SXM4 40GB: 1,555 GB/s
    (("a100", "80gb"), "a100"),  # "NVIDIA A100-SXM4-80GB"
    (("l4",), "l4"),
    (("3090", "ti"), None),  # 40 TFLOPS, 1,008 GB/s: not the RTX 3090 preset
    (("3090",), "rtx-3090"),  # "NVIDIA GeForce RTX 3090"
    (("4090", "d"), None),  # RTX 4090 D: fewer SMs
    (("4090", "laptop"), None),  # a different chip (AD103)
    (("4090",), "rtx-4090"),  # "NVIDIA GeForce RTX 4090"
)
"""Words of torch.cuda.get_device_name() (lower-cased, split at anything not a letter or digit) ->
preset, or None for a variant whose figures differ from every preset; the first entry whose words
are all there wins ("NVIDIA L40S" is not an L4). A GPU without a preset gets no bound unless one is
named (a preset, or PEAK_TFLOPS,BANDWIDTH_GBS)."""


def preset_for_gpu(gpu_name: str) -> DevicePeaks | None:
    """The preset of a GPU named as torch names it ("NVIDIA H100 80GB HBM3" -> h100), or None."""
    words = set(re.split(r"[^a-z0-9]+", gpu_name.lower()))
    for required, preset in GPU_NAMES:
        if words.issuperset(required):
            return PRESETS[preset] if preset is not None else None
    return None


def parse_device(spec: str | DevicePeaks) -> DevicePeaks:
    """A preset name, "PEAK_TFLOPS,BANDWIDTH_GBS" for any device (the peak then holds for every
    precision), or a device file written by `senet calibrate` (a path ending in .json, or any file
    that exists). Raises a one-line error for anything else."""
    if isinstance(spec, DevicePeaks):
        return spec
    text = spec.strip().lower()
    if text in PRESETS:
        return PRESETS[text]
    if is_device_file(spec):
        return calibrated_device(DeviceCalibration.load(spec.strip()), spec.strip())
    if text in REMOVED_PRESETS:
        raise ArgumentError("{roofline} " + text + ": " + REMOVED_PRESETS[text], arguments=("roofline",))
    if "," not in text and not _is_number(text):
        if "/" in text or "\\" in text or re.search(r"\.[a-z]\w*$", text):  # a path: say the file is missing
            DeviceCalibration.load(spec.strip())
        raise UnknownChoiceError("roofline device", spec, (*PRESETS, "PEAK_TFLOPS,BANDWIDTH_GBS", "DEVICE.json"))
    parts = text.split(",")
    try:
        peak, bandwidth = (float(part) for part in parts)
    except ValueError:
        peak = bandwidth = math.nan
    if not (math.isfinite(peak) and math.isfinite(bandwidth) and peak > 0 and bandwidth > 0):
        raise ArgumentError("{roofline} takes a device name or two positive numbers PEAK_TFLOPS,BANDWIDTH_GBS "
                            "(e.g. 989,3350), got {value}", arguments=("roofline",), value=repr(spec))
    return DevicePeaks(f"{peak:g} TFLOPS, {bandwidth:g} GB/s", peak, None, peak, bandwidth, "given on the command line")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def calibrated_device(calibration: DeviceCalibration, where: str = "a calibration") -> DevicePeaks:
    """The device a calibration describes: its roofline peaks are the best compute rate and
    bandwidth measured (no per-op cost), and it carries the calibration for predictions."""
    peak = calibration.peak_tflops
    return DevicePeaks(
        f"{calibration.name} ({calibration.setting}, calibrated)", peak, None, peak,
        calibration.bandwidth_gbs,
        f"measured by senet calibrate ({where}, {calibration.created or 'undated'}): best rates over "
        f"{len(calibration.points)} shapes, {calibration.dtype}"
        + (f"; CAUTION: calibrated on a busy machine (load {calibration.load_before:.1f} before"
           + (f", {calibration.load_after:.1f} after" if calibration.load_after >= 0 else "")
           + f", on {calibration.cpu_count} CPUs), so its rates measure that load: "
           "calibrate again on a quiet machine" if calibration.busy else ""),
        calibration)


@dataclass(frozen=True)
class OpTimer:
    """Seconds per op on one device in one precision: max(2 x MACs / peak, bytes / bandwidth)."""

    peak_tflops: float
    bandwidth_gbs: float

    def seconds(self, macs: int, moved_bytes: int) -> tuple[float, bool]:
        """(time, memory-bound): the op's bound and whether its bytes, not its MACs, set it."""
        compute = 2.0 * macs / (self.peak_tflops * 1e12)
        memory = moved_bytes / (self.bandwidth_gbs * 1e9)
        return max(compute, memory), memory > compute


@dataclass(frozen=True)
class Roofline:
    """The bound of a whole model and its baseline on one device; `ms` sums every op's bound. With a
    calibrated device, also the predicted time (count/latency.py), which the bound never exceeds."""

    device: str
    peak_tflops: float
    bandwidth_gbs: float
    ms: float
    baseline_ms: float | None  # None: no baseline (a model outside the zoo whose attention has no pass-through)
    overhead_pct: float | None
    memory_bound_ms: float  # the part of `ms` spent in memory-bound ops
    source: str
    # a calibrated device (count/latency.py): the predicted time, op by op at the achieved rates plus the per-op cost
    predicted_ms: float | None = None
    baseline_predicted_ms: float | None = None
    predicted_overhead_pct: float | None = None
    op_cost_us: float | None = None
    after_op_fraction: float | None = None  # what each op pays on top per second of the op before it
    cold_write_us_per_mib: float | None = None  # what a 1 MiB new output pays per MiB for cold memory (None: no
    # cold_write points; 0: measured and no slower at 1 MiB)
    cold_read_us_per_mib: float | None = None  # what a 1 MiB input read past the caches pays per MiB (None: no
    # cold_read points or cache size)
    cache_bytes: int | None = None  # the reuse distance past which an input is read cold (None: no calibration)
    cold_op_us: float | None = None  # what an op pays when no op of its name ran within cache_bytes of traffic
    # (None: no calibration; 0: not measured)
    cold_op_us_by_group: dict[str, float] | None = None  # the same per group of op kinds (latency.COLD_OP_GROUPS),
    # which an op of that group pays instead (None: no calibration; empty: every op pays cold_op_us)
    fresh_page_us_per_mib: float | None = None  # what a MiB of memory first touched costs in page faults (None: no
    # calibration; 0: not measured, as on a GPU); the prediction charges no op for it (a process keeping its memory)
