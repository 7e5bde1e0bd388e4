"""The roofline bound against hand-computed numbers; presets and parsing; profile's noisy caution."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import senet_cli
from senet_cli.count.dispatch import trace_costs
from senet_cli.count.roofline import PRESETS, OpTimer, parse_device, preset_for_gpu
from senet_cli.profile.results import NOISY_DRIFT_PCT, NOISY_SPREAD_PCT, BatchResult, LatencyStats, Measurement


def test_an_op_is_bound_by_the_slower_of_compute_and_memory():
    timer = OpTimer(peak_tflops=2.0, bandwidth_gbs=100.0)
    # 1e12 MACs = 2e12 FLOP at 2e12 FLOP/s: 1 s; 1e9 bytes at 1e11 B/s: 0.01 s
    assert timer.seconds(10**12, 10**9) == (pytest.approx(1.0), False)
    # 1e6 MACs: 1 us of compute; 1e9 bytes: 10 ms of memory
    assert timer.seconds(10**6, 10**9) == (pytest.approx(0.01), True)
    assert timer.seconds(0, 400) == (pytest.approx(4e-9), True)  # elementwise: bytes only


def test_a_convolution_by_hand():
    """Conv 3->8, 3x3, padding 1, no bias, on 1x3x32x32 float32, on a 1 TFLOPS, 1 GB/s device."""
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False).to("meta")
    (op,) = trace_costs(conv, torch.empty(1, 3, 32, 32, device="meta")).ops
    assert op.macs == 8 * 3 * 9 * 32 * 32 == 221_184
    assert op.bytes == 4 * (3 * 1024 + 8 * 3 * 9 + 8 * 1024) == 45_920
    seconds, memory_bound = OpTimer(1.0, 1.0).seconds(op.macs, op.bytes)
    # compute: 2 x 221,184 / 1e12 = 0.44 us; memory: 45,920 / 1e9 = 45.92 us
    assert memory_bound and seconds == pytest.approx(45.92e-6)
    seconds, memory_bound = OpTimer(1e-6, 1.0).seconds(op.macs, op.bytes)  # a 1 MFLOPS device
    assert not memory_bound and seconds == pytest.approx(2 * 221_184 / 1e6)


def test_the_bound_sums_every_op_of_every_row():
    report = senet_cli.count("se_resnet18_cifar", roofline="1,1000")
    bound = report.roofline
    assert bound.ms == pytest.approx(sum(row.roofline_ms for row in report.rows))
    assert bound.device == "1 TFLOPS, 1000 GB/s" and (bound.peak_tflops, bound.bandwidth_gbs) == (1.0, 1000.0)
    # infinite bandwidth: the bound is the MACs at the peak; infinite peak: the bytes at the bandwidth
    compute_only = senet_cli.count("se_resnet18_cifar", roofline="1,1e15").roofline
    assert compute_only.ms == pytest.approx(2 * report.macs / 1e12 * 1e3, rel=1e-6)
    assert compute_only.baseline_ms == pytest.approx(2 * report.baseline.macs / 1e12 * 1e3, rel=1e-6)
    memory_only = senet_cli.count("se_resnet18_cifar", roofline="1e15,1000").roofline
    assert memory_only.ms == pytest.approx(report.bytes / 1e12 * 1e3, rel=1e-6)
    assert memory_only.memory_bound_ms == pytest.approx(memory_only.ms)
    assert memory_only.overhead_pct == pytest.approx(report.overhead.bytes_pct, rel=1e-6)
    data = report.to_dict()
    assert set(data["roofline"]) >= {"device", "peak_tflops", "bandwidth_gbs", "ms", "baseline_ms", "overhead_pct",
                                     "memory_bound_blocks"}
    assert {"roofline_ms", "memory_bound"} <= set(data["blocks"][0])
    assert "roofline" in data and senet_cli.count("resnet18_cifar").to_dict()["roofline"] is None


def test_presets_carry_dense_peaks_and_a_source_and_pick_the_peak_by_precision():
    assert {"h100", "h200", "a100", "l4", "rtx-3090", "rtx-4090"} <= set(PRESETS)
    assert "cpu" not in PRESETS  # a nominal CPU figure bounds no particular machine (#22): calibrate instead
    for preset in PRESETS.values():
        assert preset.source and preset.bandwidth_gbs > 0 and preset.fp16_tflops >= preset.fp32_tflops > 0
    h100 = PRESETS["h100"]
    assert h100.peak_tflops("float32") == 494.7  # TF32 convolutions: PyTorch's cuDNN default
    assert h100.peak_tflops("float16") == h100.peak_tflops("float32", amp=True) == 989.4
    assert PRESETS["rtx-3090"].peak_tflops("float16") == 142.0 and PRESETS["rtx-4090"].bandwidth_gbs == 1008.0
    assert preset_for_gpu("NVIDIA GeForce RTX 3090").name == "rtx-3090"
    assert preset_for_gpu("NVIDIA GeForce RTX 4090").name == "rtx-4090"
    assert preset_for_gpu("NVIDIA GeForce RTX 3090 Ti") is None and preset_for_gpu("NVIDIA GeForce RTX 4090 D") is None
    assert preset_for_gpu("NVIDIA H100 80GB HBM3").name == "h100"
    assert preset_for_gpu("NVIDIA H100 PCIe").name == "h100-pcie"
    assert preset_for_gpu("NVIDIA A100-SXM4-80GB").name == "a100" and preset_for_gpu("Tesla T4") is None
    assert preset_for_gpu("NVIDIA L4").name == "l4" and preset_for_gpu("NVIDIA L40S") is None
    # variants whose bandwidth differs from every preset get none rather than a wrong one
    for other in ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-40GB", "NVIDIA H100 NVL",
                  "NVIDIA GH200 480GB"):
        assert preset_for_gpu(other) is None, other


@pytest.mark.parametrize("spec, message", [
    ("h10", "unknown roofline device 'h10' \\(did you mean 'h100'\\?\\)"),
    ("1,-3", "two positive numbers"),
    ("a,b", "two positive numbers"),
    ("1,2,3", "two positive numbers"),
    ("nan,5", "two positive numbers"),
])
def test_bad_devices_are_one_line(spec, message):
    with pytest.raises(senet_cli.SenetError, match=message):
        parse_device(spec)


def test_count_cli_shows_the_bound(cli):
    code, out, _ = cli(["count", "se_resnet18_cifar", "--roofline", "h100", "--format", "json"])
    assert code == 0
    data = json.loads(out)
    assert data["roofline"]["device"] == "h100" and data["roofline"]["peak_tflops"] == 494.7
    code, out, _ = cli(["count", "se_resnet18_cifar", "--roofline", "h100", "--amp", "--format", "csv",
                        "--summary"])
    assert code == 0 and "roofline_ms" in out.splitlines()[0] and ",h100," in out
    code, _, err = cli(["count", "se_resnet18_cifar", "--roofline", "x,y"])
    assert code == 2 and "--roofline takes a device name" in err


def _stats(median: float, p10: float, p90: float, drift: float = 0.0) -> LatencyStats:
    return LatencyStats(median=median, p10=p10, p90=p90, min=p10, mean=median, drift_pct=drift)


def test_noisy_when_spread_or_drift_passes_its_threshold():
    assert not _stats(100, 95, 105).noisy  # spread 10%
    assert _stats(100, 80, 80 + NOISY_SPREAD_PCT + 1).noisy
    assert not _stats(100, 80, 80 + NOISY_SPREAD_PCT - 1).noisy
    assert _stats(100, 99, 101, drift=-(NOISY_DRIFT_PCT + 0.5)).noisy
    assert not _stats(100, 99, 101, drift=NOISY_DRIFT_PCT - 0.5).noisy
    # the newcomer's run under load: p10-p90 of 410-2,701 ms
    assert _stats(900, 410, 2701).noisy


def test_drift_compares_the_later_half_of_the_runs_with_the_earlier():
    steady = LatencyStats.from_samples([0.010, 0.0105, 0.011, 0.011, 0.0105, 0.010])  # both halves: 10.5
    assert steady.drift_pct == pytest.approx(0.0) and not steady.noisy
    slowing = LatencyStats.from_samples([0.010, 0.010, 0.010, 0.013, 0.013, 0.013])  # medians 10 -> 13 ms
    assert slowing.drift_pct == pytest.approx((13 - 10) / 11.5 * 100)
    assert slowing.noisy


def test_a_noisy_batch_gets_a_caution_line_and_a_json_field():
    from senet_cli.profile.results import ProfileReport
    from senet_cli.profile.timing import Timing
    from senet_cli.render.profile_view import profile_table
    from senet_cli.zoo import make_config

    quiet = Measurement("resnet18_cifar", _stats(10, 9.8, 10.2), 100.0, None, 30)
    loud = Measurement("se_resnet18_cifar", _stats(9.6, 4.1, 27.0), 104.0, None, 30)
    result = BatchResult(1, loud, quiet, -4.0)
    report = ProfileReport(make_config("se_resnet18_cifar"), Timing(), (32, 32), 1, "rss", (result,))
    assert result.noisy and not BatchResult(1, quiet, quiet, 0.0).noisy
    data = report.to_dict()
    assert data["results"][0]["noisy"] is True and data["results"][0]["baseline"]["noisy"] is False
    assert data["noisy_thresholds"] == {"spread_pct": NOISY_SPREAD_PCT, "drift_pct": NOISY_DRIFT_PCT}
    table = profile_table(report)
    assert table.rows[0][7] == "-4.0% (noisy)"
    (caution,) = [note for note in table.notes if note.startswith("caution")]
    assert "batch 1 is noisy" in caution and "se_resnet18_cifar: p10-p90 spread 239% of the median" in caution


@pytest.mark.slow  # times a real model
def test_profile_puts_the_median_next_to_the_bound():
    report = senet_cli.profile("se_resnet18_cifar", input_size=32, iters=2, warmup=0, roofline="h100")
    (result,) = report.results
    counted = senet_cli.count("se_resnet18_cifar", roofline="h100").roofline
    assert result.roofline_ms == pytest.approx(counted.ms)
    assert result.baseline_roofline_ms == pytest.approx(counted.baseline_ms)
    assert result.over_bound == pytest.approx(result.model.latency_ms.median / counted.ms)
    assert report.to_dict()["roofline"]["device"] == "h100"
    assert senet_cli.profile("resnet18_cifar", input_size=32, iters=2, warmup=0).roofline is None  # auto on CPU


def test_a_bound_that_cannot_be_counted_leaves_the_timing_and_says_so(monkeypatch):
    """The bound is count's, computed beside the timing: its failure must not end the profile as if
    the model could not run (a review found count's errors caught as the run's)."""
    import sys

    def failing(*args, **kwargs):
        raise senet_cli.SenetError("meta device cannot trace this model")

    monkeypatch.setattr(sys.modules["senet_cli.count"], "count", failing)  # the package, not the function
    report = senet_cli.profile("se_resnet18_cifar", input_size=32, iters=2, warmup=0, roofline="h100")
    (result,) = report.results
    assert result.model is not None and result.roofline_ms is None
    assert any("no roofline bound at batch 1: meta device cannot trace" in note for note in report.notes)
