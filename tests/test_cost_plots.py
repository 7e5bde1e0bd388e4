"""count's and profile's figures: written in one go, in the format the extension names, refused before
any work for a bad path; the per-block overhead they draw is attention's share of each block."""

from __future__ import annotations

import pytest

import senet_cli
from senet_cli.profile.results import BatchResult, LatencyStats, Measurement, ProfileReport
from senet_cli.profile.timing import Timing
from senet_cli.render.cost_plots import block_overhead_pct, plot_profiles
from senet_cli.zoo import make_config


def test_block_overhead_is_attention_against_the_rest_of_the_block():
    report = senet_cli.count("se_resnet18_cifar")
    block = report.blocks[0]
    (pct, *_) = block_overhead_pct(report, "bytes")
    assert pct == pytest.approx(block.attention_bytes / (block.bytes - block.attention_bytes) * 100)
    assert len(block_overhead_pct(report, "params")) == len(report.blocks)


def test_count_plot_compares_a_ratio_sweep_in_one_figure(tmp_path, cli):
    target = tmp_path / "sweep.png"
    code, _, err = cli(["count", "se_resnet18_cifar", "--ratio", "4,16", "--plot", str(target)])
    assert code == 0 and f"wrote {target}" in err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, _ = cli(["count", "se_resnet18_cifar", "--plot", str(target)])
    assert code == 2  # exists, no --force
    code, _, err = cli(["count", "se_resnet18_cifar", "--plot", str(tmp_path / "f.jpg")])
    assert code == 2 and ".png, .svg or .pdf" in err


def _measurement(name: str, median: float) -> Measurement:
    return Measurement(name, LatencyStats(median, median * 0.9, median * 1.2, median * 0.8, median), 1000 / median,
                       512.0, 5)


def test_profile_plot_draws_latency_throughput_and_memory(tmp_path):
    results = tuple(BatchResult(b, _measurement("se_resnet18_cifar", 2.0 * b), _measurement("resnet18_cifar", 1.8 * b),
                                11.1, roofline_ms=0.1 * b, baseline_roofline_ms=0.09 * b) for b in (1, 4, 16))
    report = ProfileReport(make_config("se_resnet18_cifar"), Timing(), (32, 32), 1, "rss", results)
    target = plot_profiles([report], tmp_path / "p.svg")
    assert target.read_text().lstrip().startswith("<?xml") and "latency per run" in target.read_text()
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left beside it


def test_count_plot_without_a_path_writes_next_to_the_model_name_here(tmp_path, monkeypatch, cli):
    """As inspect's: `--plot` alone writes MODEL.count.png in the working directory, and says so."""
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["count", "se_resnet18_cifar", "--plot", "--summary"])
    assert code == 0 and "wrote se_resnet18_cifar.count.png" in err
    assert (tmp_path / "se_resnet18_cifar.count.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = cli(["count", "se_resnet18_cifar", "--plot"])
    assert code == 2 and "force" in err  # the default path is not overwritten either
    code, _, err = cli(["count", "torchvision:mobilenet_v3_small", "--input", "64", "--plot", "--summary"])
    assert code == 0 and "wrote torchvision_mobilenet_v3_small.count.png" in err
