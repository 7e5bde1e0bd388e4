"""`senet inspect` over an ImageNet-like folder on CPU: images/s with 1 and 2 processes (torchrun, gloo),
with and without DataLoader workers, against plain inference on pre-decoded tensors; and its peak memory.

1. Folder. An ImageFolder of 1,000 classes x 20 JPEGs (20,000 images; --classes, --per-class) made
   from matplotlib's sample photograph (grace_hopper.jpg, 512x600): per image a seeded random crop
   (0.5-1.0 of the photo's area before it is fitted inside the photo, aspect 4:3 +-10%, one in four
   portrait 3:4), resized to 500x375 (portrait 375x500, ImageNet's typical size), mirrored half the
   time, each channel scaled by a random gain in [0.8, 1.2], saved at JPEG quality 90. Written once
   with a process pool over every core into --folder and reused while it holds the expected count:
   a benchmark input, not test data.
2. Throughput. se_resnet50 (random weights, saved with save_checkpoint) at 224x224, batch 16, CPU.
   Every configuration runs `senet inspect CKPT --data FOLDER --limit K --format json --output F`
   as a fresh command (`python -m torch.distributed.run --nproc-per-node 2 ... -m senet_cli inspect`
   for 2 processes), timed from start to exit, and its images are read from the JSON. Each runs
   twice: with --limit WARMUP (32) and with --limit LIMIT (256), the same seeded subsets in every
   configuration. "wall" images/s = LIMIT / its whole command time (start-up, loading, folder scan,
   merge and JSON report included); "steady" = (LIMIT - WARMUP) / (time at LIMIT - time at WARMUP),
   start-up cancelled out. The report is not: it holds the class means of every class seen (228 at
   256 images, 32 at 32), so "steady, no JSON" also subtracts the time `json.dumps(report, indent=2)`
   (as the CLI writes it) takes on each report in this process, an estimate of the image loop alone.
   Threads: one process gets OMP_NUM_THREADS = cores, each of N processes cores / N. Workers: 1
   process with 0 and 2 DataLoader workers; 2 processes with 0 and 1 each (2 decoding processes in
   all, as with 1 x 2: more on 2 cores only adds processes competing with the forward passes).
   Reference, measured in the same run: plain inference of the same model on one pre-decoded
   torch.randn batch of the same size under inference_mode, --plain-images (128) after one warm-up
   batch, in the same layout (1 process x cores threads, or N concurrent processes x cores / N
   threads timed together), just before and just after that layout's inspect runs (a shared VM
   drifts by tens of percent within minutes); the ratios are over the mean of the two.
3. Memory. Peak resident set of each command (ru_maxrss from wait4: the largest single process of
   the command, DataLoader workers and torchrun's ranks included, not their sum), read by a small
   wrapper process that starts the command: on Linux a child's ru_maxrss is at least its parent's
   resident set at fork, so measured from this process it would read this process's size whenever
   that is larger (after it has parsed a 100 MiB report, about 1.2 GiB). Images grow with
   classes fixed: 1 process on a 16-class view of the folder (symlinks, 320 images) at WARMUP and
   LIMIT images; images and classes seen grow together: the 1-process runs on the whole folder.
   Also the size of the accumulators, which inspect allocates at the first batch for every class of
   the folder (per class sums: classes x channels x 8 bytes per gate), whatever the number of images.

    python benchmarks/inspect_distributed.py [--folder /tmp/senet_imagenet_like] [--limit 256]
        [--warmup 32] [--plain-images 128] [--skip-memory]

About 8 minutes on a 2-core VM, plus 1.5-2 minutes to generate the folder the first time.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = "se_resnet50"
SIZE = 224
SEED = 15
CONFIGS = ((1, 0), (1, 2), (2, 0), (2, 1))  # (processes, DataLoader workers per process)
VIEW_CLASSES = 16
# A child's ru_maxrss starts at its parent's resident set at fork (Linux keeps the forked copy's high-water mark
# across exec), so each command is started by this small process, not by the benchmark, grown by the JSON it reads.
WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""
PLAIN = """
import sys, time, torch
from senet_cli import build_model
threads, batch, images = (int(v) for v in sys.argv[1:4])
torch.set_num_threads(threads)
model = build_model({model!r}).eval()
x = torch.randn(batch, 3, {size}, {size})
with torch.inference_mode():
    model(x)
    print("ready", flush=True)
    sys.stdin.readline()  # every process of the layout starts timing together
    started = time.perf_counter()
    for start in range(0, images, batch):
        model(x[:min(batch, images - start)])
    print(time.perf_counter() - started, flush=True)
