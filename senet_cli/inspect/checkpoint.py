"""Load checkpoints safely, unwrap their containers, and save ours with the metadata to rebuild them.

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

from senet_cli._version import __version__
from senet_cli.atomic import atomic_path
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
            "metadata": bool(self.metadata),
        }


def load_checkpoint(path: str | os.PathLike[str], *, trust: bool = False, ema: bool = False) -> Checkpoint:
    """Read `path` (torch or safetensors), unwrap it and strip wrapper prefixes. See the module doc.

    Raises SenetError, in one line, for a missing, empty, truncated, non-torch or unsafe file.
    """
    file = Path(path)
    if not file.exists():
        raise CheckpointError(file, f"checkpoint {file} does not exist")
    if file.is_dir():
        raise CheckpointError(file, f"checkpoint {file} is a directory; give a .pth, .pt, .ckpt or .safetensors file")
    if file.stat().st_size == 0:
        raise CheckpointError(file, f"checkpoint {file} is empty (0 bytes)")
    if file.suffix.lower() == SAFETENSORS_SUFFIX or _looks_like_safetensors(file):
        tensors, metadata = _read_safetensors(file)
        return _unwrap(str(file), "safetensors", tensors, metadata, trusted=False, ema=ema)
    payload = _read_torch(file, trust)
    metadata = payload.get(METADATA_KEY, {}) if isinstance(payload, Mapping) else {}
    return _unwrap(str(file), "torch", payload, metadata if isinstance(metadata, Mapping) else {}, trust, ema)


def save_checkpoint(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    *,
    preprocess: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Save `model`'s weights with the metadata that rebuilds it: `.safetensors` or a torch file.

    The torch file is {"state_dict": ..., "senet": {...}, **extra}, loadable with weights_only=True;
    `preprocess` ({"input": 32, "mean": [...], "std": [...]}) tells `inspect` how to feed it.
    Written to a temporary file and renamed, so a crash never leaves half a checkpoint.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ArgumentError("{model} must be a torch.nn.Module, got {kind} (a state dict saves with torch.save or "
                            "safetensors)", arguments=("model",), kind=type(model).__name__)
    file = Path(path)
    if file.exists() and not force:
        raise ArgumentError("{file} already exists; pass {force} to overwrite it",
                            arguments={"force": ("force", True)}, file=file)
    config = getattr(model, "senet_config", None)
    metadata: dict[str, Any] = {"version": __version__}
    if config is not None:
        metadata.update(model=config.name, options=config.as_dict())
    if preprocess:
        metadata["preprocess"] = dict(preprocess)
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    with atomic_path(file) as temporary:
        if file.suffix.lower() == SAFETENSORS_SUFFIX:
            from safetensors.torch import save_file

            save_file(state, temporary, metadata={METADATA_KEY: json.dumps(metadata)})
        else:
            torch.save({"state_dict": state, METADATA_KEY: metadata, **(extra or {})}, temporary)
    return file


def _looks_like_safetensors(file: Path) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length, then '{'."""
    with file.open("rb") as stream:
        head = stream.read(9)
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < file.stat().st_size


def _read_safetensors(file: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(file), framework="pt") as reader:
            raw = reader.metadata() or {}
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as error:
        reason = first_line(error, 200)
        raise CheckpointError(file, f"checkpoint {file} is not a readable safetensors file ({reason})") from None
    metadata: dict[str, Any] = {}
    if METADATA_KEY in raw:
        try:
            metadata = json.loads(raw[METADATA_KEY])
        except json.JSONDecodeError:
            metadata = {}
    return tensors, metadata


def _read_torch(file: Path, trust: bool) -> Any:
    import torch

    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols; we report in one line
            warnings.simplefilter("ignore")
            return torch.load(file, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as error:
        if trust:
            raise CheckpointError(file, f"{file} is not a torch checkpoint ({first_line(error, 200)})") from None
        blocked = _unsafe_globals(file, str(error))
        if blocked:
            names = ", ".join(blocked[:6]) + (", ..." if len(blocked) > 6 else "")
            raise CheckpointSafetyError(
                "{file} needs arbitrary pickled objects ({names}); unpickling them could run code from "
                "the file, so it was not loaded. Pass {trust} only if you trust its source",
                arguments={"trust": ("trust", True)}, file=file, names=names, globals=tuple(blocked),
            ) from None
        found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(error))
        detail = found.group(1).strip() if found else first_line(error, 200)
        raise CheckpointSafetyError(
            "{file} is not a checkpoint torch's safe loader can read ({detail}); "
            "pass {trust} only if you trust its source",
            arguments={"trust": ("trust", True)}, file=file, detail=detail, globals=(),
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as error:
        reason = "empty or cut short" if isinstance(error, EOFError) else first_line(error, 200).split(". ")[0]
        message = f"{file} is not a complete torch checkpoint (truncated or corrupt: {reason})"
        raise CheckpointError(file, message) from None
    except (KeyError, ValueError, OSError, UnicodeDecodeError):
        raise CheckpointError(file, f"{file} is not a torch checkpoint or safetensors file (neither a torch.save "
                         f"archive nor a legacy torch pickle)") from None
    except Exception as error:  # with trust, arbitrary unpickling can fail in arbitrary ways
        if not trust:
            raise
        raise CheckpointError(file, f"{file} failed to unpickle even when trusted ({type(error).__name__}: "
                         f"{first_line(error, 200)})") from None


def _unsafe_globals(file: Path, message: str) -> list[str]:
    """The globals the safe loader refused: from torch's scanner, else from its error message."""
    import torch

    finder = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    try:
        found = sorted(finder(str(file))) if finder is not None else []
    except Exception:  # an old-format or odd file: fall back to the message
        found = []
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
    path: str, fmt: str, payload: Any, metadata: Mapping[str, Any], trusted: bool, ema: bool
) -> Checkpoint:
    container, weights, others = _find_weights(payload, ema)
    if weights is None:
        if isinstance(payload, Mapping):
            found = f"keys: {', '.join(map(str, list(payload)[:8]))}"
        else:
            found = type(payload).__name__
        raise CheckpointError(
            path, f"no state dict found in {path} ({found}); expected a state dict or one under "
            f"{', '.join(WEIGHT_KEYS + EMA_KEYS)}"
        )
    if ema and container not in EMA_KEYS:
        raise ArgumentError("{ema} asked for, but {path} holds no EMA weights (looked for {looked_for})",
                            arguments={"ema": ("ema", True)}, path=path, looked_for=", ".join(EMA_KEYS))
    state, stripped = strip_prefixes(dict(weights))
    return Checkpoint(path=path, format=fmt, state_dict=state, container=container, stripped=stripped,
                      metadata=dict(metadata), trusted=trusted, other_weights=others)


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
    """
    stripped: list[str] = []
    while state:
        for prefix in WRAPPER_PREFIXES:
            if any(key.startswith(prefix) for key in state):
                state = {key.removeprefix(prefix): value for key, value in state.items()}
                stripped.append(prefix)
                break
        else:
            heads = {key.split(".", 1)[0] for key in state}
            if len(heads) == 1 and all("." in key for key in state):
                head = heads.pop() + "."
                state = {key.removeprefix(head): value for key, value in state.items()}
                stripped.append(head)
                continue
            break
    return state, tuple(stripped)
