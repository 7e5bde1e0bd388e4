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
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from senet_cli.analysis.architecture import materialize, resolve, skeleton
from senet_cli.analysis.checkpoint import Checkpoint, load_checkpoint
from senet_cli.analysis.gates import HIGH, LOW, GateAccumulator, GateStats, is_gate
from senet_cli.analysis.images import IMAGENET_MEAN, IMAGENET_STD, Preprocess, open_images
from senet_cli.analysis.latency import resolve_device
from senet_cli.analysis.report import input_shape
from senet_cli.attention.base import AttentionModule
from senet_cli.errors import SenetError
from senet_cli.options import ModelConfig

CONSTANT_TOL = 0.05
DEFAULT_BINS = 50


@dataclass(frozen=True)
class DropCandidate:
    """A block whose gates are nearly constant: its attention parameters, and why."""

    name: str
    params: int
    params_pct: float  # of the whole model's parameters
    image_spread: float
    class_spread: float | None


@dataclass(frozen=True)
class InspectReport:
    """Everything `inspect` measured; `to_dict` is the JSON contract."""

    model: str
    config: ModelConfig
    checkpoint: Checkpoint
    architecture_source: str  # "given", "metadata" or "detected"
    notes: tuple[str, ...]
    data: str
    images: int
    classes: tuple[str, ...]
    device: str
    input: tuple[int, int]
    preprocess: Preprocess
    params: int
    blocks: tuple[GateStats, ...]
    candidates: tuple[DropCandidate, ...]
    constant_tol: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "checkpoint": self.checkpoint.path,
            "images": self.images,
            "blocks": [block.to_dict() for block in self.blocks],
            "options": self.config.as_dict(),
            "architecture": {"source": self.architecture_source, "notes": list(self.notes)},
            "loading": self.checkpoint.describe(),
            "data": self.data,
            "classes": list(self.classes),
            "device": self.device,
            "input": list(self.input),
            "normalisation": {"mean": list(self.preprocess.mean), "std": list(self.preprocess.std)},
            "params": self.params,
            "candidates": [
                {"name": c.name, "params": c.params, "params_pct": c.params_pct,
                 "image_spread": c.image_spread, "class_spread": c.class_spread}
                for c in self.candidates
            ],
            "convention": (
                f"gate values are the outputs of each attention module's gate non-linearity; mean/std/min/max "
                f"over images x channels x positions; below_0_1/above_0_9 are fractions of values < {LOW} and "
                f"> {HIGH}; histogram bins [edges[i], edges[i+1]), last closed; image_spread = mean over "
                f"channels of the per-channel std over images; class_spread = mean over channels of the std "
                f"of the class means; candidates: blocks whose gates all have both spreads <= "
                f"{self.constant_tol}"
            ),
        }


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
    **options: Any,
) -> InspectReport:
    """Gate statistics of `checkpoint` over the images `data` names. See the module doc.

    `model` and `options` name the architecture; without them it comes from the checkpoint's
    metadata or is detected from its weights. `on_batch(images_done, images_total)` reports progress,
    first with 0 once the checkpoint, architecture and data have passed every check.
    """
    if bins < 1:
        raise SenetError(f"bins must be at least 1, got {bins}")
    if constant_tol < 0:
        raise SenetError(f"constant tolerance must be 0 or more, got {constant_tol}")
    target = resolve_device(device)
    loaded = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint, trust=trust, ema=ema)
    resolved = resolve(loaded, model, **options)
    config = resolved.config
    preprocess = _preprocess(loaded, config, input_size)
    source = open_images(data, preprocess, limit=limit, batch=batch, workers=workers)
    network = materialize(loaded, config, target)
    accumulators, attention_params = _attach(network, config, bins, len(source.classes))
    if not accumulators:
        if config.attention is None:
            raise SenetError(f"{config.name} has no attention gates to inspect: it is a plain backbone")
        raise SenetError(
            f"{config.name} has no attention gates to inspect: its {config.attention} modules add a context term "
            f"instead of scaling by a gate non-linearity (gc with fusion=mul has one)"
        )
    done = 0
    if on_batch is not None:
        on_batch(0, source.count)  # everything is checked: the caller may open its progress bar now
    try:
        with torch.inference_mode():
            for images, labels in source:
                labels_on_device = labels.to(target) if labels is not None else None
                for accumulator in accumulators:
                    accumulator.labels = labels_on_device
                network(images.to(target))
                done += images.shape[0]
                if on_batch is not None:
                    on_batch(done, source.count)
    finally:
        for accumulator in accumulators:
            if accumulator.handle is not None:
                accumulator.handle.remove()
    if done == 0:
        raise SenetError(f"no images in {source.description}")
    stats = tuple(accumulator.result(source.classes) for accumulator in accumulators)
    params = sum(p.numel() for p in network.parameters())
    return InspectReport(
        model=config.name, config=config, checkpoint=loaded, architecture_source=resolved.source,
        notes=resolved.notes, data=source.description, images=done, classes=source.classes,
        device=str(target), input=preprocess.size, preprocess=preprocess, params=params, blocks=stats,
        candidates=_candidates(stats, attention_params, params, constant_tol, bool(source.classes)),
        constant_tol=constant_tol,
    )


def _preprocess(loaded: Checkpoint, config: ModelConfig, input_size: int | Sequence[int] | None) -> Preprocess:
    """Input size: the caller's, else the checkpoint's metadata, else the backbone's default."""
    recorded = loaded.metadata.get("preprocess") or {}
    if input_size is None and recorded.get("input") is not None:
        input_size = recorded["input"]
    _, _, height, width = input_shape(config, input_size, 1)
    mean = tuple(float(v) for v in recorded.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in recorded.get("std", IMAGENET_STD))
    return Preprocess((height, width), mean, std)


def _attach(network: nn.Module, config: ModelConfig, bins: int, classes: int) -> tuple[list[GateAccumulator], dict[str, int]]:
    """A hooked accumulator per gate, in forward order, and each block's attention parameter count."""
    layout = skeleton(config)
    accumulators: list[GateAccumulator] = []
    attention_params: dict[str, int] = {}
    for path, stage in layout.blocks:
        parts = [(path, "")] + [(member, f"{member}.") for member, owner in layout.members if owner == path]
        found = [(f"{prefix}{name}", module) for part, prefix in parts
                 for name, module in network.get_submodule(part).named_modules()]
        for name, module in found:
            if not isinstance(module, AttentionModule) or not name:
                continue
            attention_params[path] = attention_params.get(path, 0) + sum(p.numel() for p in module.parameters())
            for sub_name, gate in module.named_modules():
                if not is_gate(sub_name, gate):
                    continue
                accumulator = GateAccumulator(path, f"{name}.{sub_name}", stage, gate, bins=bins, classes=classes)
                accumulator.handle = gate.register_forward_hook(
                    lambda _module, _inputs, output, a=accumulator: a.update(output)
                )
                accumulators.append(accumulator)
    return accumulators, attention_params


def _candidates(stats: Sequence[GateStats], attention_params: dict[str, int], params: int, tol: float,
                labelled: bool) -> tuple[DropCandidate, ...]:
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
