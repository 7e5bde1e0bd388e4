"""What `inspect()` returns, as frozen dataclasses: per-gate statistics, drop candidates, and how
the checkpoint and images were read. `InspectReport.to_dict()` is the JSON contract. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from senet_cli.options import ExternalConfig, ModelConfig

if TYPE_CHECKING:
    from senet_cli.checkpoint.loading import Checkpoint

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

LOW, HIGH = 0.1, 0.9
"""Thresholds of the table's "< 0.1" and "> 0.9" columns: a gate that nearly closes or passes."""


@dataclass(frozen=True)
class Preprocess:
    """How pixels become the model's input: size (H, W) and the normalisation."""

    size: tuple[int, int]
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


@dataclass(frozen=True)
class SkippedImage:
    """An image file of the data folder that was not read: its path and why (a decoder's error,
    not a regular file, a size over the cap)."""

    path: str
    reason: str


EMPTY_DATA = "{data} is empty; it takes 'samples', 'synthetic' or an ImageFolder directory"
"""The error for an empty data argument (refused before the checkpoint is read, so it never scans
the working directory)."""

SKIPPED_SHOWN = 5
"""How many skipped images a report lists by path (all are counted)."""


@dataclass(frozen=True)
class Histogram:
    """Counts of gate values in `len(edges) - 1` bins; bin i is [edges[i], edges[i+1]), the last closed.

    Values outside [edges[0], edges[-1]] (only possible for unbounded gates) are counted in the end
    bins and reported in `clamped`, so the counts always add up to every value seen.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    clamped: int = 0


@dataclass(frozen=True)
class GateStats:
    """Statistics of one gate over every image seen.

    name: the block's module path (`layer3.2`); gate: the gate module's path relative to the block
    (`se.gate`, `cbam.SpatialGate.gate`); kind: "channel", "spatial" or "channel x position";
    values: how many gate values were seen (images x channels x positions); channel_stds: per channel,
    the standard deviation over images (and positions); class_means: class name -> per-channel mean.
    image_spread is the mean of channel_stds; class_spread the mean over channels of the standard
    deviation of the class means (0 without labels): how much the gate depends on the input and on
    the class, the two axes of the SENet paper's Fig. 6-7.
    """

    name: str
    gate: str
    kind: str
    stage: int
    channels: int
    positions: int
    values: int
    mean: float
    std: float
    min: float
    max: float
    below: float
    above: float
    histogram: Histogram
    channel_means: tuple[float, ...]
    channel_stds: tuple[float, ...]
    class_means: tuple[tuple[str, tuple[float, ...]], ...]
    image_spread: float
    class_spread: float
    nonfinite: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "gate": self.gate, "kind": self.kind, "stage": self.stage,
            "channels": self.channels, "positions": self.positions, "values": self.values,
            "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
            "below_0_1": self.below, "above_0_9": self.above,
            "histogram": {"edges": list(self.histogram.edges), "counts": list(self.histogram.counts),
                          "clamped": self.histogram.clamped},
            "channel_means": list(self.channel_means), "channel_stds": list(self.channel_stds),
            "class_means": {label: list(means) for label, means in self.class_means},
            "image_spread": self.image_spread, "class_spread": self.class_spread,
            "nonfinite": self.nonfinite,
        }


@dataclass(frozen=True)
class DistributedRun:
    """How a torchrun run split the images: the backend, the number of processes, each one's images."""

    backend: str
    world_size: int
    images_per_rank: tuple[int, ...]


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
    config: ModelConfig | ExternalConfig
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
    distributed: DistributedRun | None = None  # set when the images were split over torchrun's processes
    skipped_images: int = 0  # unreadable images of the data folder, not counted in `images`
    skipped_first: tuple[SkippedImage, ...] = ()  # the first SKIPPED_SHOWN of them, in listing order
    layout: str | None = None  # the foreign key layout the weights were mapped from ("cadene"), None: ours

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "checkpoint": self.checkpoint.path,
            "images": self.images,
            "blocks": [block.to_dict() for block in self.blocks],
            "options": self.config.as_dict(),
            "architecture": {"source": self.architecture_source, "notes": list(self.notes), "layout": self.layout},
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
        data["skipped_images"] = {"count": self.skipped_images,
                                  "first": [{"path": s.path, "reason": s.reason} for s in self.skipped_first]}
        if self.distributed is not None:
            run = self.distributed
            data["distributed"] = {"backend": run.backend, "world_size": run.world_size,
                                   "images_per_rank": list(run.images_per_rank)}
        return data
