"""Issue #4 on a GPU: what SE, ECA and CBAM cost on ResNet-50, and timm's models under the same harness.

For each precision and batch size, six models are timed in ONE interleaved `time_modules` call
(the harness behind `senet profile`: round-robin, one run each per round, device synchronised before
every host clock read, cuDNN autotuning on):

    senet:  resnet50, se_resnet50, eca_resnet50, cbam_resnet50
    timm:   resnet50, seresnet50

Precisions: fp32 (float32 weights; PyTorch's default TF32 convolutions), amp (float16 autocast),
amp+cl (autocast and channels-last, the setting timm's own benchmark favours). Overheads are against
the backbone of the same library measured in the same rounds; "senet/timm" compares the two
libraries' builds of the same architecture (SE-ResNet-50 and ResNet-50 are the same networks in
both, so a ratio far from 1 would point at the harness or the build, not the attention).

Then a cross-check of the harness itself: torch.utils.benchmark's `Timer.blocked_autorange` timing
se_resnet50 and resnet50 on the same GPU, against `profile()`'s median.

Run: python benchmarks/profile_cuda.py [--repeats 2] [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.utils.benchmark as tb

from senet_cli.profile import profile, time_modules
from senet_cli.zoo import build_model

OURS = ("resnet50", "se_resnet50", "eca_resnet50", "cbam_resnet50")
TIMM = ("resnet50", "seresnet50")
PRECISIONS = {"fp32": {}, "amp": {"amp": True}, "amp+cl": {"amp": True, "channels_last": True}}


def build_all() -> dict[str, torch.nn.Module]:
    import timm

    torch.manual_seed(0)
    models = {f"senet {name}": build_model(name) for name in OURS}
    models.update({f"timm {name}": timm.create_model(name, pretrained=False) for name in TIMM})
    return models


def backbone_of(key: str) -> str | None:
    library, name = key.split(" ")
    if name == "resnet50":
        return None
    return f"{library} resnet50"


def run_config(device: str, precision: str, batch: int, iters: int, warmup: int) -> dict[str, dict]:
    measured = time_modules(build_all(), batch=batch, device=device, iters=iters, warmup=warmup,
                            **PRECISIONS[precision])
    return {key: {"median": m.latency_ms.median, "p10": m.latency_ms.p10, "p90": m.latency_ms.p90,
                  "throughput": m.throughput, "peak_memory_mb": m.peak_memory_mb}
            for key, m in measured.items()}


def timer_cross_check(device: str, batch: int, iters: int) -> list[tuple[str, float, float]]:
    rows = []
    for name in ("resnet50", "se_resnet50"):
        ours = profile(name, device=device, batches=(batch,), iters=iters, warmup=20).results[0].model.latency_ms.median
        model = build_model(name).to(device).eval()
        x = torch.randn(batch, 3, 224, 224, device=device)
        torch.backends.cudnn.benchmark = True  # as profile() does on CUDA
        with torch.inference_mode():
            for _ in range(20):
                model(x)
        timer = tb.Timer("with torch.inference_mode(): model(x)", globals={"model": model, "x": x, "torch": torch},
                         num_threads=torch.get_num_threads())
        ref = timer.blocked_autorange(min_run_time=2.0).median * 1000.0
        torch.backends.cudnn.benchmark = False
        rows.append((name, ours, ref))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="rerun every configuration this many times")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--iters", default="200,100", help="timed runs at batch 1, and at larger batches")
    parser.add_argument("--device", default="cuda", help="cpu only to smoke-test this script")
    parser.add_argument("--output", help="write every measurement as JSON here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("profile_cuda.py: needs a CUDA GPU")
    import timm

    if args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        name = props.name
        print(f"{props.name}, {props.multi_processor_count} SMs, {props.total_memory / 2**30:.0f} GiB; torch "
          f"{torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, timm "
          f"{timm.__version__}; TF32 conv {torch.backends.cudnn.allow_tf32}, TF32 matmul "
          f"{torch.backends.cuda.matmul.allow_tf32}")
    else:
        name = "cpu"
    small_iters, large_iters = (int(n) for n in args.iters.split(","))
    batches = [int(b) for b in args.batches.split(",")]
    records = []
    started = time.perf_counter()
    for repeat in range(args.repeats):
        for precision in PRECISIONS:
            for batch in batches:
                iters = small_iters if batch == 1 else large_iters
                records.append({"repeat": repeat, "precision": precision, "batch": batch, "iters": iters,
                                "models": run_config(args.device, precision, batch, iters, warmup=20)})
                if args.device == "cuda":
                    torch.cuda.empty_cache()
    print(f"timed in {time.perf_counter() - started:.0f} s; medians below are the median over "
          f"{args.repeats} repeats, spread = (max - min) / median of the repeats' medians")

    header = (f"{'precision':<8}{'batch':>6}  {'model':<20}{'median ms':>10}{'p10-p90 ms':>16}{'images/s':>10}"
              f"{'peak MB':>9}{'overhead':>10}{'spread':>8}{'senet/timm':>11}")
    print(header)
    summary = []
    for precision in PRECISIONS:
        for batch in batches:
            group = [r["models"] for r in records if r["precision"] == precision and r["batch"] == batch]
            medians = {key: statistics.median(g[key]["median"] for g in group) for key in group[0]}
            for key in group[0]:
                runs = [g[key]["median"] for g in group]
                last = group[-1][key]
                base = backbone_of(key)
                overhead = (medians[key] - medians[base]) / medians[base] * 100 if base else None
                twin = {"senet resnet50": "timm resnet50", "senet se_resnet50": "timm seresnet50"}.get(key)
                vs_timm = medians[key] / medians[twin] if twin else None
                spread = (max(runs) - min(runs)) / statistics.median(runs) * 100
                summary.append({"precision": precision, "batch": batch, "model": key, "median_ms": medians[key],
                                "overhead_pct": overhead, "spread_pct": spread, "senet_over_timm": vs_timm,
                                "peak_memory_mb": last["peak_memory_mb"]})
                print(f"{precision:<8}{batch:>6}  {key:<20}{medians[key]:>10.3f}"
                      f"{last['p10']:>8.3f}-{last['p90']:<7.3f}{batch / medians[key] * 1000:>10.1f}"
                      f"{last['peak_memory_mb'] or 0:>9.1f}{'' if overhead is None else f'{overhead:+.1f}%':>10}"
                      f"{spread:>7.1f}%{'' if vs_timm is None else f'{vs_timm:.3f}':>11}")

    print("\nharness vs torch.utils.benchmark.Timer.blocked_autorange(min_run_time=2), fp32:")
    checks = []
    for batch in batches:
        for name, ours, ref in timer_cross_check(args.device, batch, large_iters):
            checks.append({"model": name, "batch": batch, "profile_ms": ours, "timer_ms": ref})
            print(f"  {name:<12} batch {batch:>3}: profile {ours:8.3f} ms, Timer {ref:8.3f} ms, ratio {ours / ref:.3f}")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"device": name, "torch": torch.__version__, "records": records, "summary": summary,
                       "timer_check": checks}, handle, indent=1)


if __name__ == "__main__":
    main()
