"""Train a small SE network on real data, save it with metadata, and look inside with `senet inspect`.

The data is scikit-learn's handwritten digits (1,797 8x8 images of 0-9, shipped inside the package:
nothing is downloaded). se_resnet18_cifar is trained for a few epochs on CPU at 16x16 input, the
checkpoint is saved with `save_checkpoint` (which records the model name, options and
preprocessing), the held-out digits are written as an ImageFolder tree, and

    senet inspect CHECKPOINT --data TEST_DIR --plot gates.png --output gates.json

draws the SENet paper's Fig. 6 view for it: the mean gate per channel, one line per digit class.

    pip install scikit-learn     # the one extra this example needs
    python examples/inspect_digits.py --epochs 6 --out digits_run
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from senet_cli import build_model, save_checkpoint

MODEL = "se_resnet18_cifar"


def load_digits_tensors(size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Training images at `size`x`size` (3 channels, in [0, 1]) and labels, plus the raw test split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install scikit-learn")
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.images))
    test, train = order[:300], order[300:]
    pixels = torch.tensor(digits.images[train] / 16.0, dtype=torch.float32)[:, None]
    images = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    return images, torch.tensor(digits.target[train]), digits.images[test], digits.target[test]


def train(images: torch.Tensor, labels: torch.Tensor, epochs: int, mean: float, std: float) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(MODEL)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = epochs * ((len(images) + 63) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=0.05, total_steps=steps)
    model.train()
    for epoch in range(epochs):
        started, seen, correct = time.perf_counter(), 0, 0
        for batch in torch.randperm(len(images)).split(64):
            x, y = (images[batch] - mean) / std, labels[batch]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            seen += len(batch)
            correct += int((logits.argmax(1) == y).sum())
        print(f"epoch {epoch + 1}/{epochs}: train accuracy {correct / seen:.3f}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return model.eval()


def write_image_folder(images: np.ndarray, labels: np.ndarray, root: Path) -> None:
    """The held-out digits as root/<digit>/<index>.png (8x8 grey, values 0-16 scaled to 0-255)."""
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image * 255 / 16).astype(np.uint8), mode="L").save(folder / f"{index}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--size", type=int, default=16, help="input side the digits are resized to")
    parser.add_argument("--out", type=Path, default=Path("digits_run"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    images, labels, test_images, test_labels = load_digits_tensors(args.size, seed=0)
    mean, std = float(images.mean()), float(images.std())
    model = train(images, labels, args.epochs, mean, std)

    test_dir = args.out / "digits_test"
    write_image_folder(test_images, test_labels, test_dir)
    with torch.inference_mode():
        pixels = torch.tensor(test_images / 16.0, dtype=torch.float32)[:, None]
        x = F.interpolate(pixels, size=(args.size,) * 2, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
        accuracy = float((model((x - mean) / std).argmax(1) == torch.tensor(test_labels)).float().mean())
    print(f"held-out accuracy: {accuracy:.3f} on {len(test_labels)} digits")

    checkpoint = save_checkpoint(model, args.out / "se_resnet18_digits.pth", force=True,
                                 preprocess={"input": args.size, "mean": [mean] * 3, "std": [std] * 3},
                                 extra={"test_accuracy": accuracy, "epochs": args.epochs})
    command = [sys.executable, "-m", "senet_cli", "inspect", str(checkpoint), "--data", str(test_dir),
               "--plot", str(args.out / "gates.png"), "--output", str(args.out / "gates.json"), "--force"]
    print("$ senet " + " ".join(command[3:]), flush=True)
    subprocess.run(command, check=True)
    subprocess.run(command[:-5] + ["--format", "md"], check=True)


if __name__ == "__main__":
    main()
