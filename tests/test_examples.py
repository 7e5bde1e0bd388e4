"""The examples run end to end on a fresh install."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow  # sweeps the table's models
def test_senet_table10_example_runs_and_prints_the_sweep():
    result = subprocess.run([sys.executable, str(EXAMPLES / "senet_table10.py")],
                            capture_output=True, text=True, timeout=120, check=True)
    assert "| 16 | 28,088,024 | 28.1M |" in result.stdout
    assert "| 2 | 45,699,240 | 45.7M |" in result.stdout


@pytest.mark.slow  # trains a model on the digits
def test_inspect_digits_example_trains_saves_and_inspects(tmp_path):
    """One epoch on the digits (about 15 s on 2 cores), then `senet inspect` with per-class profiles."""
    result = subprocess.run([sys.executable, str(EXAMPLES / "inspect_digits.py"), "--epochs", "1", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    accuracy = float(result.stdout.split("held-out accuracy: ")[1].split()[0])
    assert accuracy > 0.5  # ten classes: chance is 0.1
    payload = json.loads((tmp_path / "gates.json").read_text())
    assert payload["images"] == 300 and payload["classes"] == [str(d) for d in range(10)]
    assert payload["architecture"]["source"] == "metadata" and payload["input"] == [16, 16]
    assert all(len(block["class_means"]) == 10 for block in payload["blocks"])
    assert (tmp_path / "gates.png").stat().st_size > 50_000
    assert "| layer4.1 | se.gate (channel) | 4 | 512 |" in result.stdout


@pytest.mark.slow  # trains a model on the digits, then prunes it four times
def test_prune_digits_example_trains_and_prunes_four_ways(tmp_path):
    """One epoch on the digits, then four `senet prune` runs on the held-out digits, one Markdown row each."""
    result = subprocess.run([sys.executable, str(EXAMPLES / "prune_digits.py"), "--epochs", "1", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| fold") or line.startswith("| remove")]
    assert [row.split(" | ")[0] for row in rows] == ["| fold stage 1", "| fold stage 4", "| remove stage 4",
                                                     "| fold candidates"]
    report = json.loads((tmp_path / "prune1.json").read_text())
    assert report["before"]["images"] == 300 and report["classes"] == [str(d) for d in range(10)]
    assert report["saved"]["params"] == 2 * 33_312  # stage 4's two SE blocks: 2 x (512*32 + 32 + 32*512 + 512)
    assert report["saved"]["kernels"] == 2 * 6  # each SE: mean, conv, relu, conv, sigmoid, mul
