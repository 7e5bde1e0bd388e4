"""`profile()` and `senet profile`: statistics, interleaving, contract, errors. CPU only, tiny models;
the CUDA test skips where there is no GPU (CI has none)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from senet_cli.errors import SenetError
from senet_cli.profile import LatencyStats, Timing, profile, time_modules
from senet_cli.zoo import make_config

FAST = {"input_size": 32, "iters": 3, "warmup": 1}


def test_statistics_follow_numpy_conventions():
    samples = [0.005, 0.001, 0.003, 0.002, 0.004, 0.010]
    stats = LatencyStats.from_samples(samples)
    ms = np.array(samples) * 1000
    assert stats.median == pytest.approx(np.median(ms))
    assert stats.p10 == pytest.approx(np.percentile(ms, 10))
    assert stats.p90 == pytest.approx(np.percentile(ms, 90))
    assert (stats.min, stats.mean) == (pytest.approx(1.0), pytest.approx(ms.mean()))
    assert LatencyStats.from_samples([0.001]).p90 == 1.0  # one sample: every percentile is it


@pytest.mark.slow  # times real models round after round
def test_profile_times_model_and_baseline_and_derives_overhead():
    report = profile("se_resnet18_cifar", batches=(1, 2), **FAST)
    assert [r.batch for r in report.results] == [1, 2]
    for result in report.results:
        model, base = result.model, result.baseline
        assert base.model == "resnet18_cifar" and model.iterations == base.iterations == 3
        stats = model.latency_ms
        assert stats.min <= stats.p10 <= stats.median <= stats.p90
        assert model.throughput == pytest.approx(result.batch / stats.median * 1000)
        base_median = base.latency_ms.median
        assert result.overhead_pct == pytest.approx((stats.median - base_median) / base_median * 100)
        assert model.peak_memory_mb > 0
    assert report.timing.device == "cpu" and report.threads == torch.get_num_threads()


@pytest.mark.slow  # times real models round after round
def test_plain_models_have_no_baseline_and_per_stage_ablation_covers_each_stage():
    plain = profile("resnet18_cifar", **FAST).results[0]
    assert plain.baseline is None and plain.overhead_pct is None
    staged = profile("eca_resnet18_cifar", per_stage=True, stages="2,3", **FAST).results[0]
    assert [s.stage for s in staged.per_stage] == [2, 3]


def test_min_time_runs_at_least_five_rounds():
    result = profile("resnet18_cifar", input_size=32, warmup=0, min_time=0.001).results[0]
    assert result.model.iterations >= 5


@pytest.mark.slow  # trains (forward, backward, SGD step) and times it
def test_train_mode_and_amp_run():
    result = profile("se_resnet18_cifar", mode="train", amp=True, **FAST).results[0]
    assert result.model.latency_ms.median > 0


def test_json_contract(tmp_path, cli):
    target = tmp_path / "p.json"
    code, _, _ = cli(["profile", "se_resnet18_cifar", "--iters", "2", "--warmup", "0", "--batch", "1,2",
                      "--output", str(target)])
    assert code == 0
    data = json.loads(target.read_text())
    assert {"model", "device", "dtype", "input", "results"} <= set(data)
    first = data["results"][0]
    assert {"batch", "latency_ms", "throughput", "peak_memory_mb", "baseline", "overhead_pct"} <= set(first)
    assert set(first["latency_ms"]) == {"median", "p10", "p90", "min", "mean", "drift_pct"}
    assert {"model", "latency_ms", "throughput", "peak_memory_mb"} <= set(first["baseline"])


@pytest.mark.parametrize("kwargs, message", [
    ({"iters": 0}, "iters must be at least 1"),
    ({"warmup": -1}, "warmup must be 0 or more"),
    ({"batches": (0,)}, "batch sizes must be at least 1"),
    ({"device": "tpu"}, "unknown device"),
    ({"dtype": "float64"}, "unknown dtype"),
    ({"mode": "eval"}, "unknown mode"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(SenetError, match=message):
        profile("se_resnet18_cifar", **{"input_size": 32, **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is absent")
def test_cuda_without_a_gpu_is_one_line_exit_2(cli):
    code, _, err = cli(["profile", "se_resnet18", "--device", "cuda"])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "no CUDA device" in lines[0]
    assert lines[0].endswith("use --device cpu") and "--device cuda asked for" in lines[0]
    with pytest.raises(SenetError, match=r"device='cuda' asked for.*use device='cpu'"):
        profile("se_resnet18", device="cuda")


def test_timing_is_checked_once_and_carried_through(cli):
    timing = Timing(iters=2, warmup=0)
    report = profile("se_resnet18_cifar", input_size=32, timing=timing)
    assert report.timing == timing and report.results[0].model.iterations == 2
    override = profile("se_resnet18_cifar", input_size=32, timing=timing, iters=3)  # a keyword overrides
    assert override.timing == Timing(iters=3, warmup=0) and override.results[0].model.iterations == 3
    config = make_config("se_resnet18_cifar", ratio=8)
    assert profile(config, input_size=32, timing=timing).config == config
    with pytest.raises(SenetError, match="holds every option"):
        profile(config, ratio=4, timing=timing)
    with pytest.raises(SenetError, match="give iters or min_time, not both"):
        Timing(iters=2, min_time=1.0)
    with pytest.raises(SenetError, match="amp=True runs a float32 model under autocast; do not combine it with dtype"):
        Timing(amp=True, dtype="bfloat16")
    code, _, err = cli(["profile", "se_resnet18_cifar", "--iters", "2", "--min-time", "1"])
    assert code == 2 and "give --iters or --min-time, not both" in err
    code, _, err = cli(["profile", "se_resnet18_cifar", "--amp", "--dtype", "float16"])
    assert code == 2 and "--amp runs a float32 model under autocast; do not combine it with --dtype" in err


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_cuda_profile_reports_allocator_peak_memory():
    result = profile("se_resnet18_cifar", device="cuda", **FAST).results[0]
    assert result.model.peak_memory_mb > 0 and result.baseline.peak_memory_mb > 0
    # the SE model holds more weights than its backbone, and the allocator sees them
    assert result.model.peak_memory_mb > result.baseline.peak_memory_mb


@needs_cuda
def test_cuda_out_of_memory_is_reported_for_that_batch_and_the_sweep_goes_on():
    before = torch.backends.cudnn.benchmark
    report = profile("resnet18_cifar", device="cuda", batches=(2, 2**22, 4), input_size=224, iters=2, warmup=1)
    assert [r.batch for r in report.results] == [2, 2**22, 4]  # never shrunk
    assert report.results[1].error == "out of memory" and report.results[1].model is None
    assert report.results[0].model and report.results[2].model
    assert torch.backends.cudnn.benchmark == before  # autotuning was on only while timing


@needs_cuda
def test_cuda_amp_train_and_per_stage_run():
    staged = profile("cbam_resnet18_cifar", device="cuda", amp=True, per_stage=True, stages="3,4", **FAST).results[0]
    assert [s.stage for s in staged.per_stage] == [3, 4]
    trained = profile("se_resnet18_cifar", device="cuda", mode="train", dtype="bfloat16", **FAST).results[0]
    assert trained.model.latency_ms.median > 0


@pytest.mark.slow  # times real models round after round
def test_time_modules_times_foreign_modules_with_the_same_harness():
    from torchvision.models import resnet18

    from senet_cli.zoo import build_model

    modules = {"torchvision resnet18": resnet18(num_classes=10),
               "senet resnet18": build_model("resnet18", num_classes=10)}
    measured = time_modules(modules, batch=2, input_size=(32, 32), num_classes=10, iters=3, warmup=1)
    assert list(measured) == list(modules)
    for name, m in measured.items():
        assert m.model == name and m.iterations == 3
        assert m.latency_ms.min <= m.latency_ms.median and m.throughput == pytest.approx(2 / m.latency_ms.median * 1000)
    with pytest.raises(SenetError, match="iters must be at least 1"):
        time_modules(modules, iters=0)


@pytest.mark.slow  # times real models round after round
def test_single_stage_ablation_is_the_baseline_and_iters_excludes_min_time():
    result = profile("se_resnet18_cifar", per_stage=True, stages="4", **FAST).results[0]
    (cost,) = result.per_stage
    assert cost.stage == 4
    assert cost.attention_ms == pytest.approx(result.model.latency_ms.median - result.baseline.latency_ms.median)
    with pytest.raises(SenetError, match="not both"):
        profile("se_resnet18_cifar", input_size=32, iters=2, min_time=0.1)


def test_denormals_are_found_named_and_can_be_flushed(tmp_path, cli):
    """Random weights made GC's softmax underflow into denormal floats, which the CPU computed 4x slower
    (GC's attention timed 780 us a block, 194 with them flushed): profile names the modules that make
    them, and --flush-denormal times them as zeros, then leaves torch's default again."""
    from torch import nn

    from senet_cli.profile import harness
    from senet_cli.profile.api import _denormal_note
    from senet_cli.profile.timing import Timing

    class Tiny(nn.Module):
        def forward(self, x):
            return x * 1e-39  # below float32's smallest normal (1.2e-38), above zero

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(Tiny(), nn.ReLU()), nn.Flatten(), nn.Linear(144, 2))
    found = harness.denormal_modules(model, (8, 8), Timing(), torch.device("cpu"))
    assert found == ["1.0"]  # the maker; not the ReLU and the Flatten that pass them on, nor the container
    assert harness.denormal_modules(nn.Sequential(nn.Conv2d(3, 4, 3)), (8, 8), Timing(), torch.device("cpu")) == []
    (note,) = _denormal_note(["a.softmax", "b.softmax", "c.softmax", "d.softmax"])
    assert "4 module(s) (a.softmax, b.softmax, c.softmax and 1 more)" in note and "flush-denormal" in note
    assert _denormal_note([]) == ()
    tiny = torch.tensor([1e-39])
    with harness.denormals_flushed(True):
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() != 0.0  # torch's default again
    target = tmp_path / "p.json"
    code, out, err = cli(["profile", "se_resnet18_cifar", "--iters", "2", "--warmup", "0", "--flush-denormal",
                          "--output", str(target)])
    assert code == 0, err
    assert json.loads(target.read_text())["flush_denormal"] is True
    code, out, _ = cli(["profile", "se_resnet18_cifar", "--iters", "2", "--warmup", "0", "--flush-denormal"])
    assert code == 0 and "float32, denormals flushed" in out
