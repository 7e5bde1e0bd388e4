"""`senet inspect` under torchrun: each image read exactly once, the merged report equal to the
one-process report on the same images, a failing rank ending the run in one line from rank 0."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from senet_cli import build_model, save_checkpoint
from senet_cli.inspect.images import open_images, shard_positions
from senet_cli.inspect.results import Preprocess


@pytest.mark.parametrize("count, world_size", [(15, 2), (7, 3), (4, 4), (100, 8)])
def test_shards_take_every_image_exactly_once(count, world_size):
    shards = [shard_positions(count, (rank, world_size)) for rank in range(world_size)]
    assert sorted(i for shard in shards for i in shard) == list(range(count))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # no padding: sizes differ by one at most


def test_synthetic_shards_are_the_one_process_stream_split():
    preprocess = Preprocess((8, 8))
    whole = torch.cat([images for images, _ in open_images("synthetic", preprocess, limit=10, batch=4)])
    parts = [open_images("synthetic", preprocess, limit=10, batch=4, shard=(rank, 3)) for rank in range(3)]
    assert [part.count for part in parts] == [4, 3, 3] and all(part.total == 10 for part in parts)
    for rank, part in enumerate(parts):
        assert torch.equal(torch.cat([images for images, _ in part]), whole[rank::3])
    assert torch.equal(parts[2].head(), whole[:4])  # the whole list's first batch, on every rank


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    """15 random 40x40 PNGs in 3 classes, and an se_resnet18_cifar checkpoint with a ReLU gate (an
    unbounded gate: its histogram range comes from the first batch, the hardest case to merge)."""
    root = tmp_path_factory.mktemp("distributed")
    generator = np.random.default_rng(0)
    for label, count in (("cat", 6), ("dog", 5), ("eel", 4)):
        (root / "images" / label).mkdir(parents=True)
        for index in range(count):
            pixels = generator.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "images" / label / f"{index}.png")
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model("se_resnet18_cifar", gate="relu"), root / "se.pth")
    return root, checkpoint


def _senet(args: list[str], processes: int | None) -> subprocess.CompletedProcess[str]:
    """`senet ...` in a fresh process, or under torchrun with `processes` ranks on this host. One
    thread per process, as torchrun sets, so that every image's arithmetic is the same in both."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "senet_cli"]
    if processes is not None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node",
                    str(processes), "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "senet_cli"]
    return subprocess.run(launcher + args, capture_output=True, text=True, env=environment, timeout=240)


@pytest.mark.slow  # launches torchrun
def test_two_processes_give_the_one_process_report(dataset):
    root, checkpoint = dataset
    reports = {}
    for processes in (None, 2):
        target = root / f"report-{processes}.json"
        done = _senet(["inspect", str(checkpoint), "--data", str(root / "images"), "--batch", "4",
                       "--output", str(target)], processes)
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""  # rank 1 stays quiet; rank 0 writes the file
        reports[processes] = json.loads(target.read_text())
    one, two = reports[None], reports[2]
    assert "distributed" not in one
    assert two["distributed"] == {"backend": "gloo", "world_size": 2, "images_per_rank": [8, 7]}
    assert one["images"] == two["images"] == 15 and one["classes"] == two["classes"]
    assert len(one["blocks"]) == len(two["blocks"]) == 8
    for a, b in zip(one["blocks"], two["blocks"], strict=True):
        assert (a["name"], a["gate"], a["values"]) == (b["name"], b["gate"], b["values"])
        assert a["histogram"] == b["histogram"]  # edges (set from the first batch) and counts, exactly
        assert (a["below_0_1"], a["above_0_9"], a["nonfinite"]) == (b["below_0_1"], b["above_0_9"], b["nonfinite"])
        assert (a["min"], a["max"]) == (b["min"], b["max"])
        for key in ("mean", "std", "image_spread", "class_spread"):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
        assert np.allclose(a["channel_means"], b["channel_means"], rtol=1e-9, atol=1e-12)
        assert np.allclose(a["channel_stds"], b["channel_stds"], rtol=1e-9, atol=1e-12)
        for label, means in a["class_means"].items():
            assert np.allclose(means, b["class_means"][label], rtol=1e-9, atol=1e-12)
    assert [c["name"] for c in one["candidates"]] == [c["name"] for c in two["candidates"]]


