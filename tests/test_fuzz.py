"""Fuzzing what `inspect` reads from strangers: a few hundred seeded hostile checkpoints and image files.

Every case is generated from SEED (the same files on every run): checkpoints of the three formats
(torch zip, legacy torch pickle, safetensors) truncated, bit-flipped and overwritten; torch pickles
of the wrong types and odd tensors; safetensors headers and zip archives built wrong on purpose;
random bytes and text; and images (PNG, JPEG, BMP) truncated, flipped, or declaring huge sizes.

The checkpoints go through `load_checkpoint` and the images through the folder reader's decoding,
in a child process whose address space is capped (RLIMIT_AS: what it uses after importing torch
plus CHILD_HEADROOM), so a case that tries to allocate gigabytes fails there instead of swelling
the machine. Each case must either load or raise a SenetError of one line; a few go through the
whole command line too. The outcome counts by class are printed (pytest -s shows them).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import struct
import subprocess
import sys
import time
import traceback
import warnings
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save as save_bytes

SEED = 14
CHILD_HEADROOM = 1536 << 20
"""Bytes of address space the fuzzing child may add to what importing torch took: far under any
bomb's swell (3 GiB and more), well over what loading a few-kilobyte checkpoint needs."""

METADATA = {"model": "se_resnet18_cifar", "options": {"ratio": 16}, "preprocess": {"input": 32}, "version": "0"}


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(SEED)
    return {"conv1.weight": torch.randn(4, 3, 3, 3), "bn1.weight": torch.rand(4), "bn1.running_var": torch.rand(4),
            "bn1.num_batches_tracked": torch.tensor(7), "fc.weight": torch.randn(2, 4), "fc.bias": torch.zeros(2)}


def _torch_bytes(obj: object, legacy: bool = False) -> bytes:
    stream = io.BytesIO()
    torch.save(obj, stream, _use_new_zipfile_serialization=not legacy)
    return stream.getvalue()


