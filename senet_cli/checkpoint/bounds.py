"""Checks an untrusted checkpoint passes before anything it declares is allocated.

A checkpoint is read from a stranger's file, so every size in it is a claim. Each claim is checked
against the file's own size and against stated caps before torch or safetensors acts on it:

  file            at most MAX_FILE_BYTES (4 GiB) on disk.
  torch zip       (torch.save since 1.6) the zip directory is read first: every record must lie
                  inside the file and be stored or deflated; torch writes records stored, so a
                  deflated record that would inflate past 1 MiB at more than 10x its packed size (a
                  14 MB file holding a 3 GiB tensor) is refused; all records together declare at
                  most MAX_TENSOR_BYTES, and the pickle record at most MAX_PICKLE_BYTES.
  legacy pickle   (torch.save before 1.6) the pickles (at most MAX_PICKLE_BYTES) are read from memory
                  by an unpickler that builds nothing (every global is a stand-in), listing the
                  globals it names and the storages it declares; those storages must fit in the
                  file, since their bytes follow the pickles.
  safetensors     the header length must fit the file and MAX_PICKLE_BYTES; every tensor's dtype,
                  shape and data offsets must agree with each other and lie inside the file.
  weight names    at most MAX_KEY_CHARS (1,024) characters and MAX_KEY_PARTS (64) dotted parts each.
  loaded tensors  at most MAX_VALUES values in all (2**30: 4 GiB as float32), counted before a
                  sparse tensor is made dense or a stride-0 view copied; meta, nested and complex
                  tensors are refused; integer, bool, quantized and 8-bit float weights are cast to
                  float32 and the cast said in the checkpoint's notes. What casting and densifying
                  allocate together is at most GROWTH_RATIO (16) times the file's size, or
                  GROWTH_FREE_BYTES (256 MiB) for a small file: a 1.6 KB file holding an int8 view of
                  one value broadcast to 10^9 (or a sparse tensor of one value in 10^9) is refused
                  before 4 GB are allocated for it. A real int8 checkpoint grows 4x, a bool one 4x.

Errors are `CheckpointError`s: one line naming the file and what it is not.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from senet_cli.checkpoint.counters import is_step_counter
from senet_cli.errors import CheckpointError, first_line

if TYPE_CHECKING:
    import torch

GIB = 1 << 30
MAX_FILE_BYTES = 4 * GIB
MAX_TENSOR_BYTES = 4 * GIB
MAX_PICKLE_BYTES = 64 << 20
MAX_VALUES = 1 << 30
GROWTH_RATIO = 16
GROWTH_FREE_BYTES = 256 << 20
DEFLATE_FREE_BYTES = 1 << 20
DEFLATE_MAX_RATIO = 10
MAX_KEY_CHARS = 1024
MAX_KEY_PARTS = 64
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
"""The number torch.save's legacy (non-zip) format pickles first."""

SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E4M3FN": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
    "C64": 8,
}
LEGACY_ITEMSIZE = {
    "Byte": 1, "Char": 1, "Bool": 1, "QUInt8": 1, "QInt8": 1, "QUInt4x2": 1, "QUInt2x4": 1,
    "Short": 2, "Half": 2, "BFloat16": 2, "Int": 4, "Float": 4, "QInt32": 4, "Long": 8, "Double": 8,
    "ComplexFloat": 8, "ComplexDouble": 16,
}


def shown(path: object, limit: int = 120) -> str:
    """A path as messages show it: whole when short, else its head and tail around '...'."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-(limit // 2 - 3):]}"


def size_text(count: int) -> str:
    """Bytes as a reader takes them in: '3.00 GiB', '16.0 MiB', '1,577 bytes'."""
    if count >= GIB:
        return f"{count / GIB:.2f} GiB"
    return f"{count / (1 << 20):.1f} MiB" if count >= 1 << 20 else f"{count:,} bytes"


def not_a_checkpoint(file: Path, reason: str) -> CheckpointError:
    """The one-line error for a file that no loader can read."""
    return CheckpointError(file, f"{shown(file)} is not a torch checkpoint or safetensors file: {reason}")


def check_file(file: Path) -> int:
    """The size of `file`, refused when it is not a regular file of 1 byte to MAX_FILE_BYTES."""
    import stat

    try:
        info = file.stat()
    except OSError as error:
        raise CheckpointError(file, f"checkpoint {shown(file)} cannot be read: {first_line(error, 120)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(file, f"checkpoint {shown(file)} is a directory; give a .pth, .pt, .ckpt or "
                                    f".safetensors file")
    if not stat.S_ISREG(info.st_mode):
        raise not_a_checkpoint(file, "not a regular file (a device, FIFO or socket)")
    if info.st_size == 0:
        raise CheckpointError(file, f"checkpoint {shown(file)} is empty (0 bytes)")
    if info.st_size > MAX_FILE_BYTES:
        raise CheckpointError(file, f"checkpoint {shown(file)} is {size_text(info.st_size)}, over the "
                                    f"{size_text(MAX_FILE_BYTES)} this tool reads")
    return info.st_size


def head(file: Path, size: int = 16) -> bytes:
    """The first `size` bytes of `file` (which formats it may be), or a CheckpointError if unreadable."""
    try:
        with file.open("rb") as stream:
            return stream.read(size)
    except OSError as error:
        raise CheckpointError(file, f"checkpoint {shown(file)} cannot be read: "
                                    f"{error.strerror or first_line(error, 120)}") from None


def is_zip(start: bytes) -> bool:
    return start[:4] == b"PK\x03\x04"


def is_legacy_pickle(start: bytes) -> bool:
    """torch.save's legacy format: a protocol-2+ pickle of LEGACY_MAGIC (LONG1, 10 bytes) first."""
    return len(start) >= 4 and start[0] == 0x80 and start[2:4] == b"\x8a\x0a"


