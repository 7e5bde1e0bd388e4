"""Write checkpoints: the one writer behind `save_checkpoint` and `senet convert`.

Both write the same file: `.safetensors` (by the destination's extension; the metadata as JSON
text under the `senet` entry) or a torch file {"state_dict": ..., "senet": metadata, **extra} that
loads with `torch.load(weights_only=True)`. The metadata is what rebuilds the model from the file
alone ({"version", "model", "options"}, "preprocess" when known, and "pruned" when `senet prune`
took attention modules out: senet_cli/prune/record.py). Tensors are detached, moved
to the CPU and made contiguous, keeping their dtype; two tensors sharing one storage are written as
two (safetensors refuses shared storage). The file is written to a temporary name beside it and
renamed (senet_cli/atomic.py), so a failure never leaves half a checkpoint, and an existing file is
replaced only when asked (`force`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from senet_cli._version import __version__
from senet_cli.atomic import atomic_path
from senet_cli.checkpoint.loading import METADATA_KEY, SAFETENSORS_SUFFIX
from senet_cli.errors import ArgumentError

if TYPE_CHECKING:
    import torch


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
    Written by `write_checkpoint` (temporary file, then renamed: a crash never leaves half a checkpoint).
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ArgumentError("{model} must be a torch.nn.Module, got {kind} (a state dict saves with torch.save or "
                            "safetensors)", arguments=("model",), kind=type(model).__name__)
    file = Path(path)
    check_destination(file, force)
    config = getattr(model, "senet_config", None)
    metadata: dict[str, Any] = {"version": __version__}
    if config is not None:
        metadata.update(model=config.name, options=config.as_dict())
        if getattr(config, "pruned", ()):  # what `senet prune` took out, which count and inspect rebuild
            from senet_cli.prune.record import PRUNED_KEY, as_metadata

            metadata[PRUNED_KEY] = as_metadata(config.pruned)
    if preprocess:
        metadata["preprocess"] = dict(preprocess)
    write_checkpoint(model.state_dict(), metadata, file, extra=extra)
    return file


def check_destination(file: Path, force: bool) -> None:
    """Refuse, in one line and before any work, a destination every writer refuses: one that exists
    (unless `force`), a folder, a missing folder, no permission, a name too long, a dangling link (a
    real probe file is created and removed beside it)."""
    from senet_cli.atomic import OutputError, check_writable

    try:
        check_writable(file, overwrite=force)
    except OutputError as error:
        if error.reason == "it already exists":
            raise ArgumentError("{file} already exists; pass {force} to overwrite it",
                                arguments={"force": ("force", True)}, file=file) from None
        raise ArgumentError("cannot write {file}: {reason}; give a file path in an existing folder", arguments=(),
                            file=file, reason=error.reason) from None


def write_checkpoint(
    state: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any],
    file: Path,
    *,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Write `state` and `metadata` to `file` atomically, as safetensors (by extension) or a torch file
    (with `extra`'s entries beside the state dict); returns the format written ("safetensors" or "torch")."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state.items():
        tensor = value.detach().cpu().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        tensors[key] = tensor.clone() if storage in seen and tensor.numel() else tensor  # safetensors refuses sharing
        seen.add(storage)
    with atomic_path(file) as temporary:
        if file.suffix.lower() == SAFETENSORS_SUFFIX:
            from safetensors.torch import save_file

            save_file(tensors, temporary, metadata={METADATA_KEY: json.dumps(dict(metadata))})
            return "safetensors"
        torch.save({"state_dict": tensors, METADATA_KEY: dict(metadata), **(extra or {})}, temporary)
    return "torch"