def _safetensors_bytes(header: object, data: bytes = b"", length: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def _zip_bytes(records: list[tuple[str, bytes, int]]) -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        for name, data, method in records:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return stream.getvalue()


def _mutations(rng: random.Random, base: bytes, label: str, counts: tuple[int, int, int]) -> list[tuple[str, bytes]]:
    """`base` truncated, bit-flipped (1 to 4 bits) and overwritten with random 8-byte runs."""
    cases = []
    for _ in range(counts[0]):
        cases.append((f"{label}: truncated", base[: rng.randrange(1, len(base))]))
    for _ in range(counts[1]):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        cases.append((f"{label}: bit-flipped", bytes(data)))
    for _ in range(counts[2]):
        data = bytearray(base)
        start = rng.randrange(len(data))
        data[start:start + 8] = rng.randbytes(8)
        cases.append((f"{label}: overwritten", bytes(data)))
    return cases


def _odd_objects() -> list[object]:
    """Torch pickles of the wrong types, and state dicts of tensors the zoo's models do not hold."""
    state = _state()
    deep: object = {"w": torch.zeros(1)}
    for _ in range(60):
        deep = {"state_dict": deep}
    dtypes = (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool, torch.float16,
              torch.bfloat16, torch.float64, torch.complex64, torch.float8_e4m3fn)
    return [
        None, 3, "state_dict", b"bytes", [state["fc.weight"]], (1, 2), {"state_dict": [1, 2]},
        {"state_dict": {"a": 3}}, {1: torch.zeros(2)}, state["conv1.weight"], {}, {"state_dict": {}}, deep,
        *({"w": torch.ones(3, 2).to(dtype)} for dtype in dtypes),
        {"w": torch.eye(3).to_sparse()}, {"w": torch.eye(3).to_sparse_csr()}, {"w": torch.zeros(2, device="meta")},
        {"w": torch.tensor(1.0)}, {"w": torch.zeros(0, 5)}, {"w": torch.zeros(1).expand(10**6)},
        {"state_dict": state, "senet": [1]}, {"state_dict": state, "senet": "se"},
        {"state_dict": state, "senet": {"preprocess": {"input": 10**9}}},
        {"state_dict": state, "senet": {"preprocess": {"mean": [float("inf")] * 3}}},
        {"state_dict": state, "senet": {"options": {"stages": [[1]]}}},
        {"state_dict": state, "state_dict_ema": {"x": 1}}, {"model": state, "senet": {"model": ""}},
    ]


def _safetensors_cases(rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    """Headers drawn from plausible and implausible dtypes, shapes, offsets and lengths."""
    cases = []
    for _ in range(count):
        entries: dict[str, object] = {}
        data_size = rng.choice([0, 8, 24, 96])
        for index in range(rng.randint(0, 3)):
            shape = [rng.choice([0, 1, 2, 3, -1, 1 << 40]) for _ in range(rng.randint(0, 3))]
            begin = rng.choice([0, 8, data_size, -8, 1 << 50])
            entry = {"dtype": rng.choice(["F32", "F16", "I64", "BOOL", "U8", "F64", "X9", 5]), "shape": shape,
                     "data_offsets": rng.choice([[begin, begin + rng.choice([0, 4, 8, 24])], [0], "0-8", None])}
            if rng.random() < 0.1:
                entry = rng.choice([[1], "F32", None, {"dtype": "F32"}])
            entries[rng.choice([f"t{index}", "__metadata__", "", "\x1b[2J"])] = entry
        if rng.random() < 0.3:
            entries["__metadata__"] = rng.choice([{"senet": json.dumps(METADATA)}, {"senet": "{"}, {"senet": 4},
                                                  "meta", {"senet": json.dumps({"preprocess": {"input": 30000}})}])
        length = rng.choice([None, None, None, 0, 1, 7, 1 << 62])
        cases.append(("safetensors: built header", _safetensors_bytes(entries, rng.randbytes(data_size), length)))
    return cases


def _zip_cases(rng: random.Random) -> list[tuple[str, bytes]]:
    """Archives torch.save would never write: missing, extra, deflated and unreadable records."""
    base = _torch_bytes(_state())
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        records = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    cases = [
        ("zip: no data.pkl", _zip_bytes([(n, d, zipfile.ZIP_STORED) for n, d in records if "data.pkl" not in n])),
        ("zip: no tensor data", _zip_bytes([(n, d, zipfile.ZIP_STORED) for n, d in records if "/data/" not in n])),
        ("zip: only random", _zip_bytes([("archive/data.pkl", rng.randbytes(200), zipfile.ZIP_STORED)])),
        ("zip: lzma records", _zip_bytes([(n, d, zipfile.ZIP_LZMA) for n, d in records])),
        ("zip: deflated records", _zip_bytes([(n, d, zipfile.ZIP_DEFLATED) for n, d in records])),
        ("zip: deflated bomb", _zip_bytes([("archive/data.pkl", records[0][1], zipfile.ZIP_STORED),
                                           ("archive/data/0", bytes(8 << 20), zipfile.ZIP_DEFLATED)])),
        ("zip: duplicate names", _zip_bytes([(n, d, zipfile.ZIP_STORED) for n, d in records + records[:1]])),
        ("zip: empty", _zip_bytes([])),
    ]
    for _ in range(12):
        shuffled = [(n, rng.randbytes(rng.randrange(1, 64)) if rng.random() < 0.3 else d, zipfile.ZIP_STORED)
                    for n, d in records]
        rng.shuffle(shuffled)
        cases.append(("zip: records scrambled", _zip_bytes(shuffled)))
    return cases


def _deep_cases(rng: random.Random, state: dict[str, torch.Tensor]) -> list[tuple[str, bytes, str]]:
    """Issue 24's classes, at random sizes: metadata nested past any recursion limit (lists, dicts,
    a cycle) or wide, and weight names with a huge shared dotted prefix, in every format."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(60_000)  # pickling and json.dumps recurse; the loader must not
    try:
        cases = []
        for _ in range(4):
            depth = rng.randrange(17, 20_000)
            nested: object = rng.choice([0, "x", None])
            for _ in range(depth):
                nested = [nested] if rng.random() < 0.5 else {"k": nested}
            metadata = {**METADATA, rng.choice(["notes", "preprocess", "options"]): nested}
            cases.append((f"deep metadata ({rng.choice(['zip', 'legacy'])})",
                          _torch_bytes({"state_dict": state, "senet": metadata}, legacy=rng.random() < 0.5), ".pth"))
            cases.append(("deep metadata (safetensors)",
                          save_bytes(state, metadata={"senet": json.dumps(metadata)}), ".safetensors"))
        loop: list = []
        loop.append(loop)
        cases.append(("cyclic metadata", _torch_bytes({"state_dict": state, "senet": {"notes": loop}}), ".pth"))
        wide = [list(range(1000))] * rng.randrange(101, 400)  # one list referenced many times: a small pickle
        cases.append(("wide metadata", _torch_bytes({"state_dict": state, "senet": {"notes": wide}}), ".pth"))
        for _ in range(3):
            prefix = "p." * rng.randrange(65, 300_000)
            keys = {prefix + "a": torch.zeros(1), prefix + "b": torch.zeros(1)}
            cases.append(("huge dotted keys (zip)", _torch_bytes(keys), ".pth"))
            cases.append(("huge dotted keys (safetensors)", save_bytes(keys), ".safetensors"))
        return cases
    finally:
        sys.setrecursionlimit(limit)


def checkpoint_cases() -> list[tuple[str, bytes, str]]:
    """(class, content, suffix) of every hostile checkpoint, from SEED."""
    rng = random.Random(SEED)
    state = _state()
    zipped = _torch_bytes({"state_dict": state, "senet": METADATA})
    legacy = _torch_bytes({"state_dict": state, "senet": METADATA}, legacy=True)
    safe = save_bytes(state, metadata={"senet": json.dumps(METADATA)})
    cases = [(label, data, ".pth") for label, data in _mutations(rng, zipped, "torch zip", (25, 40, 15))]
    cases += [(label, data, ".pth") for label, data in _mutations(rng, legacy, "legacy pickle", (25, 40, 15))]
    cases += [(label, data, ".safetensors") for label, data in _mutations(rng, safe, "safetensors", (20, 35, 15))]
    cases += [("torch: odd object", _torch_bytes(obj), ".pth") for obj in _odd_objects()]
    cases += [("legacy: odd object", _torch_bytes(obj, legacy=True), ".pth") for obj in _odd_objects()[:12]]
    cases += [(label, data, ".safetensors") for label, data in _safetensors_cases(rng, 40)]
    cases += [(label, data, ".pth") for label, data in _zip_cases(rng)]
    cases += _deep_cases(rng, state)
    cases += [("pickle: not torch's", pickle.dumps(obj, protocol=p), ".pth")
              for p, obj in enumerate([{"a": 1}, [1.0], "x", None, {"state_dict": {}}, 10**30])]
    cases += [("random bytes", rng.randbytes(rng.randrange(1, 4096)), rng.choice([".pth", ".safetensors", ".ckpt"]))
              for _ in range(12)]
    cases += [("text", text.encode(), ".pth") for text in ("root:x:0:0:root:/root:/bin/bash\n", "{}", "\x1b[2J ok",
                                                           "PK", "\x80\x02", "[1, 2]")]
    return cases


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def image_cases() -> list[tuple[str, bytes, str]]:
    """(class, content, suffix) of every hostile image, from SEED."""
    rng = random.Random(SEED + 1)
    pixels = np.random.default_rng(SEED).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    cases: list[tuple[str, bytes, str]] = []
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp")):
        stream = io.BytesIO()
        Image.fromarray(pixels).save(stream, format=fmt)
        cases.append((f"{fmt}: intact", stream.getvalue(), suffix))
        cases += [(label, data, suffix) for label, data in _mutations(rng, stream.getvalue(), fmt, (8, 10, 4))]
    cases += [("PNG: declares huge", _png_header(side, side), ".png") for side in (9000, 20000, 1 << 16, 1 << 31 - 1)]
    cases += [("not an image", data, ".jpg") for data in (b"", b"root:x:0:0\n", rng.randbytes(300), b"\xff\xd8\xff")]
    return cases


def _child(manifest: Path) -> None:
    """Load every case under an address-space cap; print one JSON outcome per case."""
    import resource

    from senet_cli.checkpoint.loading import load_checkpoint
    from senet_cli.errors import SenetError
    from senet_cli.inspect.images import _Files

    try:
        status = Path("/proc/self/status").read_text()
        used = int(status.split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (used + CHILD_HEADROOM, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (OSError, ValueError, IndexError):
        pass  # no /proc or no limit allowed: the size checks still run
    def transform(image: Image.Image) -> torch.Tensor:  # every pixel touched; torchvision's resize runs in
        return torch.from_numpy(np.asarray(image).copy())  # the command-line pass (importing it takes seconds)

    outcomes = []
    for kind, label, path in json.loads(manifest.read_text()):
        try:
            if kind == "checkpoint":
                load_checkpoint(path)
                outcome = ("loaded", "")
            else:
                _, image, _, reason = _Files([(path, 0)], transform)[0]
                outcome = ("decoded", "") if image is not None else ("skipped", reason)
        except SenetError as error:
            outcome = (type(error).__name__, str(error))
        except BaseException as error:  # noqa: BLE001 (what the test looks for)
            outcome = ("CRASH", "".join(traceback.format_exception(error))[-2000:])
        outcomes.append([label, path, *outcome])
    print(json.dumps(outcomes))


def _model_checkpoint(path: Path) -> Path:
    """A checkpoint of MODEL with uniform random weights: built from the meta skeleton's shapes, in a
    fraction of the time initialising the model would take."""
    from senet_cli.checkpoint.recognise import skeleton
    from senet_cli.zoo import make_config

    generator = torch.Generator().manual_seed(SEED)
    shapes = skeleton(make_config(METADATA["model"])).shapes
    state = {key: torch.zeros(shape, dtype=torch.long) if key.endswith("num_batches_tracked")
             else torch.rand(shape, generator=generator) for key, shape in shapes.items()}
    torch.save({"state_dict": state, "senet": {"model": METADATA["model"]}}, path)
    return path


@pytest.mark.slow  # fuzzes: hundreds of generated cases in a memory-capped child
def test_hostile_checkpoints_and_images_load_or_fail_in_one_line(tmp_path, cli):
    started = time.perf_counter()
    with warnings.catch_warnings():  # torch's beta and deprecation notes on the odd tensors made on purpose
        warnings.simplefilter("ignore")
        checkpoints, images = checkpoint_cases(), image_cases()
    manifest = []
    for index, (label, data, suffix) in enumerate(checkpoints):
        path = tmp_path / f"c{index:03d}{suffix}"
        path.write_bytes(data)
        manifest.append(("checkpoint", label, str(path)))
    for index, (label, data, suffix) in enumerate(images):
        path = tmp_path / "images" / "class" / f"i{index:03d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        manifest.append(("image", label, str(path)))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child_started = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, str(tmp_path / "manifest.json")], capture_output=True,
                           text=True, env=environment, timeout=120)
    assert child.returncode == 0, child.stderr[-3000:]
    child_s = time.perf_counter() - child_started
    outcomes = json.loads(child.stdout.splitlines()[-1])
    assert len(outcomes) == len(manifest) and len(manifest) >= 300
    crashes = [(label, path, text) for label, path, kind, text in outcomes if kind == "CRASH"]
    assert not crashes, crashes[:3]
    for label, _, kind, text in outcomes:
        if kind not in ("loaded", "decoded"):
            assert text and "\n" not in text and "Traceback" not in text, (label, text)
            assert "allocate" not in text and "MemoryError" not in text, (label, text)  # the cap was never met
            assert len(text) < 600, (label, text)
    by_class = Counter((label, kind) for label, _, kind, _ in outcomes)
    cli_started = time.perf_counter()
    # through the whole command line: a sample of the failing checkpoints, and the folder of images
    failing = [path for label, path, kind, _ in outcomes if kind not in ("loaded", "decoded", "skipped")]
    for path in random.Random(SEED).sample(failing, 8):
        code, out, err = cli(["inspect", path, "--data", "synthetic", "--limit", "1"])
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith("senet: error: "), err
    checkpoint = _model_checkpoint(tmp_path / "good.pth")
    code, out, err = cli(["inspect", str(checkpoint), "--data", str(tmp_path / "images"), "--input", "8",
                          "--format", "json"])
    assert code == 0, err
    report = json.loads(out)
    decoded = Counter(kind for label, _, kind, _ in outcomes if kind in ("decoded", "skipped"))
    assert (report["images"], report["skipped_images"]["count"]) == (decoded["decoded"], decoded["skipped"])
    elapsed, cli_s = time.perf_counter() - started, time.perf_counter() - cli_started
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"\nfuzz: {len(outcomes)} cases in {elapsed:.1f} s wall ({child_s:.1f} s in the capped child, "
          f"{usage.ru_utime + usage.ru_stime:.1f} s CPU and {usage.ru_maxrss / 1024:.0f} MiB peak RSS there; "
          f"{cli_s:.1f} s in the command-line passes)")
    for (label, kind), count in sorted(by_class.items()):
        print(f"  {count:4d}  {label:32s} {kind}")


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
