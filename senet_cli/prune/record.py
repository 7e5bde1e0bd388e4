"""What a pruned checkpoint records, and the one function that rebuilds the pruned architecture.

`senet prune` takes attention modules out of a model (folded into the weights around them, or
removed). The architecture is then the same model with a pass-through (`nn.Identity`) at each of
those module paths. A checkpoint says so in its `senet` metadata, beside the model name and options:

    "pruned": {"folded": ["layer1.0.se", ...], "removed": ["layer4.2.se", ...]}

`ModelConfig.pruned` and `ExternalConfig.pruned` carry the same record as (path, "folded" |
"removed") pairs; the zoo's `build_from_config` and the outside subject's `build` call
`apply_pruning` with it, so every job that builds from a configuration (count, profile, inspect,
recognition) builds exactly the pruned model, with no option. The record comes from a file, so
`read_record` checks it as checkpoint/metadata.py checks the rest. Torch-free to import.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from senet_cli.errors import CheckpointError, SenetError

PRUNED_KEY = "pruned"
MODES = ("folded", "removed")
MAX_PATHS = 1024
"""Module paths a record may name, at most (a ResNet-152 has 50 blocks; a record is refused long
before it could make building slow)."""
MODULE_PATH = re.compile(r"[A-Za-z0-9_]{1,64}(\.[A-Za-z0-9_]{1,64}){0,15}")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")


def read_record(metadata: Mapping[str, Any], where: str, path: object) -> tuple[tuple[str, str], ...]:
    """The checked `pruned` record of a checkpoint's metadata ((path, how) pairs, sorted); () when there
    is none. A CheckpointError in one line names what is wrong."""
    raw = metadata.get(PRUNED_KEY)
    if raw is None:
        return ()
    expected = 'an object {"folded": [module paths], "removed": [module paths]}'
    if not isinstance(raw, Mapping) or not set(raw) <= set(MODES) or not raw:
        raise CheckpointError(path, f"{where}: metadata field {PRUNED_KEY} must be {expected}, got {_show(raw)}")
    pairs: dict[str, str] = {}
    for how in MODES:
        paths = raw.get(how, [])
        if not isinstance(paths, (list, tuple)) or len(paths) > MAX_PATHS:
            raise CheckpointError(path, f"{where}: metadata field {PRUNED_KEY}.{how} must be a list of at most "
                                        f"{MAX_PATHS} module paths, got {_show(paths)}")
        for item in paths:
            if not isinstance(item, str) or not MODULE_PATH.fullmatch(item):
                raise CheckpointError(path, f"{where}: metadata field {PRUNED_KEY}.{how} must hold module paths "
                                            f"such as 'layer1.0.se', got {_show(item)}")
            if item in pairs:
                raise CheckpointError(path, f"{where}: metadata field {PRUNED_KEY} names {item} twice")
            pairs[item] = how
    return tuple(sorted(pairs.items()))


def as_metadata(pruned: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """The record as checkpoints write it (the inverse of `read_record`)."""
    return {how: sorted(path for path, done in pruned if done == how) for how in MODES}


Config = TypeVar("Config")


def with_record(config: Config, metadata: Mapping[str, Any], where: str, path: object) -> Config:
    """`config` (a ModelConfig or an ExternalConfig) carrying the checkpoint's pruned record
    (unchanged when it has none)."""
    pruned = read_record(metadata, where, path)
    return dataclasses.replace(config, pruned=pruned) if pruned else config  # type: ignore[type-var]


def apply_pruning(model: Any, pruned: Sequence[tuple[str, str]], name: str,
                  kinds: tuple[type, ...] | None = None) -> Any:
    """Put a pass-through (`nn.Identity`) at each pruned module path of `model` (in place; returned).

    Every path must name a module of `model` (of one of `kinds`, when given: the zoo's attention
    modules): a record that names anything else (a conv, a missing module) would build a different
    network, so it is refused in one line naming the model (`name`).
    """
    from torch import nn

    for path, _ in pruned:
        parent_path, _, leaf = path.rpartition(".")
        try:
            parent = model.get_submodule(parent_path) if parent_path else model
            module = parent.get_submodule(leaf)
        except AttributeError:
            raise SenetError(f"the pruned record names {path}, which {name} does not have") from None
        if kinds is not None and not isinstance(module, kinds):
            raise SenetError(f"the pruned record names {path}, which is a {type(module).__name__} in {name}, "
                             f"not an attention module")
        setattr(parent, leaf, nn.Identity())
    return model


def is_checkpoint_file(name: object) -> bool:
    """Whether a model argument names a checkpoint file (by its extension) rather than a model."""
    return isinstance(name, str) and not name.startswith(("timm:", "torchvision:")) and \
        name.lower().endswith(CHECKPOINT_SUFFIXES)


def refuse_beside_checkpoint(path: str, options: Mapping[str, Any], attention_classes: Sequence[str] = ()) -> None:
    """One line for build options (or attention classes) given with a checkpoint file where a model is
    expected: its architecture comes from the file."""
    given = [*options, *(["attention_classes"] if attention_classes else [])]
    if given:
        raise SenetError(f"build options given with the checkpoint {path} ({', '.join(given)}): its architecture "
                         f"comes from the file")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
