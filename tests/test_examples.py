"""The examples run end to end on a fresh install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_senet_table10_example_runs_and_prints_the_sweep():
    result = subprocess.run([sys.executable, str(EXAMPLES / "senet_table10.py")],
                            capture_output=True, text=True, timeout=120, check=True)
    assert "| 16 | 28,088,024 | 28.1M |" in result.stdout
    assert "| 2 | 45,699,240 | 45.7M |" in result.stdout