@pytest.mark.slow  # launches torchrun
def test_an_unreadable_image_is_skipped_on_its_rank_and_with_strict_ends_the_run_in_one_line(dataset, tmp_path):
    root, checkpoint = dataset
    broken = tmp_path / "images"
    for label in ("cat", "dog"):
        (broken / label).mkdir(parents=True)
        for index in range(3):
            (broken / label / f"{index}.png").write_bytes((root / "images" / label / f"{index}.png").read_bytes())
    (broken / "cat" / "00bad.png").write_text("not an image")  # second in the list: rank 1's first image
    report = tmp_path / "report.json"
    done = _senet(["inspect", str(checkpoint), "--data", str(broken), "--batch", "1", "--format", "json",
                   "--output", str(report)], 2)
    assert done.returncode == 0, done.stderr
    merged = json.loads(report.read_text())
    assert merged["images"] == 6 and merged["distributed"]["images_per_rank"] == [4, 2]  # 7 listed, 1 bad
    assert merged["skipped_images"]["count"] == 1  # met by rank 1, reported by rank 0
    assert merged["skipped_images"]["first"][0]["path"].endswith("00bad.png")
    done = _senet(["inspect", str(checkpoint), "--data", str(broken), "--batch", "1", "--strict"], 2)
    ours = [line for line in done.stderr.splitlines() if line.startswith("senet:")]
    assert done.returncode != 0
    assert ours == [ours[0]] and ours[0].startswith("senet: error: rank 1 of 2 failed: image ")
    assert "00bad.png is unreadable (not in an image format PIL reads" in ours[0]
    assert "Traceback" not in done.stderr.split("senet: error:")[0]  # nothing of ours before our line


@pytest.mark.slow  # launches torchrun
def test_an_unreadable_image_in_the_first_batch_leaves_relu_histograms_equal_to_one_process(dataset, tmp_path):
    """The calibration batch (which sets an unbounded gate's histogram top: twice its largest value)
    is the one-process run's first batch less its unreadable files, on every rank. Before, it took
    `batch` readable images, one past the bad file: here a bright image that raises the top edge."""
    root, _ = dataset
    images = tmp_path / "images"
    generator = np.random.default_rng(1)
    for label in ("cat", "dog"):
        (images / label).mkdir(parents=True)
        for index in range(4):
            bright = label == "cat" and index == 3  # in a 4-batch only when the bad file is not counted
            pixels = np.full((40, 40, 3), 255, np.uint8) if bright else generator.integers(0, 40, (40, 40, 3),
                                                                                            dtype=np.uint8)
            Image.fromarray(pixels).save(images / label / f"{index}.png")
    (images / "cat" / "00bad.png").write_text("not an image")  # first in the list, inside the first batch
    torch.manual_seed(0)
    model = build_model("se_resnet18_cifar", gate="relu")
    for name, parameter in model.named_parameters():
        if ".se." in name and name.endswith("weight"):
            parameter.data *= 30  # gate values that follow the image's brightness well past 0.5
    checkpoint = save_checkpoint(model, tmp_path / "bright.pth")
    reports = {}
    for processes in (None, 2):
        target = tmp_path / f"report-{processes}.json"
        done = _senet(["inspect", str(checkpoint), "--data", str(images), "--batch", "4", "--output", str(target)],
                      processes)
        assert done.returncode == 0, done.stderr
        reports[processes] = json.loads(target.read_text())
    one, two = reports[None], reports[2]
    assert one["images"] == two["images"] == 8 and one["skipped_images"]["count"] == two["skipped_images"]["count"] == 1
    assert any(block["histogram"]["edges"][-1] > 1 for block in one["blocks"])  # the first batch set the top edges
    for a, b in zip(one["blocks"], two["blocks"], strict=True):
        assert a["histogram"] == b["histogram"], a["name"]
        assert (a["min"], a["max"]) == (b["min"], b["max"])