def check_torch_zip(file: Path, max_bytes: int = MAX_TENSOR_BYTES) -> None:
    """Refuse a zip whose records declare more than torch.save could have written (module doc)."""
    try:
        with zipfile.ZipFile(file) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error, NotImplementedError) as error:
        raise CheckpointError(file, f"{shown(file)} is not a complete torch checkpoint (truncated or corrupt zip: "
                                    f"{first_line(error, 120)})") from None
    pickles = [r for r in records if r.filename.endswith("/data.pkl") or r.filename == "data.pkl"]
    if not pickles:
        raise not_a_checkpoint(file, "a zip archive without the data.pkl record torch.save writes")
    total, size = 0, file.stat().st_size
    for record in records:
        name = shown(record.filename, 60)
        if record.header_offset + record.compress_size > size:
            raise CheckpointError(file, f"{shown(file)} is not a complete torch checkpoint (zip record {name} claims "
                                        f"{record.compress_size:,} bytes past offset {record.header_offset:,} of a "
                                        f"{size:,}-byte file: truncated or lying)")
        if record.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise not_a_checkpoint(file, f"zip record {name} uses compression method {record.compress_type}; "
                                         f"torch writes records stored")
        if record.compress_type == zipfile.ZIP_DEFLATED and record.file_size > max(
            DEFLATE_FREE_BYTES, DEFLATE_MAX_RATIO * record.compress_size
        ):
            raise CheckpointError(
                file, f"{shown(file)} was refused: zip record {name} inflates {record.compress_size:,} bytes to "
                      f"{record.file_size:,} (torch writes records uncompressed; over {DEFLATE_MAX_RATIO}x is a "
                      f"decompression bomb)")
        total += record.file_size
    if total > max_bytes:
        raise CheckpointError(file, f"{shown(file)} was refused: its records hold {size_text(total)}, over the "
                                    f"{size_text(max_bytes)} cap on a checkpoint's tensors")
    if max(r.file_size for r in pickles) > MAX_PICKLE_BYTES:
        raise CheckpointError(file, f"{shown(file)} was refused: its pickle is over {MAX_PICKLE_BYTES >> 20} MiB")


class _Stand:
    """What the scanning unpickler builds for any global: accepts every call, builds nothing."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


@dataclass(frozen=True)
class LegacyScan:
    """What a legacy torch file's pickles name: globals ('module.name'), and the storages' bytes."""

    globals: tuple[str, ...]
    storage_bytes: int


class _Scanner(pickle.Unpickler):
    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream)
        self.names: list[str] = []
        self.storage_bytes = 0

    def find_class(self, module: str, name: str) -> Any:
        qualname = f"{module}.{name}"
        self.names.append(qualname)
        return type("Stand", (_Stand,), {"qualname": qualname})

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage type, key, location, numel[, view metadata])
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[4], int):
            kind = getattr(pid[1], "qualname", "?").rpartition(".")[2].removesuffix("Storage")
            self.storage_bytes += max(pid[4], 0) * LEGACY_ITEMSIZE.get(kind, 16)
        return _Stand()


def scan_legacy(file: Path, size: int) -> LegacyScan:
    """Read a legacy torch file's pickles with stand-ins (module doc); refuse one that is not torch's
    or whose storages cannot fit in it."""
    with file.open("rb") as source:
        stream = io.BytesIO(source.read(MAX_PICKLE_BYTES))  # a lying length reads to the end, not past it
    try:
        magic = _Scanner(stream).load()
        if magic != LEGACY_MAGIC:
            raise not_a_checkpoint(file, "a pickle, but not one torch.save wrote (no torch magic number)")
        scanner = _Scanner(stream)
        for _ in range(3):  # protocol version, system info, the object itself
            scanner.load()
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 (a corrupt pickle fails in many ways; all mean the same)
        reason = f"{type(error).__name__}: {first_line(error, 100)}"
        if size > MAX_PICKLE_BYTES and isinstance(error, (EOFError, pickle.UnpicklingError)):
            reason += f"; or its pickles exceed {MAX_PICKLE_BYTES >> 20} MiB"
        raise not_a_checkpoint(file, f"a corrupt or truncated legacy torch pickle ({reason})") from None
    if scanner.storage_bytes > size:
        raise CheckpointError(file, f"{shown(file)} was refused: its pickle declares {scanner.storage_bytes:,} bytes "
                                    f"of tensors, more than the file's {size:,} bytes")
    return LegacyScan(tuple(dict.fromkeys(scanner.names)), scanner.storage_bytes)


def unsafe_legacy_globals(scan: LegacyScan) -> list[str]:
    """The globals of a legacy file that torch's restricted unpickler does not allow."""
    return unsafe_names(scan.globals)


