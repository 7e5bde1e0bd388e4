"""Issue #16: how close does count's roofline bound come to measured latency, and does it predict the
attention overhead?

For each precision and batch size, the models (default: resnet50, se_resnet50, eca_resnet50,
cbam_resnet50) are timed in ONE interleaved `time_modules` call (the `senet profile` harness), and
each is counted with `count(..., roofline=DEVICE)` at the same batch, input and precision. Printed
per model: the measured median, the bound, measured / bound, and the overhead against the first
model (the plain backbone) measured and predicted by the bound.

Device figures: on CUDA, the preset of the GPU (count/roofline.py) unless --roofline is given. On
CPU, by default this machine's own figures are measured first and used (so the bound is of this
machine, not of the nominal `cpu` preset): the peak as the best of a few float32 2048x2048 matmuls
at the thread count used for timing, the bandwidth as the best of a few copies of a 256 MB tensor
(read + write = 2 x its size per copy).

Run: python benchmarks/roofline_vs_measured.py [--device cuda] [--batches 1,64] [--precisions fp32,amp]
     [--models resnet50,se_resnet50,...] [--iters 100] [--warmup 20] [--roofline h100|PEAK,BW]
"""

from __future__ import annotations

import argparse
import time

import torch

from senet_cli.count import count
from senet_cli.count.roofline import PRESETS, DevicePeaks, parse_device, preset_for_gpu
from senet_cli.profile import time_modules
from senet_cli.zoo import build_model, input_shape, make_config

MODELS = ("resnet50", "se_resnet50", "eca_resnet50", "cbam_resnet50")
PRECISIONS = {"fp32": {}, "amp": {"amp": True}}


def measure_cpu(threads: int) -> DevicePeaks:
    """This machine's float32 matmul peak and copy bandwidth, best of a few tries."""
    torch.set_num_threads(threads)
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    matmul = min(_seconds(lambda: a @ b) for _ in range(5))
    big = torch.empty(64 * 2**20)  # 256 MB of float32
    big.fill_(1.0)
    copy = torch.empty_like(big)
    copy.copy_(big)
    moved = min(_seconds(lambda: copy.copy_(big)) for _ in range(5))
    peak = 2 * n**3 / matmul / 1e12
    bandwidth = 2 * big.numel() * 4 / moved / 1e9
    return DevicePeaks(f"this CPU ({threads} threads)", peak, None, peak, bandwidth,
                       f"measured: float32 {n}x{n} matmul {peak * 1e3:.0f} GFLOPS, 256 MB copy {bandwidth:.1f} GB/s")


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--precisions", default="fp32,amp")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--input", type=int, default=None, help="input side (default: the first model's, "
                        "224, or 32 for _cifar models)")
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--roofline", default=None, help=f"{', '.join(PRESETS)} or PEAK_TFLOPS,BANDWIDTH_GBS")
    args = parser.parse_args()

    models = args.models.split(",")
    if args.input is None:
        args.input = input_shape(make_config(models[0]), None, 1)[-1]
    if args.roofline is not None:
        peaks = parse_device(args.roofline)
    elif args.device == "cuda":
        peaks = preset_for_gpu(torch.cuda.get_device_name())
        if peaks is None:
            raise SystemExit(f"no preset for {torch.cuda.get_device_name()}: give --roofline PEAK,BW")
    else:
        peaks = measure_cpu(args.threads)
    print(f"device {args.device}: {torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'}; "
          f"torch {torch.__version__}; bound on {peaks.name}: {peaks.source}")

    for precision in args.precisions.split(","):
        timing = PRECISIONS[precision]
        for batch in (int(b) for b in args.batches.split(",")):
            torch.manual_seed(0)
            modules = {name: build_model(name) for name in models}
            measured = time_modules(modules, batch=batch, input_size=(args.input, args.input), device=args.device,
                                    iters=args.iters, warmup=args.warmup,
                                    threads=args.threads if args.device == "cpu" else None, **timing)
            bounds = {}
            for name in models:
                report = count(make_config(name), input_size=args.input, batch=batch, amp=bool(timing.get("amp")),
                               roofline=peaks)
                bounds[name] = report.roofline
            peak = bounds[models[0]].peak_tflops
            print(f"\n{precision}, batch {batch}, input {args.input}: peak {peak:g} TFLOPS, "
                  f"{peaks.bandwidth_gbs:g} GB/s; {measured[models[0]].iterations} runs each")
            print("| model | measured median (ms) | p10-p90 (ms) | bound (ms) | measured / bound | memory-bound share "
                  "| overhead measured | overhead predicted |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            base = measured[models[0]].latency_ms.median
            base_bound = bounds[models[0]].ms
            for name in models:
                stats, bound = measured[name].latency_ms, bounds[name]
                over = "" if name == models[0] else f"{(stats.median - base) / base * 100:+.1f}%"
                predicted = "" if name == models[0] else f"{(bound.ms - base_bound) / base_bound * 100:+.1f}%"
                print(f"| {name} | {stats.median:.3f} | {stats.p10:.3f}-{stats.p90:.3f} | {bound.ms:.3f} | "
                      f"{stats.median / bound.ms:.1f}x | {bound.memory_bound_ms / bound.ms * 100:.0f}% | {over} | "
                      f"{predicted} |")


if __name__ == "__main__":
    main()
