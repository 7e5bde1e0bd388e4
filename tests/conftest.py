"""Fixtures shared by the test modules: the in-process CLI, and the checkpoints and images that
loading, detection and `inspect` are tested on."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from senet_cli import build_model
from senet_cli.cli.app import main

MODEL = "se_resnet18_cifar"  # the model se_state and constant_model are built from


@pytest.fixture(scope="session", autouse=True)
def empty_outside_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test builds the index of every timm/torchvision model (minutes) or touches the user's cache:
    XDG_CACHE_HOME (inherited by the CLI's subprocesses) is a temp dir holding an empty index, so a raw
    file no zoo model fits is refused at once. tests/test_outside_stages.py builds small ones."""
    from senet_cli.outside import index

    cache = tmp_path_factory.mktemp("xdg-cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    index.save_index(index.Index((), (), index.index_path(), None))
    yield cache
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """Run the CLI in-process: cli(argv) -> (exit code, stdout, stderr)."""

    def invoke(argv: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return invoke


@pytest.fixture(scope="module")
def se_state() -> dict[str, torch.Tensor]:
    """se_resnet18_cifar at ratio 8 and 7 classes: options detection must recover."""
    torch.manual_seed(0)
    return build_model(MODEL, ratio=8, num_classes=7).state_dict()


@pytest.fixture(scope="module")
def constant_model() -> torch.nn.Module:
    """SE gates that ignore the image: fc2 weights 0, biases b_c spread over [-4, 4], so gate_c = sigmoid(b_c)."""
    torch.manual_seed(1)
    model = build_model(MODEL)
    for name, module in model.named_modules():
        if name.endswith(".se"):
            module.fc2.weight.data.zero_()
            channels = module.fc2.bias.numel()
            module.fc2.bias.data = torch.linspace(-4, 4, channels)
    return model


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """An ImageFolder tree: classes 'cat' (3 images) and 'dog' (2), random pixels."""
    root = tmp_path_factory.mktemp("images")
    generator = np.random.default_rng(0)
    for label, count in (("cat", 3), ("dog", 2)):
        (root / label).mkdir()
        for index in range(count):
            pixels = generator.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{index}.png")
    return root
