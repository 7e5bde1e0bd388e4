"""Hostile inputs to `inspect`: checkpoints that lie about their sizes, odd dtypes, metadata out of
schema, and image folders holding anything. Each either works (saying what it changed) or is one line."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from senet_cli import inspect, load_checkpoint, save_checkpoint
from senet_cli.checkpoint import bounds
from senet_cli.checkpoint.metadata import INPUT_RANGE
from senet_cli.errors import CheckpointError, SenetError
from senet_cli.inspect.images import MAX_IMAGE_PIXELS, decode, list_folder

MODEL = "se_resnet18_cifar"  # the model conftest's se_state and constant_model are built from
POSIX = pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(),
                           reason="FIFOs, /dev/zero and /etc/passwd are POSIX")


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text
    return text


# --- what a file is not ------------------------------------------------------------------------------


@pytest.mark.parametrize("content, expected", [
    (b"root:x:0:0:root:/root:/bin/bash\n", "text that starts with neither a zip header"),
    (pickle.dumps({"a": 1}), "a pickle, but not one torch.save wrote"),
    (b"\x00\x01\x02garbage" * 10, "data that starts with neither"),
    (b"PK\x03\x04" + b"\x00" * 40, "truncated or corrupt zip"),
])
def test_a_file_no_loader_reads_is_one_line_that_does_not_suggest_trust(content, expected, tmp_path, cli):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert expected in _one_line(caught.value)
    code, _, err = cli(["inspect", str(path), "--data", "synthetic", "--limit", "1"])
    assert code == 2 and len(err.splitlines()) == 1 and "--trust" not in err


@POSIX
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_special_file_is_refused_without_being_opened(kind, tmp_path):
    path = tmp_path / "weights.pth"
    if kind == "fifo":
        os.mkfifo(path)  # opening it would wait for a writer forever
    else:
        path.symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(CheckpointError, match="not a regular file") as caught:
        load_checkpoint(path)
    _one_line(caught.value)


def test_a_legacy_pickle_asking_for_a_global_names_it_in_one_whole_line(se_state, tmp_path, cli):
    path = tmp_path / "legacy.pth"
    torch.save({"state_dict": se_state, "where": Path("x")}, path, _use_new_zipfile_serialization=False)
    code, _, err = cli(["inspect", str(path), "--data", "synthetic", "--limit", "1"])
    assert code == 2 and len(err.splitlines()) == 1
    assert "(pathlib.PosixPath)" in err and err.rstrip().endswith("Pass --trust only if you trust its source")
    torch.save(se_state, path, _use_new_zipfile_serialization=False)  # a plain legacy file still loads
    assert set(load_checkpoint(path).state_dict) == set(se_state)


def test_a_legacy_pickle_declaring_more_storage_than_its_file_holds_is_refused_unallocated(tmp_path):
    marker = object()

    class Declaring(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 10**12, None) if obj is marker else None

    stream = open(tmp_path / "liar.pth", "wb")  # noqa: SIM115
    with stream:
        for part in (bounds.LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(part, stream, protocol=2)
        Declaring(stream, protocol=2).dump({"w": marker})
        pickle.dump(["0"], stream, protocol=2)
    with pytest.raises(CheckpointError, match=r"declares 4,000,000,000,000 bytes of tensors, more than the file"):
        load_checkpoint(tmp_path / "liar.pth")


def _rezip(source: Path, target: Path) -> None:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))


def test_a_deflated_record_that_swells_is_refused_before_inflating(tmp_path):
    torch.save({"w": torch.zeros(4 << 20)}, tmp_path / "zeros.pth")  # 16 MiB of zeros deflate to ~16 kB
    _rezip(tmp_path / "zeros.pth", tmp_path / "bomb.pth")
    assert (tmp_path / "bomb.pth").stat().st_size < 100_000
    with pytest.raises(CheckpointError, match=r"inflates [\d,]+ bytes to 16,777,216 .* decompression bomb") as caught:
        load_checkpoint(tmp_path / "bomb.pth")
    _one_line(caught.value)
    torch.save({"w": torch.randn(1000)}, tmp_path / "noise.pth")  # re-zipped noise barely shrinks: it loads
    _rezip(tmp_path / "noise.pth", tmp_path / "rezipped.pth")
    assert load_checkpoint(tmp_path / "rezipped.pth").state_dict["w"].shape == (1000,)


def test_sizes_over_the_cap_are_refused_from_the_directory_and_after_a_stride_trick(tmp_path):
    torch.save({"w": torch.zeros(1000)}, tmp_path / "big.pth")
    with pytest.raises(CheckpointError, match=r"records hold .* over the 1,000 bytes cap"):
        load_checkpoint(tmp_path / "big.pth", max_bytes=1000)
    torch.save({"w": torch.zeros(1).expand(10**6)}, tmp_path / "stride0.pth")  # 1 stored value, 10**6 viewed
    assert (tmp_path / "stride0.pth").stat().st_size < 4000
    with pytest.raises(CheckpointError, match=r"hold 1,000,000 values, over the cap of 250,000"):
        load_checkpoint(tmp_path / "stride0.pth", max_bytes=10**6)


@pytest.mark.parametrize("tensor", [
    torch.zeros(1, dtype=torch.int8).expand(80_000_000),  # one stored value viewed as 8e7, cast to float32
    torch.sparse_coo_tensor(torch.zeros(1, 1, dtype=torch.long), torch.ones(1), (80_000_000,),  # one value in 8e7
                            check_invariants=True),
])
def test_a_small_file_cannot_make_the_loader_allocate_far_more_than_its_size(tensor, tmp_path, monkeypatch):
    """A hostile-input run: a 1.6 KB file allocated 4.6 GB (under the value cap) before any shape check.
    Casting and densifying may allocate at most 16x the file (or the small-file allowance)."""
    monkeypatch.setattr(bounds, "GROWTH_FREE_BYTES", 1 << 20)  # 80e6 values x 4 bytes is then far over
    torch.save({"w": tensor}, tmp_path / "tiny.pth")
    assert (tmp_path / "tiny.pth").stat().st_size < 4000
    with pytest.raises(CheckpointError, match=r"would allocate 305\.2 MiB, over 16x its size") as caught:
        load_checkpoint(tmp_path / "tiny.pth")
    _one_line(caught.value)


def _safetensors(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


@pytest.mark.parametrize("header, data, length, expected", [
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, 1 << 40, "header of"),
    ([1, 2], b"", None, "header is a JSON list"),
    ({"w": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, None, "dtype 'F99'"),
    ({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 8]}}, b"\0" * 8, None, "not a list of sizes"),
    ({"w": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 8]}}, b"\0" * 8, None, "needs 4,398,046,511,104"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 1 << 40]}}, b"\0" * 8, None, "outside the 8 data bytes"),
    ({"w": "x"}, b"", None, "entry 'w' is not an object"),
    ({"__metadata__": {"senet": 3}}, b"", None, "__metadata__ is not an object of strings"),
])
def test_a_safetensors_header_is_checked_against_its_file(header, data, length, expected, tmp_path):
    path = _safetensors(tmp_path / "bad.safetensors", header, data, length)
    with pytest.raises(CheckpointError, match="is not a torch checkpoint or safetensors file") as caught:
        load_checkpoint(path)
    assert expected in _one_line(caught.value)


# --- unusual tensors ----------------------------------------------------------------------------------


@pytest.mark.slow  # inspects one checkpoint per unusual tensor kind
def test_integer_sparse_and_quantized_weights_are_cast_and_said(se_state, tmp_path):
    as_int8 = {k: (v * 50).to(torch.int8) if v.is_floating_point() else v for k, v in se_state.items()}
    torch.save(as_int8, tmp_path / "int8.pth")
    save_file({k: (v * 50).to(torch.int64) for k, v in se_state.items()}, str(tmp_path / "int64.safetensors"))
    for name in ("int8.pth", "int64.safetensors"):
        report = inspect(tmp_path / name, data="synthetic", limit=2)  # used to crash in materialize
        kind = name.split(".")[0]
        assert any(f"{kind} cast to float32: " in note for note in report.notes)
        assert report.to_dict()["loading"]["notes"] == list(report.checkpoint.notes)
    assert load_checkpoint(tmp_path / "int8.pth").state_dict["bn1.num_batches_tracked"].dtype == torch.int64
    sparse = {k: v.to_sparse() if v.dim() == 4 else v for k, v in se_state.items()}
    torch.save(sparse, tmp_path / "sparse.pth")
    loaded = load_checkpoint(tmp_path / "sparse.pth")
    assert torch.equal(loaded.state_dict["conv1.weight"], se_state["conv1.weight"])
    assert any("sparse made dense" in note for note in loaded.notes)
    with pytest.warns(UserWarning):  # torch deprecates quantized tensors; checkpoints still hold them
        quantized = torch.quantize_per_tensor(torch.linspace(-1, 1, 5), 0.5, 0, torch.qint8)
    torch.save({"w": quantized, "flag": torch.ones(2, dtype=torch.bool)}, tmp_path / "q.pth")
    loaded = load_checkpoint(tmp_path / "q.pth")
    assert loaded.state_dict["w"].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert loaded.notes == ("1 tensor(s) quantized dequantized: w", "1 tensor(s) bool cast to float32: flag")


@pytest.mark.parametrize("tensor, expected", [
    (torch.zeros(3, device="meta"), "is a meta tensor"),
    (torch.zeros(3, dtype=torch.complex64), "is complex"),
])
def test_tensors_without_real_values_are_refused_in_one_line(tensor, expected, tmp_path):
    torch.save({"w": tensor}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=expected) as caught:
        load_checkpoint(tmp_path / "odd.pth")
    _one_line(caught.value)


# --- metadata ------------------------------------------------------------------------------------------


BAD_METADATA = [
    ([1], "field senet must be an object, got [1]"),
    (3, "field senet must be an object, got 3"),
    ({"model": 5}, "field model must be a model name"),
    ({"model": MODEL, "options": [1]}, "field options must be an object"),
    ({"model": MODEL, "options": {"ratio": {"x": 1}}}, "field options.ratio must be a string, boolean, number"),
    ({"preprocess": "x"}, "field preprocess must be an object, got 'x'"),
    ({"preprocess": {"input": "abc"}}, "field preprocess.input must be an integer in 16..1024"),
    ({"preprocess": {"input": 64.5}}, "got 64.5"),
    ({"preprocess": {"input": 30000}}, "field preprocess.input must be an integer in 16..1024 or [height, width] "
                                       "of them, got 30000"),
    ({"preprocess": {"input": [32, 2000]}}, "got [32, 2000]"),
    ({"preprocess": {"mean": [0.5, 0.5]}}, "field preprocess.mean must be a list of 3 finite numbers"),
    ({"preprocess": {"std": [0.2, 0, 0.2]}}, "field preprocess.std must be 3 numbers above 0"),
    ({"preprocess": {"std": [0.2, float("nan"), 0.2]}}, "field preprocess.std must be a list of 3 finite"),
]


@pytest.mark.parametrize("metadata, expected", BAD_METADATA, ids=[str(i) for i in range(len(BAD_METADATA))])
@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_metadata_out_of_schema_is_one_line_naming_the_field(metadata, expected, fmt, tmp_path):
    state = {"w": torch.zeros(2)}
    path = tmp_path / f"meta.{fmt}"
    if fmt == "safetensors":
        save_file(state, str(path), metadata={"senet": json.dumps(metadata)})
    else:
        torch.save({"state_dict": state, "senet": metadata}, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert expected in _one_line(caught.value)


def test_metadata_within_schema_is_used(constant_model, tmp_path):
    path = save_checkpoint(constant_model, tmp_path / "ok.safetensors",
                           preprocess={"input": [INPUT_RANGE[0] * 2, 48], "mean": [0, 0, 0], "std": [1, 1, 1]})
    report = inspect(path, data="synthetic", limit=1)
    assert report.input == (32, 48) and report.preprocess.std == (1.0, 1.0, 1.0)


# --- image folders --------------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with one tiny compressed row."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b"")


@pytest.fixture
def hostile_folder(tmp_path) -> tuple[Path, int, int]:
    """(folder, readable images, unreadable ones): good PNGs beside every kind of bad file."""
    root = tmp_path / "hostile"
    generator = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for index in range(2):
            Image.fromarray(generator.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / label / f"{index}.png")
    cat = root / "cat"
    good = (cat / "0.png").read_bytes()
    (cat / "truncated.png").write_bytes(good[: len(good) // 2])
    (cat / "text.jpg").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (cat / "garbage.jpg").write_bytes(bytes(generator.integers(0, 256, 500, dtype=np.uint8)))
    (cat / "bomb.png").write_bytes(_png_header(20000, 20000))
    (cat / "passwd.jpg").symlink_to("/etc/passwd")
    (cat / "zero.jpg").symlink_to("/dev/zero")
    (cat / "dangling.jpg").symlink_to(cat / "nowhere")
    os.mkfifo(cat / "fifo.jpg")
    (cat / "again.png").symlink_to(cat / "0.png")  # the same file twice: read once
    (cat / "loop").symlink_to(root)  # a directory loop: entered once
    (root / "dog" / "up").symlink_to(root / "dog")
    return root, 4, 8


@POSIX
def test_a_hostile_folder_skips_and_counts_every_bad_file(hostile_folder, constant_model, tmp_path, cli):
    root, readable, unreadable = hostile_folder
    classes, files, skipped, duplicates = list_folder(root)
    assert classes == ("cat", "dog") and len(files) == readable + unreadable - 3 and duplicates == 1
    assert sorted(Path(s.path).name for s in skipped) == ["dangling.jpg", "fifo.jpg", "zero.jpg"]
    path = save_checkpoint(constant_model, tmp_path / "constant.pth")
    report = inspect(path, data=str(root), batch=3)
    assert report.images == readable and report.skipped_images == unreadable
    assert [Path(s.path).name for s in report.skipped_first] == [
        "dangling.jpg", "fifo.jpg", "zero.jpg", "bomb.png", "garbage.jpg"]
    assert "over the cap of 64,000,000" in report.skipped_first[3].reason
    code, out, err = cli(["inspect", str(path), "--data", str(root), "--format", "json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["images"] == readable and data["skipped_images"]["count"] == unreadable
    code, out, err = cli(["inspect", str(path), "--data", str(root)])
    assert code == 0 and "skipped 8 unreadable image(s)" in " ".join(out.split())


@POSIX
def test_strict_makes_a_bad_image_an_error_and_empty_data_is_refused(hostile_folder, constant_model, tmp_path, cli):
    root, _, _ = hostile_folder
    path = save_checkpoint(constant_model, tmp_path / "constant.pth")
    code, _, err = cli(["inspect", str(path), "--data", str(root), "--strict"])
    assert code == 2 and len(err.splitlines()) == 1 and "dangling.jpg is unreadable" in err and "--strict" in err
    for name in ("dangling.jpg", "fifo.jpg", "zero.jpg"):
        (root / "cat" / name).unlink()
    with pytest.raises(SenetError, match=r"bomb.png is unreadable .*strict=True stops"):
        inspect(path, data=str(root), strict=True)
    code, _, err = cli(["inspect", str(path), "--data", ""])
    assert code == 2 and "--data is empty" in err


@POSIX
def test_an_image_header_over_the_pixel_cap_is_refused_before_decoding(tmp_path):
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    (tmp_path / "big.png").write_bytes(_png_header(side, side))
    with pytest.raises(ValueError, match="over the cap"):
        decode(str(tmp_path / "big.png"))
    os.mkfifo(tmp_path / "late.png")  # a FIFO that appears after listing is not waited on
    with pytest.raises(ValueError, match="not a regular file"):
        decode(str(tmp_path / "late.png"))


def test_a_folder_of_only_bad_images_is_one_line(constant_model, tmp_path):
    folder = tmp_path / "bad" / "only"
    folder.mkdir(parents=True)
    (folder / "x.png").write_text("nope")
    path = save_checkpoint(constant_model, tmp_path / "constant.pth")
    with pytest.raises(SenetError, match=r"no readable images in .*: 1 unreadable, the first .*x.png") as caught:
        inspect(path, data=str(tmp_path / "bad"))
    _one_line(caught.value)


def test_a_stored_zip_record_claiming_bytes_past_the_end_of_its_file_is_refused(tmp_path):
    torch.save({"w": torch.zeros(1000)}, tmp_path / "good.pth")
    data = bytearray((tmp_path / "good.pth").read_bytes())
    with zipfile.ZipFile(tmp_path / "good.pth") as archive:
        name = next(info.filename for info in archive.infolist() if info.filename.endswith("data/0")).encode()
    entry = data.index(b"PK\x01\x02")  # the first entry of the central directory
    while data[entry + 46:entry + 46 + len(name)] != name:  # walk to data/0's: its sizes sit at +20 and +24
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 20:entry + 28] = struct.pack("<II", 3 << 30, 3 << 30)  # "3 GiB, stored"
    (tmp_path / "liar.pth").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"claims 3,221,225,472 bytes past offset .* truncated or lying"):
        load_checkpoint(tmp_path / "liar.pth")


# --- issue 24: each class of the second hostile round, with cases of our own ---------------------------


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _save_deep(payload: object, path: Path) -> Path:
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)  # pickling recurses; unpickling (torch's safe loader) does not
    try:
        torch.save(payload, path)
    finally:
        sys.setrecursionlimit(limit)
    return path


@pytest.mark.parametrize("metadata, expected", [
    ({"model": MODEL, "preprocess": {"input": _nested(5000)}}, "nests more than 16 containers deep"),
    ({"model": MODEL, "options": {"x": _nested(3000)}}, "nests more than 16 containers deep"),
    ({"model": MODEL, "notes": _nested(20)}, "nests more than 16 containers deep"),  # a kept key is walked too
    ({"model": MODEL, "notes": [[0] * 1000] * 200}, "holds more than 100,000 values"),  # one list, many times
])
def test_metadata_nested_or_wide_past_the_bounds_is_one_line_not_a_recursion(metadata, expected, tmp_path, cli):
    path = _save_deep({"state_dict": {"w": torch.zeros(2)}, "senet": metadata}, tmp_path / "deep.pth")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert expected in _one_line(caught.value)
    for argv in (["inspect", str(path), "--data", "synthetic", "--limit", "1"],
                 ["convert", str(path), str(tmp_path / "out.safetensors")]):
        code, _, err = cli(argv)
        assert code == 2 and len(err.splitlines()) == 1 and expected in err
    assert not (tmp_path / "out.safetensors").exists()


def test_a_self_referencing_metadata_list_is_refused_not_walked_forever(tmp_path):
    loop: list = []
    loop.append(loop)
    path = _save_deep({"state_dict": {"w": torch.zeros(2)}, "senet": {"notes": loop}}, tmp_path / "loop.pth")
    with pytest.raises(CheckpointError, match="nests more than 16"):
        load_checkpoint(path)


@pytest.mark.parametrize("value", ["1+" * 20_000 + "1", "(1," * 20_000, "-" * 30_000 + "1", "[" * 300 + "]" * 300])
def test_an_option_literal_the_parser_cannot_hold_is_one_line(value):
    from senet_cli.outside.names import _literal

    try:
        parsed = _literal(value)
    except SenetError as error:  # RecursionError or the parser's MemoryError, said as what it is
        text = _one_line(error)
        assert "nests too deeply" in text and f"({len(value):,} characters)" in text and "memory" not in text
    else:
        assert parsed == value or isinstance(parsed, int)  # what the parser does read stays a literal or a string


def test_an_image_folder_a_thousand_deep_is_refused_naming_where(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "cat" / "a.png")
    deep = root / "dog"
    deep.mkdir()
    here = os.getcwd()
    os.chdir(deep)  # a path 1,100 folders deep is longer than open() takes whole; walk it relative
    try:
        for _ in range(1100):
            os.mkdir("d")
            os.chdir("d")
    finally:
        os.chdir(here)
    try:
        with pytest.raises(SenetError) as caught:
            list_folder(root)
    finally:
        _remove_deep(deep, 1100)  # pytest's recursive rmtree of tmp_path would hit the recursion limit
    text = _one_line(caught.value)
    assert "nest more than 32 deep below the class folder dog" in text and "/d/d/d" in text
    shallow = tmp_path / "shallow"
    (shallow / "cat" / "a" / "b").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(shallow / "cat" / "a" / "b" / "x.png")
    assert list_folder(shallow)[0] == ("cat",)  # nesting within the bound is still read


def _remove_deep(top: Path, depth: int) -> None:
    """Remove `top`/d/d/.../d (`depth` levels) bottom-up without recursion."""
    here = os.getcwd()
    os.chdir(top)
    try:
        for _ in range(depth):
            os.chdir("d")
        for _ in range(depth):
            os.chdir("..")
            os.rmdir("d")
    finally:
        os.chdir(here)


USER_MODEL = '''
import sys
import torch
from torch import nn

class Gate(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))

class Net(nn.Module):
    def __init__(self, mode="ok"):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.att = Gate(4)
        self.head = nn.Linear(4, 3)
        self.mode = mode

    def forward(self, x):
        if self.mode == "recurse":
            return self.forward(x)
        if self.mode == "raise":
            raise ValueError("the forward is broken")
        if self.mode == "exit":
            sys.exit(0)
        return self.head(self.att(self.conv(x)).mean((2, 3)))

def recurse(): return Net("recurse")
def broken(): return Net("raise")
def leaves(): return Net("exit")
def ok(): return Net()
'''


@pytest.mark.parametrize("builder, expected", [
    ("recurse", "RecursionError: maximum recursion depth exceeded"),
    ("broken", "ValueError: the forward is broken"),
    ("leaves", "it called sys.exit(0)"),
])
def test_user_code_failing_inside_inspect_is_one_line_naming_the_model(builder, expected, tmp_path, cli):
    source = tmp_path / "user_net.py"
    source.write_text(USER_MODEL)
    namespace: dict = {}
    exec(compile(USER_MODEL, str(source), "exec"), namespace)
    checkpoint = tmp_path / "user.pth"
    torch.save(namespace["ok"]().state_dict(), checkpoint)
    code, _, err = cli(["inspect", str(checkpoint), "--model", f"{source}:{builder}", "--attention-class",
                        f"{source}:Gate", "--data", "synthetic", "--limit", "1", "--input", "16"])
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"{source}:{builder} cannot run on input [1, 3, 16, 16]" in err and expected in err


@pytest.mark.parametrize("builder, expected", [
    ("recurse", "RecursionError: maximum recursion depth exceeded"),
    ("broken", "ValueError: the forward is broken"),
    ("leaves", "it called sys.exit(0)"),
])
@pytest.mark.parametrize("command, doing", [
    (["count"], "cannot run on input [1, 3, 16, 16]"),
    (["profile", "--iters", "1", "--warmup", "0"], "cannot run an inference step on 16x16 input at batch 1"),
])
def test_user_code_failing_inside_count_and_profile_is_the_same_one_line(builder, expected, command, doing,
                                                                         tmp_path, cli):
    """count and profile run the forward through the same guard as inspect: never exit 0 with no output
    (a sys.exit in the forward), never a traceback (profile used to let a KeyError through)."""
    source = tmp_path / "user_net.py"
    source.write_text(USER_MODEL)
    code, out, err = cli([*command, f"{source}:{builder}", "--attention-class", f"{source}:Gate", "--input", "16"])
    assert code == 2 and len(err.splitlines()) == 1 and not out, err
    assert f"{source}:{builder} {doing}: {expected}" in err


def test_a_builder_that_exits_is_one_line(tmp_path, cli):
    source = tmp_path / "exiting.py"
    source.write_text("import sys\n\ndef build():\n    sys.exit(3)\n")
    code, out, err = cli(["count", f"{source}:build"])
    assert code == 2 and not out and err.strip().endswith("failed to build: it called sys.exit(3)"), err


@pytest.mark.parametrize("body, expected", [
    ("import sys\nsys.exit(0)\n", "it called sys.exit(0) while being imported"),
    ("raise SystemExit('bye')\n", "it called sys.exit('bye') while being imported"),
])
def test_a_model_file_that_exits_at_import_is_an_error_not_a_silent_exit(body, expected, tmp_path, cli):
    source = tmp_path / "quits.py"
    source.write_text(body)
    code, out, err = cli(["count", f"{source}:build"])
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and expected in err


def test_keys_sharing_a_huge_dotted_prefix_are_refused_at_once(tmp_path):
    import time

    prefix = "a." * 200_000
    path = tmp_path / "keys.pth"
    torch.save({prefix + "x": torch.zeros(1), prefix + "y": torch.zeros(1)}, path)
    started = time.perf_counter()
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert time.perf_counter() - started < 20  # the quadratic stripping took minutes
    assert "weight names are at most 1,024 characters and 64 parts" in _one_line(caught.value)


def test_prefix_stripping_is_linear_and_strips_what_it_did():
    import time

    from senet_cli.checkpoint.loading import strip_prefixes

    state = {"module.model._orig_mod.conv1.weight": 1, "module.model._orig_mod.fc.bias": 2}
    assert strip_prefixes(state) == ({"conv1.weight": 1, "fc.bias": 2}, ("module.", "model.", "_orig_mod."))
    mixed = {"module.model.a.b": 1, "model.module.c": 2}  # a wrapper prefix strips only where it leads
    assert strip_prefixes(mixed) == ({"a.b": 1, "c": 2}, ("module.", "model.", "module."))
    assert strip_prefixes({"conv1.weight": 1, "fc.bias": 2}) == ({"conv1.weight": 1, "fc.bias": 2}, ())
    shared = "w." * 60
    wide = {f"{shared}{index}.weight": index for index in range(2000)}
    started = time.perf_counter()
    stripped, prefixes = strip_prefixes(wide)
    assert len(prefixes) == 60 and stripped["7.weight"] == 7 and time.perf_counter() - started < 5


def test_a_stride_zero_head_is_refused_by_the_memory_budget_before_it_is_built(se_state, tmp_path):
    state = dict(se_state)
    classes = 2_000_000
    state["fc.weight"] = torch.zeros(1).expand(classes, state["fc.weight"].shape[1])  # 4 bytes on disk
    state["fc.bias"] = torch.zeros(1).expand(classes)
    path = tmp_path / "head.pth"
    torch.save({"state_dict": state}, path)
    assert path.stat().st_size < 2 * sum(t.numel() * 4 for k, t in se_state.items() if not k.startswith("fc."))
    with pytest.raises(SenetError) as caught:
        inspect(path, data="synthetic", limit=1)
    text = _one_line(caught.value)
    assert "its parameters alone take 3.9 GiB as float32" in text and "over the 4 GiB" in text


def test_the_memory_budget_counts_activations_at_the_input_and_batch():
    from senet_cli.inspect.budget import MAX_RUN_BYTES, check_budget, planned_bytes
    from senet_cli.subject import subject_for

    config = subject_for(MODEL).config
    parameters, activations = planned_bytes(config, (32, 32), 1)
    # se_resnet18_cifar: its widest leaf outputs are 64 x 32 x 32 (the stem and first stage keep full
    # resolution), so per image 3 x 32 x 32 input + 3 live x 65,536 values, as float32
    assert activations == 4 * (3 * 32 * 32 + 3 * 64 * 32 * 32)
    assert parameters == 4 * sum(t.numel() for t in (*build_on_meta_params(config),))
    check_budget(config, (32, 32), 16)  # the everyday run passes
    with pytest.raises(SenetError) as caught:  # metadata preprocess.input=1024 at the default batch
        check_budget(config, (1024, 1024), 16)
    text = _one_line(caught.value)
    assert "at 1024x1024 input and a batch of 16" in text and "input_size" in text and "batch" in text
    assert 4 * (3 * 2**20 + 3 * 64 * 2**20) * 16 > MAX_RUN_BYTES


def build_on_meta_params(config):
    from senet_cli.zoo import build_on_meta

    model = build_on_meta(config)
    return (*model.parameters(), *model.buffers())


def test_input_size_from_metadata_over_the_budget_is_one_line_in_the_cli(constant_model, tmp_path, cli):
    path = save_checkpoint(constant_model, tmp_path / "big.pth", preprocess={"input": 1024})
    code, _, err = cli(["inspect", str(path), "--data", "synthetic", "--limit", "1"])
    assert code == 2 and len(err.splitlines()) == 1
    assert "use a smaller --input or --batch" in err and "out of memory" not in err
    code, _, err = cli(["inspect", str(path), "--data", "synthetic", "--limit", "1", "--input", "30000"])
    assert code == 2 and "at 30000x30000 input" in err and "Decompression" not in err


LONG = "x" * 300  # over NAME_MAX (255 bytes) on every common file system


def test_names_over_name_max_are_one_line_wherever_a_path_is_looked_at(constant_model, tmp_path, cli):
    checkpoint = save_checkpoint(constant_model, tmp_path / "ok.pth")
    cases = [
        (["inspect", str(tmp_path / f"{LONG}.pth"), "--data", "synthetic"], "File name too long"),
        (["inspect", str(checkpoint), "--data", str(tmp_path / LONG)], "File name too long"),
        (["inspect", str(checkpoint), "--data", "synthetic", "--limit", "1", "--output", str(tmp_path / LONG)],
         "File name too long"),
        (["convert", str(checkpoint), str(tmp_path / f"{LONG}.safetensors")], "File name too long"),
        (["count", f"{tmp_path / LONG}.py:build"], "File name too long"),
    ]
    for argv, expected in cases:
        code, _, err = cli(argv)
        assert code == 2 and len(err.splitlines()) == 1 and expected in err, (argv[0], err)
    with pytest.raises(SenetError, match="File name too long"):
        load_checkpoint(tmp_path / f"{LONG}.pth")
    with pytest.raises(SenetError, match="File name too long"):
        save_checkpoint(constant_model, tmp_path / f"{LONG}.pth")


def test_an_output_on_a_dangling_link_is_refused_before_the_work(constant_model, tmp_path, cli):
    checkpoint = save_checkpoint(constant_model, tmp_path / "ok.pth")
    for name in ("report.json", "out.safetensors"):
        (tmp_path / name).symlink_to(tmp_path / "missing" / name)
    code, _, err = cli(["inspect", str(checkpoint), "--data", "synthetic", "--output", str(tmp_path / "report.json")])
    assert code == 2 and "which does not exist; remove the link" in err
    code, _, err = cli(["convert", str(checkpoint), str(tmp_path / "out.safetensors")])
    assert code == 2 and "which does not exist; remove the link" in err


@pytest.mark.parametrize("error, expected", [
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 25728 vs 25624"), "stopped growing"),
    (type("SafetensorError", (Exception,), {})("Error while serializing: I/O error: File too large (os error 27)"),
     "File too large"),
    (OSError(28, "No space left on device"), "No space left on device"),
    (RuntimeError("a real bug"), None),
    (ValueError("No space left"), None),  # only the writers' own error types are read
])
def test_a_writers_disguised_os_error_is_named(error, expected):
    from senet_cli.atomic import write_failure

    found = write_failure(error)
    assert found is None if expected is None else expected in found


@POSIX
@pytest.mark.parametrize("suffix", [pytest.param(".pth", marks=pytest.mark.slow), ".safetensors"])
def test_convert_past_a_file_size_limit_is_one_line_and_leaves_nothing(suffix, constant_model, tmp_path):
    import resource
    import subprocess
    import sys

    checkpoint = save_checkpoint(constant_model, tmp_path / "ok.pth")
    target = tmp_path / f"out{suffix}"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))

    done = subprocess.run([sys.executable, "-m", "senet_cli", "convert", str(checkpoint), str(target)],
                          capture_output=True, text=True, preexec_fn=limit, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 2 and done.stderr.startswith(f"senet: error: cannot write {target}: ")
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.pth"]


@POSIX
@pytest.mark.slow  # a subprocess that imports torch
def test_ctrl_c_held_down_during_convert_is_one_line_and_exit_130(constant_model, tmp_path):
    """SIGINT every 3 ms from the moment convert's temporary output appears beside the target (the
    write under way: the window where a half-written file could be left) until it exits. Waiting
    for the file, not a fixed time, puts the first signal inside the write on a fast machine too
    (a 3 s sleep let convert finish first on this project's EPYC VM, 3.7 s in all)."""
    import signal
    import subprocess
    import sys
    import time

    checkpoint = save_checkpoint(constant_model, tmp_path / "ok.pth")
    target = tmp_path / "out.pth"
    process = subprocess.Popen(
        [sys.executable, "-m", "senet_cli", "convert", str(checkpoint), str(target)], stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal's foreground job
    deadline = time.monotonic() + 240
    while process.poll() is None and not any(tmp_path.glob(f".{target.name}.*.tmp")):
        assert time.monotonic() < deadline, "convert wrote no temporary output in 240 s"
        time.sleep(0.001)
    while process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        time.sleep(0.003)
    err = process.stderr.read()
    if process.returncode == 0:
        pytest.skip("convert wrote its output between two polls 1 ms apart")
    assert process.returncode == 130 and err.strip().splitlines()[-1] == "senet: interrupted"
    assert "Traceback" not in err and not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ok.pth"]


def test_a_rank_refusal_is_rebuilt_with_its_flags_and_the_calibration_batch_is_the_first_batch(tmp_path):
    from senet_cli.cli.errors import message
    from senet_cli.errors import ArgumentError
    from senet_cli.inspect.distributed import _report
    from senet_cli.inspect.images import _strict_error, open_images
    from senet_cli.inspect.results import Preprocess, SkippedImage

    template, arguments, fields = _report(_strict_error(SkippedImage("/data/cat/00bad.png", "not an image")))
    rebuilt = ArgumentError("rank 1 of 2 failed: " + template, arguments=arguments, **fields)
    assert message(rebuilt).startswith("rank 1 of 2 failed: image /data/cat/00bad.png is unreadable")
    assert "--strict stops" in message(rebuilt) and "strict=True" not in message(rebuilt)
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    for index in range(5):
        Image.new("RGB", (8, 8), (40 * index, 0, 0)).save(root / "cat" / f"{index}.png")
    (root / "cat" / "00bad.png").write_text("not an image")  # first in the list
    preprocess = Preprocess(size=(8, 8), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    one = open_images(str(root), preprocess, batch=3)
    first = next(iter(one))[0]
    assert first.shape[0] == 2  # positions 0..2 less the bad file: what one process calibrates on
    assert torch.equal(open_images(str(root), preprocess, batch=3, shard=(1, 2)).head(), first)


class _AsksForGetattr:
    def __reduce__(self):
        import collections

        return getattr, (collections.OrderedDict(), "keys")


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_a_pickle_asking_for_builtins_getattr_names_it_at_every_protocol(protocol, tmp_path):
    path = tmp_path / f"getattr{protocol}.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": _AsksForGetattr()}, path, pickle_protocol=protocol)
    with pytest.raises(SenetError) as caught:  # protocols 0 and 1 stop torch's scanner ("Unsupported operand")
        load_checkpoint(path)
    text = _one_line(caught.value)
    assert "(builtins.getattr)" in text and "corrupt" not in text and "--trust" not in text.replace("trust=True", "")
