"""inspect's cost: its throughput against plain inference on the same images, and its memory vs images.

1. Throughput. For each model, a checkpoint is saved, then, in alternating rounds, (a) plain
   inference: the same model loaded the same way, run under inference_mode over the same image
   stream with no hooks, and (b) `senet_cli.inspect` on that checkpoint, timed from its first to
   its last progress callback (the image loop only: loading and detection are excluded from both).
   The ratio is inspect images/s over plain images/s, median of the rounds (target >= 0.85).
2. Memory. `senet inspect` runs in fresh processes on 100, 1,000 and 10,000 synthetic images; the
   peak resident set of each (ru_maxrss) should not grow with the number of images.

    python benchmarks/inspect_vs_inference.py [--rounds 3] [--skip-memory]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from senet_cli import build_model, inspect, load_checkpoint, save_checkpoint
from senet_cli.checkpoint.recognise import materialize, resolve
from senet_cli.inspect.images import open_images
from senet_cli.inspect.results import Preprocess

CASES = [  # model, input side, batch, images
    ("se_resnet18_cifar", 32, 64, 512),
    ("se_resnet18", 224, 16, 48),
    ("cbam_resnet18", 224, 16, 48),
    ("se_resnet50", 224, 16, 32),
]


def plain_rate(checkpoint: Path, size: int, batch: int, images: int) -> float:
    loaded = load_checkpoint(checkpoint)
    model = materialize(resolve(loaded))
    source = open_images("synthetic", Preprocess((size, size)), limit=images, batch=batch)
    started = time.perf_counter()
    with torch.inference_mode():
        for x, _ in source:
            model(x)
    return images / (time.perf_counter() - started)


def inspect_rate(checkpoint: Path, size: int, batch: int, images: int) -> float:
    marks: list[float] = []
    inspect(checkpoint, data="synthetic", limit=images, batch=batch, input_size=size,
            on_batch=lambda done, total: marks.append(time.perf_counter()))
    return images / (marks[-1] - marks[0])


def throughput(rounds: int, folder: Path) -> None:
    print("| model | input | batch | images | plain images/s | inspect images/s | ratio | ratio range |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, size, batch, images in CASES:
        torch.manual_seed(0)
        checkpoint = save_checkpoint(build_model(name), folder / f"{name}.pth", force=True)
        inspect_rate(checkpoint, size, batch, batch)  # warm-up: first-call costs of both paths
        plain, hooked = [], []
        for _ in range(rounds):
            plain.append(plain_rate(checkpoint, size, batch, images))
            hooked.append(inspect_rate(checkpoint, size, batch, images))
        ratios = [h / p for h, p in zip(hooked, plain, strict=True)]
        print(f"| {name} | {size} | {batch} | {images} | {statistics.median(plain):.1f} | "
              f"{statistics.median(hooked):.1f} | {statistics.median(ratios):.3f} | "
              f"{min(ratios):.3f}-{max(ratios):.3f} |", flush=True)


def memory(folder: Path) -> None:
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model("se_resnet18_cifar"), folder / "memory.pth", force=True)
    print("\n| images | peak RSS (MB) | wall (s) |")
    print("| ---: | ---: | ---: |")
    for images in (100, 1_000, 10_000):
        code = (
            "import resource\nfrom senet_cli import inspect\n"
            f"inspect({str(checkpoint)!r}, data='synthetic', limit={images}, batch=100)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        )
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        peak_mb = int(result.stdout.split()[-1]) / 1024
        print(f"| {images:,} | {peak_mb:.0f} | {time.perf_counter() - started:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    with tempfile.TemporaryDirectory() as folder:
        throughput(args.rounds, Path(folder))
        if not args.skip_memory:
            memory(Path(folder))


if __name__ == "__main__":
    main()
