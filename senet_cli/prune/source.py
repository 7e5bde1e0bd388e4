"""A checkpoint file where a model name is expected: `count("OUT.pth")`, `senet count OUT.pth`.

The architecture comes from the file, read with the safe loaders (weights_only, safetensors): its
metadata (model, options and the pruned record, senet_cli/prune/record.py), else detection from its
weights, for a zoo model or one from outside the zoo alike (senet_cli/outside/load.py). This is how a
pruned checkpoint is counted and profiled as the smaller model it holds, with no option. `count()` and
`profile()` call `subject_of` (not `subject_for`, which the checkpoint code itself builds on: that would
be an import cycle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from senet_cli.prune.record import is_checkpoint_file, refuse_beside_checkpoint

if TYPE_CHECKING:
    from senet_cli.subject import Subject


def checkpoint_subject_of_file(path: str, options: Mapping[str, Any] | None = None,
                               attention_classes: Sequence[str] = ()) -> Subject:
    """The subject whose architecture the checkpoint file at `path` holds (its metadata, pruned
    record included, or detected from its weights), read with the safe loader. Build options and
    attention classes are refused in one line: the file decides the architecture."""
    refuse_beside_checkpoint(path, options or {}, attention_classes)
    from senet_cli.checkpoint.loading import load_checkpoint
    from senet_cli.outside.load import checkpoint_subject

    subject, _, _ = checkpoint_subject(load_checkpoint(path), None, {})
    return subject


def subject_of(model: Any, options: Mapping[str, Any], attention_classes: Sequence[str] = ()) -> Subject:
    """What a job was given as its model: a checkpoint file's architecture (`checkpoint_subject_of_file`),
    else `subject_for` of the name or configuration."""
    if is_checkpoint_file(model):
        return checkpoint_subject_of_file(str(model), options, attention_classes)
    from senet_cli.subject import subject_for

    return subject_for(model, dict(options), attention_classes)