"""


# ---------------------------------------------------------------- 1. the folder

_photo = None


def _load_photo() -> None:
    global _photo
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as stream:
        _photo = Image.open(stream).convert("RGB")


def _write_class(task: tuple[int, str, int]) -> int:
    """Write class `index`'s images; returns the bytes written."""
    import numpy as np
    from PIL import Image, ImageOps

    index, folder, per_class = task
    assert _photo is not None
    width, height = _photo.size
    rng = np.random.default_rng([SEED, index])
    directory = Path(folder) / f"c{index:04d}"
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for j in range(per_class):
        portrait = rng.random() < 0.25
        aspect = (3 / 4 if portrait else 4 / 3) * math.exp(rng.uniform(math.log(0.9), math.log(1.1)))  # w / h
        area = rng.uniform(0.5, 1.0) * width * height
        w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
        fit = min(1.0, width / w, height / h)
        w, h = max(1, int(w * fit)), max(1, int(h * fit))
        left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        image = _photo.crop((left, top, left + w, top + h)).resize((375, 500) if portrait else (500, 375),
                                                                  Image.BILINEAR)
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        pixels = np.asarray(image, dtype=np.float32) * rng.uniform(0.8, 1.2, 3).astype(np.float32)
        path = directory / f"{index:04d}_{j:03d}.jpg"
        Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8)).save(path, quality=90)
        written += path.stat().st_size
    return written


def _count(folder: Path) -> tuple[int, int]:
    """(class folders, JPEGs) under `folder`."""
    if not folder.is_dir():
        return 0, 0
    classes = [entry for entry in os.scandir(folder) if entry.is_dir()]
    return len(classes), sum(1 for c in classes for f in os.scandir(c.path) if f.name.endswith(".jpg"))


def _disk_bytes(folder: Path) -> tuple[int, int]:
    """(apparent bytes of the JPEGs, bytes allocated on disk), as `du --apparent-size` and `du`."""
    apparent = allocated = 0
    for c in os.scandir(folder):
        for f in os.scandir(c.path):
            stat = f.stat()
            apparent += stat.st_size
            allocated += stat.st_blocks * 512
    return apparent, allocated


def make_folder(folder: Path, classes: int, per_class: int) -> None:
    expected = classes * per_class
    if _count(folder) == (classes, expected):
        apparent, allocated = _disk_bytes(folder)
        print(f"Folder: {folder}, {classes:,} classes x {per_class} = {expected:,} JPEGs, reused "
              f"({apparent / 2**20:,.0f} MiB of JPEGs, {allocated / 2**20:,.0f} MiB on disk)\n", flush=True)
        return
    started = time.perf_counter()
    tasks = [(index, str(folder), per_class) for index in range(classes)]
    with multiprocessing.Pool(os.cpu_count(), initializer=_load_photo) as pool:
        for _ in pool.imap_unordered(_write_class, tasks, chunksize=8):
            pass
    elapsed = time.perf_counter() - started
    found = _count(folder)
    if found != (classes, expected):
        sys.exit(f"{folder}: expected {classes} classes and {expected} JPEGs, found {found}")
    apparent, allocated = _disk_bytes(folder)
    print(f"Folder: {folder}, {classes:,} classes x {per_class} = {expected:,} JPEGs (500x375 or 375x500, "
          f"quality 90), generated in {elapsed:.1f} s with {os.cpu_count()} processes "
          f"({expected / elapsed:,.0f} images/s); {apparent / 2**20:,.0f} MiB of JPEGs "
          f"({apparent / expected / 1024:.0f} KiB each), {allocated / 2**20:,.0f} MiB on disk\n", flush=True)


