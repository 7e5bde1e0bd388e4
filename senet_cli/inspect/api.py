"""`inspect`: load a checkpoint safely, run images through it, and summarise every attention gate.

The SENet paper's "role of excitation" analysis (Hu et al., Sec. 7.2, Fig. 6-7) found early SE
blocks class-agnostic, later ones class-specific, and the last stage's gates saturated, so those
blocks could be dropped for about 4% fewer parameters at almost no loss. This module gives that
analysis for any checkpoint of the zoo: per gate, the distribution of its values over the images
(mean, std, histogram, fractions below 0.1 and above 0.9), its mean per channel, per class when
the images have labels, and how much it varies across images and classes.

A block is a candidate to drop when every gate in it varies by at most `constant_tol` across
images (mean over channels of the per-channel std) and across classes (mean over channels of the
std of the class means): it then applies a fixed per-channel scale, which the preceding BN can
absorb, so removing the module changes the output little and saves its parameters.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from senet_cli.checkpoint.loading import Checkpoint, load_checkpoint
from senet_cli.errors import ArgumentError, SenetError, running_model
from senet_cli.inspect import distributed
from senet_cli.inspect.budget import check_budget
from senet_cli.inspect.distributed import Group
from senet_cli.inspect.results import (
    EMPTY_DATA,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SKIPPED_SHOWN,
    DistributedRun,
    DropCandidate,
    GateStats,
    InspectReport,
    Preprocess,
)
from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.subject import check_attention_classes, input_shape
from senet_cli.zoo import resolve_device

if TYPE_CHECKING:
    import torch
    from torch import nn

    from senet_cli.inspect.gates import GateAccumulator

CONSTANT_TOL = 0.05
DEFAULT_BINS = 50


MAX_BINS = 100_000
"""Histogram bins per gate, at most: each gate keeps bins x (classes + 1) counts."""
MAX_WORKERS_PER_CORE = 4
"""Image-decoding worker processes, at most this many per CPU core (each is a process with its own
copy of the decoder: tens of thousands only fork until the machine stops)."""


def inspect(
    checkpoint: str | os.PathLike[str] | Checkpoint,
    *,
    model: str | None = None,
    trust: bool = False,
    ema: bool = False,
    data: str = "samples",
    limit: int | None = None,
    batch: int = 16,
    input_size: int | Sequence[int] | None = None,
    device: str = "cpu",
    bins: int = DEFAULT_BINS,
    workers: int = 0,
    constant_tol: float = CONSTANT_TOL,
    on_batch: Callable[[int, int], None] | None = None,
    attention_classes: Sequence[str] = (),
    strict: bool = False,
    **options: Any,
) -> InspectReport:
    """Gate statistics of `checkpoint` over the images `data` names. See the module doc.

    `model` and `options` name the architecture; without them it comes from the checkpoint's
    metadata or is detected from its weights. `on_batch(images_done, images_total)` reports progress,
    first with 0 once the checkpoint, architecture and data have passed every check.

    An unreadable image of a `data` folder is skipped and counted in the report
    (`skipped_images`, and the first few in `skipped_first`); with `strict` it is an error.

    In a process torchrun started (or inside a torch.distributed group the caller initialised),
    this process takes its share of the images and every process returns the merged report, with
    `distributed` set (see senet_cli/inspect/distributed.py); `on_batch` counts this process's share.

    A `model` outside the zoo (`torchvision:NAME`, `timm:NAME`, `file.py:callable`; see `count()`)
    takes the checkpoint's weights strictly; its gates are the tensors that multiply the features in
    each attention module found by class (with the caller's `attention_classes`).
    """
    check_attention_classes(model, attention_classes)
    if model is None and options:
        raise ArgumentError(
            "build options given without {model} ({names}): they describe an architecture, which then comes "
            "from the checkpoint", arguments={"model": ("model", "NAME")}, names=", ".join(options),
        )
    if not data:
        raise ArgumentError(EMPTY_DATA, arguments=("data",))
    if not 1 <= bins <= MAX_BINS:
        raise ArgumentError("{bins} must be between 1 and {most:,}, got {value}", arguments=("bins",),
                            most=MAX_BINS, value=bins)
    most_workers = MAX_WORKERS_PER_CORE * (os.cpu_count() or 1)
    if not 0 <= workers <= most_workers:
        raise ArgumentError("{workers} must be between 0 and {most} ({per} per CPU core here), got {value}",
                            arguments=("workers",), most=most_workers, per=MAX_WORKERS_PER_CORE, value=workers)
    if constant_tol < 0:
        raise ArgumentError("constant tolerance ({constant_tol}) must be 0 or more, got {value}",
                            arguments=("constant_tol",), value=constant_tol)
    target = resolve_device(device)
    loaded = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint, trust=trust, ema=ema)
    group = distributed.join(target.type) if distributed.wanted() else None
    try:
        return _run(loaded, group, model=model, data=data, limit=limit, batch=batch, input_size=input_size,
                    target=target, bins=bins, workers=workers, constant_tol=constant_tol, on_batch=on_batch,
                    strict=strict, options=options, attention_classes=attention_classes)
    finally:
        if group is not None:
            distributed.leave(group)


def _run(loaded: Checkpoint, group: Group | None, *, model: str | None, data: str, limit: int | None, batch: int,
         input_size: int | Sequence[int] | None, target: torch.device, bins: int, workers: int, constant_tol: float,
         on_batch: Callable[[int, int], None] | None, strict: bool, options: dict[str, Any],
         attention_classes: Sequence[str] = ()) -> InspectReport:
    """inspect() once the checkpoint is loaded, in this process or as one rank of `group`."""
    import torch

    from senet_cli.inspect.gates import attach_accumulators
    from senet_cli.inspect.images import open_images
    from senet_cli.outside.load import checkpoint_subject

    failure: BaseException | None = None
    try:  # on every rank alike, unless a file differs between hosts: agreed on below
        subject, resolved, state = checkpoint_subject(loaded, model, options, attention_classes)
        config = subject.config
        preprocess = _preprocess(loaded, config, input_size)
        check_budget(config, preprocess.size, batch)  # before the model or a batch is allocated
        shard = (group.rank, group.world_size) if group is not None else (0, 1)
        source = open_images(data, preprocess, limit=limit, batch=batch, workers=workers, shard=shard,
                             strict=strict)
        if group is not None and source.total < group.world_size:
            how_many = "1 image" if source.total == 1 else f"{source.total} images"
            raise SenetError(f"{how_many} for {group.world_size} processes: each needs at least one")
        network = subject.with_weights(state, target)
        del state  # the network holds the weights now
        accumulators, attention_params = attach_accumulators(network, subject, bins, len(source.classes))
    except Exception as error:  # noqa: BLE001 (every rank must reach the agreement, whatever failed)
        if group is None:
            raise
        failure = error
    if group is not None:
        distributed.agree(group, failure)
    if not accumulators:
        raise SenetError(subject.no_gates_reason())
    done = 0
    if on_batch is not None:
        on_batch(0, source.count)  # everything is checked: the caller may open its progress bar now
    try:
        with torch.inference_mode():
            if group is not None and any(accumulator.unbounded for accumulator in accumulators):
                _calibrate(lambda head: _forward(network, config, head), accumulators, source.head().to(target))
            for images, labels in source:
                labels_on_device = labels.to(target) if labels is not None else None
                for accumulator in accumulators:
                    accumulator.labels = labels_on_device
                _forward(network, config, images.to(target))
                done += images.shape[0]
                if on_batch is not None:
                    on_batch(done + source.unreadable, source.count)
    except Exception as error:  # noqa: BLE001 (as above: a failing rank tells the others)
        if group is None:
            raise
        failure = error
    finally:
        for accumulator in accumulators:
            if accumulator.handle is not None:
                accumulator.handle.remove()
    run = None
    skipped = source.skipped
    if group is not None:
        distributed.agree(group, failure)
        distributed.merge(group, accumulators)
        per_rank = distributed.gather_counts(group, done)
        run = DistributedRun(group.backend, group.world_size, tuple(per_rank))
        done = sum(per_rank)
        skipped = [item for part in distributed.gather_objects(group, skipped) for item in part]
    skipped_in_order = [image for _, image in sorted(skipped, key=lambda item: item[0])]
    if done == 0:
        unreadable = ""
        if skipped_in_order:
            first = skipped_in_order[0]
            unreadable = f": {len(skipped_in_order)} unreadable, the first {first.path} ({first.reason})"
        raise SenetError(f"no readable images in {source.description}{unreadable}")
    # a gate submodule its module never calls (timm's GlobalContext, gca) saw nothing: no statistics
    accumulators = [accumulator for accumulator in accumulators if accumulator.state]
    if not accumulators:  # none ran: an empty report would look like success (issue 21)
        raise SenetError(subject.no_gates_reason())
    stats = tuple(accumulator.result(source.classes) for accumulator in accumulators)
    params = sum(p.numel() for p in network.parameters())
    kept = {accumulator.name for accumulator in accumulators if accumulator.replaces_conv}
    return InspectReport(
        model=config.name, config=config, checkpoint=loaded, architecture_source=resolved.source,
        notes=loaded.notes + resolved.notes, data=source.description, images=done, classes=source.classes,
        device=str(target), input=preprocess.size, preprocess=preprocess, params=params, blocks=stats,
        candidates=_candidates([s for s in stats if s.name not in kept], attention_params, params, constant_tol,
                               bool(source.classes)),
        constant_tol=constant_tol, distributed=run, skipped_images=len(skipped_in_order),
        skipped_first=tuple(skipped_in_order[:SKIPPED_SHOWN]), layout=resolved.layout,
    )


def _forward(network: nn.Module, config: ModelConfig | ExternalConfig, images: torch.Tensor) -> None:
    """One forward pass. A model outside the zoo runs the caller's code: what any model raises (or a
    sys.exit, or endless recursion) is one line naming the model, as `count` says it; running out of
    memory stays itself (the CLI says which flag to lower)."""
    with running_model(config.name, f"run on input {list(images.shape)}"):
        network(images)


def _calibrate(network: Callable[[torch.Tensor], None], accumulators: Sequence[GateAccumulator],
               head: torch.Tensor) -> None:
    """Run the whole list's first batch once, accumulating nothing: it sets the histogram range of
    unbounded gates as a one-process run would, on every rank alike."""
    for accumulator in accumulators:
        accumulator.calibrating = True
    try:
        network(head)
    finally:
        for accumulator in accumulators:
            accumulator.calibrating = False


def _preprocess(loaded: Checkpoint, config: ModelConfig | ExternalConfig,
                input_size: int | Sequence[int] | None) -> Preprocess:
    """Input size: the caller's, else the checkpoint's metadata, else the backbone's default."""
    recorded = loaded.metadata.get("preprocess") or {}
    if input_size is None and recorded.get("input") is not None:
        input_size = recorded["input"]
    _, _, height, width = input_shape(config, input_size, 1)
    mean = tuple(float(v) for v in recorded.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in recorded.get("std", IMAGENET_STD))
    return Preprocess((height, width), mean, std)


def _candidates(stats: Sequence[GateStats], attention_params: dict[str, int], params: int, tol: float,
                labelled: bool) -> tuple[DropCandidate, ...]:
    """Blocks whose gates are all nearly constant over images (and classes): a fixed per-channel
    scale the BN before them can absorb. The caller leaves out modules that stand in for a conv
    (SK): a constant branch selection is still a convolution, not something to drop."""
    by_block: dict[str, list[GateStats]] = {}
    for gate in stats:
        by_block.setdefault(gate.name, []).append(gate)
    found = []
    for name, gates in by_block.items():
        image_spread = max(g.image_spread for g in gates)
        class_spread = max(g.class_spread for g in gates) if labelled else None
        if image_spread <= tol and (class_spread is None or class_spread <= tol):
            count = attention_params.get(name, 0)
            found.append(DropCandidate(name, count, 100.0 * count / params, image_spread, class_spread))
    return tuple(found)
