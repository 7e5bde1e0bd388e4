"""Load checkpoints safely and unwrap their containers (writing them: writing.py).

Safety: a `.pth`/`.pt`/`.ckpt` file is a pickle, and unpickling can run any code the file names.
`load_checkpoint` therefore reads with `torch.load(weights_only=True)`, torch's restricted
unpickler (tensors, containers and primitives only). A file that needs anything else is refused
with the globals it asks for (`torch.serialization.get_unsafe_globals_in_checkpoint`) unless the
caller passes `trust=True`. `.safetensors` files hold no code at all and always load.

Containers unwrapped, as the training libraries write them:
  plain state dict; {"state_dict": ...} (Lightning `.ckpt`, timm train scripts); {"model": ...}
  (torchvision references, DeiT); {"model_state_dict": ...}; EMA weights under "state_dict_ema"
  or "model_ema" (taken when asked for with `ema=True`, or when they are the only weights); a whole
  pickled `nn.Module` (only with trust). Key prefixes stripped: "module." (DataParallel / DDP),
  "_orig_mod." (torch.compile), and an attribute prefix every key shares (Lightning's "model.").
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from senet_cli import paths
from senet_cli.checkpoint import bounds
from senet_cli.checkpoint.bounds import MAX_TENSOR_BYTES
from senet_cli.checkpoint.metadata import validate_metadata
from senet_cli.errors import ArgumentError, CheckpointError, CheckpointSafetyError, first_line

if TYPE_CHECKING:
    import torch

METADATA_KEY = "senet"
"""Where our own checkpoints keep {"model", "options", "preprocess", "version"}: a top-level key of
the torch dict, or a safetensors metadata entry (as JSON text)."""

WEIGHT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")
EMA_KEYS = ("state_dict_ema", "model_ema", "ema_state_dict", "ema")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
SAFETENSORS_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class Checkpoint:
    """A state dict read from a file, and how it was found.

    `container` is the path of keys it sat under ("" for a plain state dict, "state_dict",
    "model_ema", ...); `stripped` the key prefixes removed; `metadata` what our own checkpoints
    record (empty for others); `other_weights` names weights present but not taken (EMA or raw).
    """

    path: str
    format: str  # "torch" or "safetensors"
    state_dict: Mapping[str, torch.Tensor]
    container: str = ""
    stripped: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    trusted: bool = False
    other_weights: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what loading changed: integer, sparse or quantized tensors cast to float

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: tuple(value.shape) for key, value in self.state_dict.items()}

    def describe(self) -> dict[str, Any]:
        """How the weights were found, for reports (JSON-ready)."""
        return {
            "path": self.path, "format": self.format, "container": self.container or None,
            "stripped_prefixes": list(self.stripped), "tensors": len(self.state_dict),
            "parameters": sum(t.numel() for t in self.state_dict.values() if t.is_floating_point()),
            "trusted_pickle": self.trusted, "not_used": list(self.other_weights),
            "metadata": bool(self.metadata), "notes": list(self.notes),
        }


def load_checkpoint(
    path: str | os.PathLike[str], *, trust: bool = False, ema: bool = False, max_bytes: int = MAX_TENSOR_BYTES
) -> Checkpoint:
    """Read `path` (torch or safetensors), unwrap it and strip wrapper prefixes. See the module doc.

    Every size the file declares is checked before it is allocated (senet_cli/checkpoint/bounds.py: a
    file of at most 4 GiB, tensors of at most `max_bytes`, no decompression bombs), and its `senet`
    metadata against the schema of senet_cli/checkpoint/metadata.py. Raises a SenetError, in one line,
    for a missing, empty, truncated, non-torch, oversized or unsafe file.
    """
    file = Path(path)
    if not paths.exists(file, "checkpoint"):
        raise CheckpointError(file, f"checkpoint {bounds.shown(file)} does not exist")
    size = bounds.check_file(file)
    start = bounds.head(file)
    if file.suffix.lower() == SAFETENSORS_SUFFIX or _looks_like_safetensors(start, size):
        tensors, raw = _read_safetensors(file, size, max_bytes)
        return _unwrap(file, "safetensors", tensors, raw, trusted=False, ema=ema, max_bytes=max_bytes)
    payload = _read_torch(file, trust, start, size, max_bytes)
    raw = payload.get(METADATA_KEY) if isinstance(payload, Mapping) else None
    return _unwrap(file, "torch", payload, raw, trust, ema, max_bytes)


def _looks_like_safetensors(start: bytes, size: int) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length, then '{'."""
    return len(start) >= 9 and start[8:9] == b"{" and 0 < int.from_bytes(start[:8], "little") < size


