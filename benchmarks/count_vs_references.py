"""Benchmark `senet count` against fvcore and thop, measured in the same run.

Prints, for each model: our counting time vs fvcore's and thop's (median of --repeats, seconds, and
the ratio), then two whole-process checks from issue #3:
  * `senet count se_resnet152` wall time vs `python -c "import torch, torchvision"` (target <= 1.1x);
  * peak resident memory added by counting a 64x3x1024x1024 input instead of 1x3x32x32 (target < 200 MB).

Run: python benchmarks/count_vs_references.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from functools import partial

MODELS = ("resnet50", "se_resnet50", "cbam_resnet50", "se_resnet152")


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(repeats: int) -> None:
    import logging

    import torch
    from fvcore.nn import FlopCountAnalysis
    from thop import profile

    import senet_cli
    from senet_cli.count.dispatch import SHAPE_MEMO

    def cold_count(name: str) -> None:
        SHAPE_MEMO.clear()  # as in a fresh CLI process: no shapes memoised yet
        senet_cli.count(name)

    def run_fvcore(model: torch.nn.Module, x: torch.Tensor) -> None:
        with torch.no_grad():
            FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()

    def run_thop(name: str, x: torch.Tensor) -> None:
        fresh = senet_cli.build_model(name).eval()  # thop adds buffers; building is part of its cost here
        with torch.no_grad():
            profile(fresh, inputs=(x,), verbose=False)

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    print(f"{'model':<16}{'ours (s)':>10}{'fvcore (s)':>12}{'thop (s)':>10}{'fvcore/ours':>13}{'thop/ours':>11}")
    for name in MODELS:
        ours = median_seconds(partial(cold_count, name), repeats)
        model = senet_cli.build_model(name).eval()
        x = torch.randn(1, 3, 224, 224)
        fv = median_seconds(partial(run_fvcore, model, x), repeats)
        th = median_seconds(partial(run_thop, name, x), repeats)
        print(f"{name:<16}{ours:>10.3f}{fv:>12.3f}{th:>10.3f}{fv / ours:>13.1f}{th / ours:>11.1f}")
    print("ours = senet_cli.count with an empty shape memo (model and baseline built on meta and traced); "
          "fvcore = JIT trace "
          "of a built CPU model; thop = build + hooked CPU forward. Medians of", repeats, "runs.")


def process_times(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + sys) of one run of `argv`."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def peak_rss_mb(side: int, batch: int) -> float:
    code = (
        "import resource, senet_cli\n"
        f"senet_cli.count('se_resnet50', input_size={side}, batch={batch})\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def whole_process(repeats: int) -> None:
    """Interleave the two commands (so machine drift hits both) and compare medians."""
    senet = [sys.executable, "-m", "senet_cli", "count", "se_resnet152"]
    baseline = [sys.executable, "-c", "import torch, torchvision"]
    process_times(baseline)  # warm the file cache
    ours, ref = [], []
    for _ in range(repeats):
        ours.append(process_times(senet))
        ref.append(process_times(baseline))
    for label, index in (("wall", 0), ("CPU (user+sys)", 1)):
        a = statistics.median(t[index] for t in ours)
        b = statistics.median(t[index] for t in ref)
        print(f"{label}: senet count se_resnet152 {a:.2f} s; import torch, torchvision {b:.2f} s; "
              f"ratio {a / b:.3f} (target <= 1.1; medians of {repeats} interleaved runs)")
    small, large = peak_rss_mb(32, 1), peak_rss_mb(1024, 64)
    print(f"peak RSS counting se_resnet50: 1x3x32x32 {small:.0f} MB, 64x3x1024x1024 {large:.0f} MB; "
          f"added {large - small:+.0f} MB (target < 200; the absolute figure is mostly torch's own libraries)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    in_process(args.repeats)
    whole_process(args.repeats)
