"""What `prune()` returns, as frozen dataclasses: per block what was taken out and what it saved, the
evaluation before and after on the same images, and the costs from `count`. `PruneReport.to_dict()` is
the JSON contract. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONVENTION = (
    "fold: each chosen attention module's gate is replaced by its mean per channel over the images (the streaming "
    "means inspect keeps) and multiplied into the weights that produce the gated tensor (the BN's weight and bias, "
    "or a conv's output channels), or, where a non-linearity sits between them, into the input channels of the one "
    "conv that consumes it; the module becomes a pass-through. remove: the module becomes a pass-through, weights "
    "unchanged. Accuracy: top-1/top-5 against the images' labels (ImageFolder class index = logit index); "
    "agreement: fraction of images whose top-1 class equals the original model's; logit change: |pruned - original| "
    "per image and class, its max and mean over all of them; params, macs (multiply-accumulates), elementwise_ops "
    "and bytes (unfused eager memory traffic, 10^6 bytes = 1 MB) from count for one image at the input size; "
    "kernels: ops that launch work in one eager forward pass (count's); roofline_ms: count's roofline bound "
    "(max(2 x MACs / peak, bytes / bandwidth) per op, summed), only with roofline; predicted_ms: count's predicted "
    "time on a calibrated device (a `senet calibrate` DEVICE.json), only with one; a module's macs, "
    "elementwise_ops, bytes, kernels and predicted_ms are its block's attention share in count; sweep: each block "
    "pruned alone, ranked by accuracy cost (top-1 points lost, or disagreement without labels) per 1,000 "
    "parameters saved (cost_per_kparam), or per predicted ms saved (cost_per_ms) when a calibrated "
    "device predicted every block's time"
)


@dataclass(frozen=True)
class Evaluation:
    """A model's predictions on the images, against the labels and against the original model.

    top1/top5: accuracy in [0, 1] (None without labels, top5 None under 5 classes); agreement: fraction
    of images whose top-1 class equals the original's; max/mean_logit_change: |logits - original logits|
    over every image and class (0 for the original itself).
    """

    images: int
    top1: float | None
    top5: float | None
    agreement: float
    max_logit_change: float
    mean_logit_change: float

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "top1": self.top1, "top5": self.top5, "agreement": self.agreement,
                "max_logit_change": self.max_logit_change, "mean_logit_change": self.mean_logit_change}


@dataclass(frozen=True)
class BlockPrune:
    """One attention module taken out: where, how, what its gate did, and what it cost per image.

    block: the block path (`layer4.2`); module: the attention module's path (`layer4.2.se`); mode:
    "folded" or "removed"; folded_into: the parameter tensors scaled ("layer4.2.bn2"), () for removed;
    image_spread / class_spread: inspect's spreads of its gate (None when not measured); params, macs,
    elementwise_ops, bytes: the module's share from count (what taking it out saves); alone: the
    evaluation with only this block pruned (with sweep).
    """

    block: str
    stage: int
    module: str
    mode: str
    folded_into: tuple[str, ...]
    image_spread: float | None
    class_spread: float | None
    params: int
    macs: int
    elementwise_ops: int
    bytes: int
    kernels: int = 0
    predicted_ms: float | None = None  # with a calibrated device
    alone: Evaluation | None = None
    cost_per_kparam: float | None = None  # accuracy points (or disagreement) lost per 1,000 parameters saved
    cost_per_ms: float | None = None  # the same points per predicted ms saved (a calibrated device)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "block": self.block, "stage": self.stage, "module": self.module, "mode": self.mode,
            "folded_into": list(self.folded_into), "image_spread": self.image_spread,
            "class_spread": self.class_spread, "params": self.params, "macs": self.macs,
            "elementwise_ops": self.elementwise_ops, "bytes": self.bytes, "kernels": self.kernels,
            "predicted_ms": self.predicted_ms,
        }
        if self.alone is not None:
            data["alone"] = self.alone.to_dict()
            data["cost_per_kparam"] = self.cost_per_kparam
            data["cost_per_ms"] = self.cost_per_ms
        return data


@dataclass(frozen=True)
class Costs:
    """A model's cost from count, one image at the input size (roofline_ms only with a roofline,
    predicted_ms only with a calibrated device)."""

    params: int
    macs: int
    elementwise_ops: int
    bytes: int
    kernels: int = 0
    roofline_ms: float | None = None
    predicted_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "macs": self.macs, "elementwise_ops": self.elementwise_ops,
                "bytes": self.bytes, "kernels": self.kernels, "roofline_ms": self.roofline_ms,
                "predicted_ms": self.predicted_ms}


@dataclass(frozen=True)
class PruneReport:
    """Everything `prune` did and measured; `to_dict` is the JSON contract."""

    model: str
    checkpoint: str
    output: str | None
    mode: str
    selection: str  # how the blocks were chosen: "blocks", "stages 4", "candidates"
    blocks: tuple[BlockPrune, ...]
    data: str
    classes: tuple[str, ...]
    input: tuple[int, int]
    device: str
    before: Evaluation
    after: Evaluation
    cost_before: Costs
    cost_after: Costs
    roofline_device: str | None = None
    sweep: bool = False
    notes: tuple[str, ...] = ()
    world_size: int = 1

    @property
    def saved(self) -> Costs:
        b, a = self.cost_before, self.cost_after
        ms = None if b.roofline_ms is None or a.roofline_ms is None else b.roofline_ms - a.roofline_ms
        predicted = None if b.predicted_ms is None or a.predicted_ms is None else b.predicted_ms - a.predicted_ms
        return Costs(b.params - a.params, b.macs - a.macs, b.elementwise_ops - a.elementwise_ops,
                     b.bytes - a.bytes, b.kernels - a.kernels, ms, predicted)

    def ranked(self) -> tuple[BlockPrune, ...]:
        """With sweep: the blocks, cheapest accuracy cost per predicted ms saved first when a calibrated
        device predicted every block's time, else per parameter saved."""
        if self.blocks and all(b.cost_per_ms is not None for b in self.blocks):
            return tuple(sorted(self.blocks, key=lambda b: b.cost_per_ms or 0.0))
        return tuple(sorted(self.blocks, key=lambda b: (b.cost_per_kparam is None, b.cost_per_kparam or 0.0)))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model, "checkpoint": self.checkpoint, "output": self.output, "mode": self.mode,
            "selection": self.selection, "data": self.data, "classes": list(self.classes),
            "input": list(self.input), "device": self.device,
            "blocks": [block.to_dict() for block in (self.ranked() if self.sweep else self.blocks)],
            "before": self.before.to_dict(), "after": self.after.to_dict(),
            "cost_before": self.cost_before.to_dict(), "cost_after": self.cost_after.to_dict(),
            "saved": self.saved.to_dict(), "roofline_device": self.roofline_device, "sweep": self.sweep,
            "notes": list(self.notes), "world_size": self.world_size, "convention": CONVENTION,
        }
        return data
