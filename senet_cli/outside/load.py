"""A checkpoint resolved to the subject whose model takes its weights, whichever kind of model that is,
and the weights of a model from outside the zoo (`torchvision:NAME`, `timm:NAME`, `file.py:callable`)
fitted to it.

A model outside the zoo is named by the caller or by the checkpoint's metadata (`save_checkpoint`
records `timm:NAME` and its keywords); any other checkpoint is resolved as the zoo resolves it
(given, metadata, or detected from its weights: checkpoint/recognise.py). The weights come back with
the keys the subject's model holds, ready for its strict `with_weights`; a misfit is reported as
missing, unexpected and mis-shaped keys, in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from senet_cli.checkpoint.counters import fill_step_counters
from senet_cli.checkpoint.loading import WRAPPER_PREFIXES, Checkpoint
from senet_cli.checkpoint.recognise import Resolved, compare, resolve
from senet_cli.errors import ArchitectureError
from senet_cli.outside.names import external_config, is_external
from senet_cli.prune.record import with_record
from senet_cli.subject import Subject, check_attention_classes, subject_for


def checkpoint_subject(checkpoint: Checkpoint, model: str | None, options: dict[str, Any],
                       attention_classes: Sequence[str] = ()) -> tuple[Subject, Resolved, dict[str, torch.Tensor]]:
    """The subject `checkpoint` is for (given as `model` and `options`, from its metadata, or detected),
    how it was found, and the weights keyed as its model's (strictly complete: BN step counters filled)."""
    check_attention_classes(model, attention_classes)
    recorded = checkpoint.metadata.get("model")
    if model is None and isinstance(recorded, str) and is_external(recorded):
        meta_options = dict(checkpoint.metadata.get("options") or {})
        meta_options.pop("source", None)
        classes = list(meta_options.pop("attention_classes", None) or [])
        recorded_config = with_record(external_config(recorded, meta_options, classes), checkpoint.metadata,
                                      checkpoint.path, checkpoint.path)  # with what `senet prune` took out
        subject, source = subject_for(recorded_config), "metadata"
    elif model is not None and is_external(model):
        subject, source = subject_for(model, options, attention_classes), "given"
    else:
        resolved = resolve(checkpoint, model, outside_the_zoo=True, **options)
        config = resolved.config
        return subject_for(config), resolved, dict(resolved.state)  # mapped once, step counters filled
    return subject, Resolved(subject.config, source), fitting_state(checkpoint, subject)


def fitting_state(checkpoint: Checkpoint, subject: Subject) -> dict[str, torch.Tensor]:
    """The checkpoint's weights keyed as `subject`'s model: as read, or with the first key component the
    loader took for a wrapper's put back (every key shared it); refused with the misfit otherwise."""
    expected = {key: tuple(value.shape) for key, value in subject.build(meta=True).state_dict().items()}
    state = dict(checkpoint.state_dict)
    fit = compare(checkpoint.shapes, expected)
    heads = "".join(prefix for prefix in checkpoint.stripped if prefix not in WRAPPER_PREFIXES)
    if not fit.exact and heads:
        restored = {heads + key: value for key, value in state.items()}
        refit = compare({key: tuple(value.shape) for key, value in restored.items()}, expected)
        if refit.exact:
            state, fit = restored, refit
    if not fit.exact:
        raise ArchitectureError("{path} does not fit {name}: {fit}", arguments=(), path=checkpoint.path,
                                name=subject.name, fit=fit.describe())
    return fill_step_counters(state, expected)
