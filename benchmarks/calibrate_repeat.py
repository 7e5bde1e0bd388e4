"""Issue #22, point 1: do repeated `senet calibrate` runs on one machine agree (goal: within 10%)?

Calibrates N times in a row (same device, threads and dtype) and prints, per measured point, the
spread of its rate over the runs (max / min - 1), then the median and worst spread over all points,
by kind, and the per-op and cold-op costs. `uptime` before and after: on a shared machine the load moves
the rates.

It also tells a machine that changed speed from a calibration that scatters: each run's shift (the
median over all points of its time / the first run's), the spread once each run's shift is divided
out, each run's own speed probe (the device file's probe_us, timed after each of its rounds), and the
probe again outside calibrate (machine_probe.py, before and after every run).
On this project's VM the whole machine runs 5-15% faster or slower for tens of seconds at a time with
nothing else running; a uniform shift of all points is that, not calibrate's scatter.

Run: python benchmarks/calibrate_repeat.py [--device cpu] [--threads 1] [--runs 2] [--json out.json]
     [--glibc-defaults]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from machine_probe import probe_ms

from senet_cli.profile.calibrate import calibrate
from senet_cli.profile.pages import allocator_text, keep_freed_memory


def spread(values: list[float]) -> float:
    """max / min - 1 of positive values (0 for one value)."""
    return max(values) / min(values) - 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=None, help="calibrate's interleaved rounds (default its own)")
    parser.add_argument("--min-run-time", type=float, default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--glibc-defaults", action="store_true",
                        help="calibrate with glibc's allocator as it comes (default: keep what it frees, as `senet "
                        "calibrate` does)")
    args = parser.parse_args()
    if not args.glibc_defaults:
        keep_freed_memory()
    print(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    options = {key: value for key, value in (("rounds", args.rounds), ("min_run_time", args.min_run_time))
               if value is not None}
    probes = [probe_ms(args.threads)]
    runs = []
    for _ in range(args.runs):
        runs.append(calibrate(args.device, threads=args.threads, **options))
        probes.append(probe_ms(args.threads))
    print(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    print(f"{runs[0].name}, {args.device}, {args.threads} thread(s), allocator: {allocator_text()}, "
          f"{args.runs} runs of "
          f"{', '.join(f'{run.seconds:.1f}' for run in runs)} s")
    print("| point | kind | median us | time spread | rates | rate spread | worst in-run spread |")
    print("| --- | --- | --- | ---: | --- | ---: | ---: |")
    spreads: dict[str, list[float]] = {}
    time_spreads: list[float] = []
    for points in zip(*(run.points for run in runs), strict=True):
        rates = [point.rate for point in points]
        times = [point.median_us for point in points]
        spreads.setdefault(points[0].kind, []).append(spread(rates))
        time_spreads.append(spread(times))
        print(f"| {points[0].label} | {points[0].kind} | {' / '.join(f'{t:.4g}' for t in times)} | "
              f"{spread(times) * 100:.1f}% | {' / '.join(f'{r:.4g}' for r in rates)} | {spread(rates) * 100:.1f}% | "
              f"{max(point.spread for point in points) * 100:.1f}% |")
    every = [value for values in spreads.values() for value in values]
    op_cost = spread([run.op_cost_us for run in runs])
    print(f"\nper-op cost {' / '.join(f'{run.op_cost_us:.2f}' for run in runs)} us: spread {op_cost * 100:.1f}%")
    print(f"after-op fraction {' / '.join(f'{run.after_op_fraction:.2%}' for run in runs)}")
    if all(run.cold_op_us > 0 for run in runs):
        print(f"cold-op cost {' / '.join(f'{run.cold_op_us:.1f}' for run in runs)} us: spread "
              f"{spread([run.cold_op_us for run in runs]) * 100:.1f}%")
    if all(run.fresh_page_us_per_mib > 0 for run in runs):
        print(f"fresh-page cost {' / '.join(f'{run.fresh_page_us_per_mib:.0f}' for run in runs)} us per MiB: spread "
              f"{spread([run.fresh_page_us_per_mib for run in runs]) * 100:.1f}%")
    for kind, values in spreads.items():
        print(f"{kind}: {len(values)} points, median spread {statistics.median(values) * 100:.1f}%, "
              f"worst {max(values) * 100:.1f}%")
    print(f"median time per point: median spread {statistics.median(time_spreads) * 100:.1f}%, worst "
          f"{max(time_spreads) * 100:.1f}%; within 10%: {sum(v <= 0.10 for v in time_spreads)} of {len(time_spreads)}")
    print(f"rates, all {len(every)} points: median spread {statistics.median(every) * 100:.1f}%, worst "
          f"{max(every) * 100:.1f}%; within 10%: {sum(v <= 0.10 for v in every)} of {len(every)} (goal: all)")
    shifts = [statistics.median(point.median_us / first.median_us for point, first in zip(run.points, runs[0].points,
                                                                                          strict=True))
              for run in runs]
    shift_free = [spread([point.median_us / shift for point, shift in zip(points, shifts, strict=True)])
                  for points in zip(*(run.points for run in runs), strict=True)]
    print(f"each run's shift (median over points of its time / run 1's): "
          f"{' / '.join(f'{shift:.3f}' for shift in shifts)}; probe (a fixed "
          f"matmul, before, between and after the runs): "
          f"{' / '.join(f'{probe:.3f}' for probe in probes)} ms; in-run probe (probe_us / run 1's): "
          f"{' / '.join(f'{run.probe_us / runs[0].probe_us:.3f}' if runs[0].probe_us else 'n/a' for run in runs)}")
    print(f"with each run's shift divided out: median spread {statistics.median(shift_free) * 100:.1f}%, worst "
          f"{max(shift_free) * 100:.1f}%; within 10%: {sum(v <= 0.10 for v in shift_free)} of {len(shift_free)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump([run.to_dict() for run in runs], out, indent=1)


if __name__ == "__main__":
    main()