# ---------------------------------------------------------------- 2. throughput


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def threads_for(processes: int) -> int:
    return max(1, (os.cpu_count() or 1) // processes)


def run_measured(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run `command` to its exit through WRAPPER; (wall seconds, peak RSS in MiB of its largest process)."""
    peak = log.with_suffix(".maxrss")
    with open(log, "w") as stream:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", WRAPPER, str(peak), *command], env=env, stdout=stream,
                                stderr=subprocess.STDOUT, check=False)
        wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"exit {result.returncode}: {' '.join(command)}\n{log.read_text()[-3000:]}")
    return wall, int(peak.read_text()) / 1024


def run_inspect(checkpoint: Path, folder: Path, processes: int, workers: int, limit: int, batch: int,
                scratch: Path, *, time_dump: bool = False) -> dict[str, float]:
    """One `senet inspect` command: wall seconds, images, peak RSS (MiB), classes seen, JSON size (MiB)
    and, with `time_dump`, the seconds json.dumps(report, indent=2) takes here on its report."""
    output = scratch / "inspect.json"
    command = [sys.executable]
    if processes > 1:
        command += ["-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(processes),
                    "--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    command += ["-m", "senet_cli", "inspect", str(checkpoint), "--data", str(folder), "--limit", str(limit),
                "--batch", str(batch), "--workers", str(workers), "--format", "json", "--output", str(output),
                "--force"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads_for(processes)))
    wall, peak = run_measured(command, env, scratch / "inspect.log")
    report = json.loads(output.read_text())
    world = report.get("distributed", {}).get("world_size", 1)
    if report["images"] != limit or world != processes:
        sys.exit(f"{output}: {report['images']} images over {world} processes, expected {limit} over {processes}")
    seen = sum(1 for _ in next(iter(report["blocks"]))["class_means"])
    run = {"wall": wall, "images": report["images"], "peak": peak, "classes_seen": seen,
           "json_mb": output.stat().st_size / 2**20}
    output.unlink()
    if time_dump:
        started = time.perf_counter()
        json.dumps(report, indent=2)
        run["dump"] = time.perf_counter() - started
    return run


def plain_rate(processes: int, batch: int, images: int) -> float:
    """images/s of plain inference on one pre-decoded batch in `processes` concurrent processes."""
    threads = threads_for(processes)
    shares = [len(range(rank, images, processes)) for rank in range(processes)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    code = PLAIN.format(model=MODEL, size=SIZE)
    children = [subprocess.Popen([sys.executable, "-c", code, str(threads), str(batch), str(share)], env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for share in shares]
    for child in children:
        if child.stdout.readline().strip() != "ready":
            sys.exit("plain inference failed to start")
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    seconds = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            sys.exit(f"plain inference exited {child.returncode}")
        seconds.append(float(out.split()[-1]))
    return images / max(seconds)


def throughput(checkpoint: Path, folder: Path, args: argparse.Namespace, scratch: Path) -> dict:
    """Per layout (number of processes): plain inference, the layout's inspect configurations, plain again."""
    plain: dict[int, tuple[float, float]] = {}
    runs: dict[tuple[int, int], tuple[dict, dict]] = {}
    dump: dict[int, float] = {}  # limit -> seconds to serialise its report (the same subset in every configuration)
    for processes in sorted({processes for processes, _ in CONFIGS}):
        before = plain_rate(processes, args.batch, args.plain_images)
        for workers in [w for p, w in CONFIGS if p == processes]:
            print(f"... {processes} process(es), {workers} worker(s) each", file=sys.stderr, flush=True)
            small, full = (run_inspect(checkpoint, folder, processes, workers, limit, args.batch, scratch,
                                       time_dump=limit not in dump) for limit in (args.warmup, args.limit))
            dump.setdefault(args.warmup, small.get("dump", 0.0))
            dump.setdefault(args.limit, full.get("dump", 0.0))
            runs[processes, workers] = (small, full)
        plain[processes] = (before, plain_rate(processes, args.batch, args.plain_images))

    print(f"Plain inference of {args.plain_images} images, {MODEL} on a pre-decoded torch.randn batch of "
          f"{args.batch} (the reference), measured before and after the layout's inspect runs:\n")
    print("| processes | threads each | images/s before | images/s after | mean |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for processes, (before, after) in plain.items():
        print(f"| {processes} | {threads_for(processes)} | {before:.2f} | {after:.2f} | {(before + after) / 2:.2f} |")

    small, full = next(iter(runs.values()))
    print(f"\n`senet inspect` of {args.limit} images of the folder ({full['classes_seen']} classes seen, a "
          f"{full['json_mb']:.0f} MiB JSON report) and of {args.warmup} ({small['classes_seen']} classes, "
          f"{small['json_mb']:.0f} MiB), batch {args.batch}. wall = {args.limit} / whole command time; steady = "
          f"({args.limit} - {args.warmup}) / (time at {args.limit} - time at {args.warmup}); steady, no JSON: "
          f"the same less the report's json.dumps here ({dump[args.limit]:.1f} s and {dump[args.warmup]:.1f} s); "
          f"ratios over the mean plain images/s of the same layout:\n")
    print(f"| processes | threads each | workers each | time at {args.warmup} (s) | time at {args.limit} (s) | "
          f"wall images/s | steady images/s | steady, no JSON | wall / plain | steady / plain | "
          f"steady, no JSON / plain | peak RSS at {args.warmup} / {args.limit} (MiB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for (processes, workers), (small, full) in runs.items():
        reference = sum(plain[processes]) / 2
        added = full["images"] - small["images"]
        wall = full["images"] / full["wall"]
        steady = added / (full["wall"] - small["wall"])
        loop = added / (full["wall"] - small["wall"] - dump[args.limit] + dump[args.warmup])
        print(f"| {processes} | {threads_for(processes)} | {workers} | {small['wall']:.1f} | {full['wall']:.1f} | "
              f"{wall:.2f} | {steady:.2f} | {loop:.2f} | {wall / reference:.3f} | {steady / reference:.3f} | "
              f"{loop / reference:.3f} | {small['peak']:,.0f} / {full['peak']:,.0f} |")
    return runs


# ---------------------------------------------------------------- 3. memory


def accumulator_sizes(checkpoint: Path, classes: int) -> None:
    """The state inspect allocates for se_resnet50's gates with `classes` classes, from one forward."""
    import torch

    from senet_cli import load_checkpoint
    from senet_cli.checkpoint.recognise import materialize, resolve
    from senet_cli.inspect.gates import attach_accumulators
    from senet_cli.subject import subject_for

    loaded = load_checkpoint(checkpoint)
    resolved = resolve(loaded)
    config = resolved.config
    network = materialize(resolved)
    accumulators, _ = attach_accumulators(network, subject_for(config), 50, classes)
    with torch.inference_mode():
        network(torch.randn(1, 3, SIZE, SIZE))
    channels = [a.state["mean"].numel() for a in accumulators]
    per_class = sum(a.state["class_sum"].numel() * a.state["class_sum"].element_size() for a in accumulators)
    total = sum(a.state_bytes() for a in accumulators)
    groups: dict[int, int] = {}
    for c in channels:
        groups[c] = groups.get(c, 0) + 1
    shown = " + ".join(f"{c:,}x{n}" for c, n in groups.items())
    print(f"\nAccumulators for {len(accumulators)} gates of {MODEL} and {classes:,} classes: per-class sums "
          f"{classes:,} classes x ({shown} = {sum(channels):,} channels) x 8 bytes = {per_class / 2**20:.1f} MiB; "
          f"all accumulator state {total / 2**20:.1f} MiB. Allocated at the first batch for every class of the "
          f"folder, whatever the number of images.")


def memory(checkpoint: Path, folder: Path, args: argparse.Namespace, scratch: Path, runs: dict) -> None:
    view = scratch / "view"  # the first VIEW_CLASSES classes of the folder, as symlinks
    view.mkdir()
    for name in sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())[:VIEW_CLASSES]:
        (view / name).symlink_to(folder / name, target_is_directory=True)
    print(f"... memory on {VIEW_CLASSES} classes", file=sys.stderr, flush=True)
    limits = (args.warmup, min(args.limit, VIEW_CLASSES * args.per_class))
    few = [run_inspect(checkpoint, view, 1, 0, limit, args.batch, scratch) for limit in limits]
    print("\nPeak RSS of 1-process `senet inspect` (0 workers); the accumulators hold every class of the folder, "
          "the JSON report the class means of the classes seen:\n")
    print("| folder | images | classes seen | peak RSS (MiB) | wall (s) | JSON report (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    whole = list(runs.get((1, 0), ()))
    for label, measured in ((f"{VIEW_CLASSES}-class view", few), (f"{args.classes:,} classes", whole)):
        for run in measured:
            print(f"| {label} | {run['images']:,} | {run['classes_seen']:,} | {run['peak']:,.0f} | {run['wall']:.1f} | "
                  f"{run['json_mb']:.1f} |")
    print()
    for label, measured in ((f"the {VIEW_CLASSES}-class view", few), (f"{args.classes:,} classes", whole)):
        if len(measured) < 2:
            continue
        first, last = measured[0], measured[-1]
        grown = last["peak"] - first["peak"]
        seen = last["classes_seen"] - first["classes_seen"]
        per_class = f" ({grown * 1024 / seen:+,.0f} KiB per class seen)" if measured is whole and seen > 1 else ""
        print(f"Peak RSS, {label}, {first['images']:,} -> {last['images']:,} images, {first['classes_seen']} -> "
              f"{last['classes_seen']} classes seen: {grown:+,.0f} MiB{per_class}.")
    accumulator_sizes(checkpoint, args.classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/senet_imagenet_like"))
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--limit", type=int, default=256, help="images per timed run")
    parser.add_argument("--warmup", type=int, default=32, help="images of the run whose time is subtracted")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--plain-images", type=int, default=128, help="images per plain-inference measurement")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if not 0 < args.warmup < args.limit:
        parser.error("--warmup must be between 0 and --limit")
    make_folder(args.folder, args.classes, args.per_class)

    import torch

    from senet_cli import build_model, save_checkpoint

    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {MODEL} at {SIZE}x{SIZE}, CPU\n")
    with tempfile.TemporaryDirectory() as name:
        scratch = Path(name)
        torch.manual_seed(0)
        checkpoint = save_checkpoint(build_model(MODEL), scratch / f"{MODEL}.pth")
        started = time.perf_counter()
        runs = throughput(checkpoint, args.folder, args, scratch)
        if not args.skip_memory:
            memory(checkpoint, args.folder, args, scratch, runs)
        print(f"\nMeasured in {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