def unsafe_names(names: Iterable[str]) -> list[str]:
    """Those of `names` ('module.name') torch's restricted unpickler does not allow, each once."""
    from torch import _weights_only_unpickler as restricted

    allowed = set(restricted._get_allowed_globals()) | set(restricted._get_user_allowed_globals())
    return [name for name in dict.fromkeys(names) if name not in allowed]


def zip_pickle_globals(file: Path) -> list[str]:
    """The globals a torch zip's data.pkl names, read opcode by opcode (pickletools.genops: nothing
    is built or called), as far as the pickle parses. For a pickle torch's safe loader refuses before
    its scanner can list them (protocols 0 and 1 use opcodes it does not take: "Unsupported operand
    100"), so the refusal names the global (builtins.getattr) instead of calling the file corrupt."""
    import pickletools
    from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING

    try:
        with zipfile.ZipFile(file) as archive:
            record = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if record is None or archive.getinfo(record).file_size > MAX_PICKLE_BYTES:
                return []
            data = archive.read(record)
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError):
        return []
    names: list[str] = []
    strings: list[str] = []
    try:
        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name in ("GLOBAL", "INST") and isinstance(argument, str):
                module, _, name = argument.partition(" ")
                module, name = NAME_MAPPING.get((module, name), (IMPORT_MAPPING.get(module, module), name))
                names.append(f"{module}.{name}")
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(argument, str):
                strings.append(argument)
    except Exception:  # noqa: BLE001 (a fuzzed pickle stops parsing somewhere: what was read still counts)
        pass
    return names


def check_safetensors(file: Path, size: int, max_bytes: int = MAX_TENSOR_BYTES) -> dict[str, Any]:
    """The header of a safetensors file, once every entry is checked against the file (module doc)."""
    if size < 8:
        raise not_a_checkpoint(file, f"{size} bytes, shorter than a safetensors header")
    with file.open("rb") as stream:
        length = int.from_bytes(stream.read(8), "little")
        if length < 2 or 8 + length > size or length > MAX_PICKLE_BYTES:
            raise not_a_checkpoint(file, f"safetensors header of {length:,} bytes in a file of {size:,}")
        raw = stream.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise not_a_checkpoint(file, f"safetensors header is not JSON ({first_line(error, 80)})") from None
    if not isinstance(header, dict):
        raise not_a_checkpoint(file, f"safetensors header is a JSON {type(header).__name__}, not an object")
    data_size, total = size - 8 - length, 0
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise not_a_checkpoint(file, "safetensors __metadata__ is not an object of strings")
            continue
        total += _tensor_bytes(file, key, entry, data_size)
    if total > max_bytes:
        raise CheckpointError(file, f"{shown(file)} was refused: its tensors hold {size_text(total)}, over the "
                                    f"{size_text(max_bytes)} cap on a checkpoint's tensors")
    return header


