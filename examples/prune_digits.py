"""Prune the digits model of inspect_digits.py: fold or remove SE blocks, and measure what it costs.

The SENet paper (Sec. 7.2) removed the last stage's SE blocks of SE-ResNet-50 for about 4% fewer
parameters at a marginal loss, and found the first stage's gates the same for every class. This
example trains se_resnet18_cifar on scikit-learn's digits (as inspect_digits.py does), then runs

    senet prune CHECKPOINT OUT --stages 1 --data TEST_DIR            # fold stage 1
    senet prune CHECKPOINT OUT --stages 4 --data TEST_DIR            # fold stage 4
    senet prune CHECKPOINT OUT --stages 4 --mode remove --data ...   # the paper's removal
    senet prune CHECKPOINT OUT --candidates --data TEST_DIR          # inspect's constant gates

on the 300 held-out digits, and prints one Markdown row per run: accuracy before and after,
agreement with the original, logit change, and what count says was saved (parameters, elementwise
ops, bytes moved, kernels launched).

    pip install scikit-learn     # the one extra this example needs
    python examples/prune_digits.py --epochs 6 --out digits_prune
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inspect_digits import load_digits_tensors, train, write_image_folder  # noqa: E402

from senet_cli import save_checkpoint  # noqa: E402

RUNS = (
    ("fold stage 1", ["--stages", "1"]),
    ("fold stage 4", ["--stages", "4"]),
    ("remove stage 4", ["--stages", "4", "--mode", "remove"]),
    ("fold candidates", ["--candidates"]),
)


def row(label: str, report: dict) -> str:
    before, after, saved, was = report["before"], report["after"], report["saved"], report["cost_before"]
    blocks = ", ".join(b["block"] for b in report["blocks"])
    return (f"| {label} | {blocks} | {100 * before['top1']:.1f}% -> {100 * after['top1']:.1f}% | "
            f"{100 * after['agreement']:.1f}% | {after['max_logit_change']:.3g} / {after['mean_logit_change']:.3g} | "
            f"{saved['params']:,} ({100 * saved['params'] / was['params']:.2f}%) | "
            f"{saved['elementwise_ops']:,} ({100 * saved['elementwise_ops'] / was['elementwise_ops']:.1f}%) | "
            f"{saved['bytes'] / 1e6:.2f} ({100 * saved['bytes'] / was['bytes']:.1f}%) | "
            f"{saved['kernels']} of {was['kernels']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--size", type=int, default=16, help="input side the digits are resized to")
    parser.add_argument("--out", type=Path, default=Path("digits_prune"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    images, labels, test_images, test_labels = load_digits_tensors(args.size, seed=0)
    mean, std = float(images.mean()), float(images.std())
    model = train(images, labels, args.epochs, mean, std)
    test_dir = args.out / "digits_test"
    write_image_folder(test_images, test_labels, test_dir)
    checkpoint = save_checkpoint(model, args.out / "se_resnet18_digits.pth", force=True,
                                 preprocess={"input": args.size, "mean": [mean] * 3, "std": [std] * 3})
    lines = ["| run | blocks | top-1 before -> after | agreement | max / mean logit change | params saved | "
             "elementwise ops saved | MB moved saved | kernels saved |",
             "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for index, (label, flags) in enumerate(RUNS):
        report = args.out / f"prune{index}.json"
        command = [sys.executable, "-m", "senet_cli", "prune", str(checkpoint), str(args.out / f"pruned{index}.pth"),
                   *flags, "--data", str(test_dir), "--output", str(report), "--force"]
        print("$ senet " + " ".join(command[3:]), flush=True)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            lines.append(f"| {label} | {result.stderr.strip()} | | | | | | | |")
            continue
        lines.append(row(label, json.loads(report.read_text())))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