def _read_safetensors(file: Path, size: int, max_bytes: int) -> tuple[dict[str, torch.Tensor], Any]:
    """The tensors and the raw `senet` metadata (JSON text, or None) of a header-checked safetensors file."""
    header = bounds.check_safetensors(file, size, max_bytes)
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(file))
    except Exception as error:  # noqa: BLE001 (safetensors and torch raise many types for one meaning)
        raise bounds.not_a_checkpoint(file, f"unreadable safetensors ({first_line(error, 160)})") from None
    raw = (header.get("__metadata__") or {}).get(METADATA_KEY)
    if raw is None:
        return tensors, None
    try:
        return tensors, json.loads(raw)
    except (ValueError, RecursionError):
        raise CheckpointError(file, f"{bounds.shown(file)}: metadata field senet must be JSON text, got "
                                    f"{raw[:40]!r}") from None


def _read_torch(file: Path, trust: bool, start: bytes, size: int, max_bytes: int) -> Any:
    """torch.load of a file whose format and declared sizes passed their checks (see bounds.py)."""
    import torch

    scan = None
    if bounds.is_zip(start):
        bounds.check_torch_zip(file, max_bytes)
    elif bounds.is_legacy_pickle(start):
        scan = bounds.scan_legacy(file, size)
    elif start[:1] == b"\x80":
        raise bounds.not_a_checkpoint(file, "a pickle, but not one torch.save wrote (no torch magic number)")
    else:
        kind = "text" if _is_text(start) else "data"
        raise bounds.not_a_checkpoint(file, f"{kind} that starts with neither a zip header, a torch pickle nor a "
                                            f"safetensors header")
    if scan is not None and not trust:
        blocked = bounds.unsafe_legacy_globals(scan)
        if blocked:
            raise _unsafe(file, blocked)
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols; we report in one line
            warnings.simplefilter("ignore")
            return torch.load(file, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as error:
        if trust:
            raise bounds.not_a_checkpoint(file, f"unpickling failed ({first_line(error, 160)})") from None
        blocked = _unsafe_globals(file, str(error))
        if blocked:
            raise _unsafe(file, blocked) from None
        found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(error))
        detail = found.group(1).strip()[:160] if found else first_line(error, 160)
        raise bounds.not_a_checkpoint(file, f"torch's safe loader refused it ({detail})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as error:
        reason = "empty or cut short" if isinstance(error, EOFError) else first_line(error, 160).split(". ")[0]
        message = f"{bounds.shown(file)} is not a complete torch checkpoint (truncated or corrupt: {reason})"
        raise CheckpointError(file, message) from None
    except MemoryError:
        raise CheckpointError(file, f"{bounds.shown(file)} asked for more memory than is free while "
                                    f"unpickling") from None
    except Exception as error:  # noqa: BLE001 (a corrupt pickle fails as IndexError, struct.error, ...)
        what = "even when trusted" if trust else "in torch's safe loader"
        raise bounds.not_a_checkpoint(file, f"unpickling failed {what} ({type(error).__name__}: "
                                            f"{first_line(error, 120)})") from None


def _is_text(start: bytes) -> bool:
    """Whether a file's first bytes look like text (ASCII letters, digits, punctuation, whitespace)."""
    return all(32 <= byte < 127 or byte in b"\t\n\r" for byte in start)


def _unsafe(file: Path, blocked: list[str]) -> CheckpointSafetyError:
    names = ", ".join(bounds.shown(name, 80) for name in blocked[:6]) + (", ..." if len(blocked) > 6 else "")
    return CheckpointSafetyError(
        "{file} needs arbitrary pickled objects ({names}); unpickling them could run code from "
        "the file, so it was not loaded. Pass {trust} only if you trust its source",
        arguments={"trust": ("trust", True)}, file=bounds.shown(file), names=names, globals=tuple(blocked),
    )


def _unsafe_globals(file: Path, message: str) -> list[str]:
    """The globals the safe loader refused: from torch's scanner, else from its error message."""
    import torch

    finder = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    try:
        found = sorted(finder(str(file))) if finder is not None else []
    except Exception:  # noqa: BLE001 (an old-format or odd file: fall back to the message)
        found = []
    if not found and bounds.is_zip(bounds.head(file)):
        found = bounds.unsafe_names(bounds.zip_pickle_globals(file))
    return found or re.findall(r"Unsupported global: GLOBAL ([\w.]+)", message)


def _is_state_dict(value: Any) -> bool:
    import torch

    return (
        isinstance(value, Mapping) and len(value) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _as_weights(value: Any) -> Mapping[str, torch.Tensor] | None:
    """A state dict from a state dict, a whole module (trusted pickles), or a dict holding one."""
    import torch

    if isinstance(value, torch.nn.Module):
        return value.state_dict()
    if _is_state_dict(value):
        return value
    if isinstance(value, Mapping):
        tensors = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors and len(tensors) >= len(value) - 2:  # e.g. a state dict with a stray "epoch"
            return tensors
    return None


def _unwrap(
    file: Path, fmt: str, payload: Any, raw_metadata: Any, trusted: bool, ema: bool, max_bytes: int
) -> Checkpoint:
    path = str(file)
    container, weights, others = _find_weights(payload, ema)
    if weights is None:
        if isinstance(payload, Mapping):
            found = f"keys: {', '.join(bounds.shown(k, 40) for k in list(payload)[:8])}"
        else:
            found = type(payload).__name__
        raise CheckpointError(
            path, f"no state dict found in {bounds.shown(path)} ({found}); expected a state dict or one under "
            f"{', '.join(WEIGHT_KEYS + EMA_KEYS)}"
        )
    if ema and container not in EMA_KEYS:
        raise ArgumentError("{ema} asked for, but {path} holds no EMA weights (looked for {looked_for})",
                            arguments={"ema": ("ema", True)}, path=bounds.shown(path),
                            looked_for=", ".join(EMA_KEYS))
    metadata = {} if raw_metadata is None else validate_metadata(raw_metadata, bounds.shown(path), path)
    bounds.check_keys(file, weights)
    state, stripped = strip_prefixes(dict(weights))
    state, notes = bounds.settle_tensors(file, state, max_values=max_bytes // 4)
    return Checkpoint(path=path, format=fmt, state_dict=state, container=container, stripped=stripped,
                      metadata=metadata, trusted=trusted, other_weights=others, notes=notes)


def _find_weights(payload: Any, ema: bool) -> tuple[str, Mapping[str, torch.Tensor] | None, tuple[str, ...]]:
    direct = _as_weights(payload) if not isinstance(payload, Mapping) or _is_state_dict(payload) else None
    if direct is not None:
        return "", direct, ()
    if not isinstance(payload, Mapping):
        return "", None, ()
    raw, averaged = _weights_under(payload, WEIGHT_KEYS), _weights_under(payload, EMA_KEYS)
    preferred, rest = (averaged, raw) if ema or not raw else (raw, averaged)
    if preferred:
        key, weights = preferred[0]
        return key, weights, tuple(k for k, _ in preferred[1:] + rest)
    return "", _as_weights(payload), ()


def _weights_under(payload: Mapping[str, Any], keys: tuple[str, ...]) -> list[tuple[str, Mapping[str, torch.Tensor]]]:
    """(key, weights) for each of `keys` in `payload` whose value holds weights, in `keys`' order."""
    found = ((key, _as_weights(payload[key])) for key in keys if key in payload)
    return [(key, weights) for key, weights in found if weights is not None]


def strip_prefixes(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Remove "module." / "_orig_mod." wherever they lead a key, and a first component every key shares.

    A model's own state dict always has several top-level children (conv1, bn1, layer1, ..., fc), so
    a component shared by every key is a wrapper's attribute (Lightning's `self.model`).

    Each key keeps an offset of what is stripped so far and strings are cut once at the end: a step
    looks only at the next component, so the work is linear in the keys' length (rebuilding every key
    at every step made two keys sharing a million-component prefix take minutes). The keys' length
    and components are bounded before this (bounds.check_keys).
    """
    keys = list(state)
    offsets = [0] * len(keys)
    stripped: list[str] = []
    while keys:
        for prefix in WRAPPER_PREFIXES:
            leading = [key.startswith(prefix, offset) for key, offset in zip(keys, offsets, strict=True)]
            if any(leading):
                offsets = [offset + len(prefix) if lead else offset
                           for offset, lead in zip(offsets, leading, strict=True)]
                stripped.append(prefix)
                break
        else:
            ends = [key.find(".", offset) for key, offset in zip(keys, offsets, strict=True)]
            if all(end >= 0 for end in ends):
                heads = {key[offset:end + 1] for key, offset, end in zip(keys, offsets, ends, strict=True)}
                if len(heads) == 1:
                    stripped.append(heads.pop())
                    offsets = [end + 1 for end in ends]
                    continue
            break
    return {key[offset:]: state[key] for key, offset in zip(keys, offsets, strict=True)}, tuple(stripped)