def _tensor_bytes(file: Path, key: str, entry: Any, data_size: int) -> int:
    name = shown(key, 60)
    if not isinstance(entry, dict):
        raise not_a_checkpoint(file, f"safetensors entry {name!r} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in SAFETENSORS_ITEMSIZE:
        raise not_a_checkpoint(file, f"tensor {name!r} has dtype {shown(dtype, 20)!r}; known: "
                                     f"{', '.join(SAFETENSORS_ITEMSIZE)}")
    if not isinstance(shape, list) or not all(type(side) is int and side >= 0 for side in shape):
        raise not_a_checkpoint(file, f"tensor {name!r} has shape {shown(shape, 40)}, not a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(v) is int for v in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size):
        raise not_a_checkpoint(file, f"tensor {name!r} has data offsets {shown(offsets, 40)} outside the "
                                     f"{data_size:,} data bytes")
    values = 1
    for side in shape:
        values *= side
    expected = values * SAFETENSORS_ITEMSIZE[dtype]
    if offsets[1] - offsets[0] != expected:
        raise not_a_checkpoint(file, f"tensor {name!r} ({dtype} {shape}) needs {expected:,} bytes, its offsets "
                                     f"span {offsets[1] - offsets[0]:,}")
    return expected


def check_keys(file: Path, state: Mapping[str, Any]) -> None:
    """Refuse weight names no model has: over MAX_KEY_CHARS characters or MAX_KEY_PARTS dotted
    components (timm's longest names are about 80 characters and 8 components). Checked before any
    key is split or compared, so a file cannot make that work grow with a million-component name."""
    for key in state:
        if len(key) > MAX_KEY_CHARS or key.count(".", 0, MAX_KEY_CHARS + 1) >= MAX_KEY_PARTS:
            raise CheckpointError(file, f"{shown(file)} names a weight {shown(key, 60)!r} of {len(key):,} characters "
                                        f"and {key.count('.') + 1:,} dotted parts; weight names are at most "
                                        f"{MAX_KEY_CHARS:,} characters and {MAX_KEY_PARTS} parts")


def settle_tensors(
    file: Path, state: Mapping[str, torch.Tensor], max_values: int = MAX_VALUES
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Dense float (or kept-integer) tensors the model can take, and notes on what was cast (module doc)."""

    total = sum(int(tensor.numel()) for tensor in state.values())
    if total > max_values:
        raise CheckpointError(file, f"{shown(file)} was refused: its tensors hold {total:,} values, over the cap of "
                                    f"{max_values:,} ({size_text(4 * max_values)} as float32)")
    growth = sum(_allocation(tensor) for tensor in state.values())
    allowed = max(GROWTH_FREE_BYTES, GROWTH_RATIO * _file_size(file))
    if growth > allowed:
        raise CheckpointError(file, f"{shown(file)} was refused: casting or densifying its tensors would allocate "
                                    f"{size_text(growth)}, over {GROWTH_RATIO}x its size on disk "
                                    f"(or {size_text(GROWTH_FREE_BYTES)} for a small file)")
    settled: dict[str, torch.Tensor] = {}
    cast: dict[str, list[str]] = {}
    for key, tensor in state.items():
        try:
            _settle(file, key, tensor, settled, cast)
        except CheckpointError:
            raise
        except (RuntimeError, ValueError, TypeError, NotImplementedError) as error:
            raise CheckpointError(file, f"{shown(file)}: tensor {shown(key, 60)} cannot be read as weights "
                                        f"({type(error).__name__}: {first_line(error, 100)})") from None
    notes = tuple(
        f"{len(keys)} tensor(s) {what}: {', '.join(shown(k, 60) for k in keys[:3])}{', ...' if len(keys) > 3 else ''}"
        for what, keys in cast.items()
    )
    return settled, notes


def _allocation(tensor: torch.Tensor) -> int:
    """Bytes `_settle` allocates for `tensor`: a dense copy of a sparse or quantized one, a float32 copy
    of one that is cast; nothing for a float tensor kept as it is."""
    import torch

    numel = int(tensor.numel())
    if tensor.is_meta or tensor.is_nested or tensor.is_complex():
        return 0  # refused by _settle
    unusual = tensor.layout != torch.strided or tensor.is_quantized
    kept = tensor.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    if not kept:
        return 4 * numel
    return numel * tensor.element_size() if unusual else 0


def _file_size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0


def _settle(file: Path, key: str, tensor: torch.Tensor, settled: dict[str, torch.Tensor],
            cast: dict[str, list[str]]) -> None:
    """Put `tensor` into `settled` as the model can take it, noting any cast in `cast` (what -> keys)."""
    import torch

    name = shown(key, 60)
    if tensor.is_meta or tensor.is_nested:
        raise CheckpointError(file, f"{shown(file)}: tensor {name} is a {'meta' if tensor.is_meta else 'nested'} "
                                    f"tensor; a checkpoint's weights must hold their values")
    if tensor.is_complex():
        raise CheckpointError(file, f"{shown(file)}: tensor {name} is complex ({tensor.dtype}); the zoo's "
                                    f"weights are real")
    if tensor.layout != torch.strided:
        tensor = tensor.to_dense()
        cast.setdefault("sparse made dense", []).append(key)
    if tensor.is_quantized:
        tensor = tensor.dequantize()
        cast.setdefault("quantized dequantized", []).append(key)
    if is_step_counter(key) and not tensor.is_floating_point():  # an integer in the model too: never cast
        settled[key] = tensor
        return
    if not tensor.is_floating_point() or tensor.dtype not in (torch.float16, torch.bfloat16, torch.float32,
                                                               torch.float64):
        cast.setdefault(f"{str(tensor.dtype).removeprefix('torch.')} cast to float32", []).append(key)
        tensor = tensor.to(torch.float32)
    settled[key] = tensor
