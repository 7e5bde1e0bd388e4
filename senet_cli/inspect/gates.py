"""Streaming statistics of attention gates: the values that multiply a block's features.

Every attention module keeps its final non-linearity in a submodule named `gate` (see
`AttentionModule`), so a forward hook on it sees the gate tensor itself. Where the subject knows
how the gate multiplies the features (a model outside the zoo, probed on meta: senet_cli/outside/
structure.py), its kind and channels come from that broadcast, not its raw shape (timm's ECA gate
is [B, 1, C] before the view that multiplies: C channel gates). Otherwise: [B, C, 1, 1] or [B, C]
for channel gates (SE, ECA, CBAM's channel gate), [B, 1, H, W] for spatial gates (CBAM's spatial
gate), [B, C, H, W] where a gate varies over both (SE's NoSqueeze ablation, BAM, SimAM). SK's
softmax over M branches, [B, M, C, 1, 1], is read as M*C channel gates (branch-major).

Accumulation stays on the gate's device and has a fixed size whatever the number of images:
per channel, the count, mean and centred sum of squares (merged batch by batch with Chan et al.'s
parallel update, so a constant gate has a standard deviation of exactly 0), min and max, counts
below 0.1 and above 0.9, a histogram of fixed bins over the gate's range, and per-class per-channel
sums when labels are given. Nothing is copied to the host until `result()`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from senet_cli.attention.base import GATE_RANGES, gate_range, is_gate
from senet_cli.inspect.results import HIGH, LOW, GateStats, Histogram

if TYPE_CHECKING:
    from senet_cli.subject import Subject

__all__ = ["GATE_RANGES", "GateAccumulator", "attach_accumulators", "is_gate"]  # the ranges live in attention/base.py


class GateAccumulator:
    """Running statistics of one gate; `update` takes each batch's gate tensor (see the module doc).

    The histogram spans the gate non-linearity's range (sigmoid [0, 1], tanh [-1, 1]). For an
    unbounded gate (ReLU) the top edge is set once, from the first batch of the whole image list,
    to twice its maximum (at least 1); later values above it land in the last bin and are counted
    as clamped. Under several processes each runs that first batch once with `calibrating` set
    (nothing is accumulated), so every process bins alike and the histograms add up.
    """

    def __init__(self, name: str, gate: str, stage: int, gate_module: nn.Module, *, bins: int,
                 classes: int) -> None:
        self.name, self.gate, self.stage = name, gate, stage
        self.bins, self.classes = bins, classes
        self.low, self.high = gate_range(gate_module)
        self.n = 0  # values per channel so far
        self.positions = 0
        self.labels: torch.Tensor | None = None  # set by the caller before each forward
        self.handle: RemovableHandle | None = None  # the forward hook feeding `update`
        self.calibrating = False  # while set, a batch only sets an unbounded gate's histogram range
        self.replaces_conv = False  # its module stands in for a conv (SK): a constant gate is no reason to drop it
        self.feature_channels: int | None = None  # channels it varies over as it multiplies (None: from its shape)
        self._state: dict[str, torch.Tensor] = {}

    @property
    def unbounded(self) -> bool:
        return self.high is None

    @property
    def state(self) -> dict[str, torch.Tensor]:
        """The running tensors (empty before the first batch); merged in place across processes."""
        return self._state

    def update(self, gate: torch.Tensor) -> None:
        values = gate.detach()
        if values.ndim == 5 and values.shape[-2:] == (1, 1):  # SK: [B, M, C, 1, 1] -> M*C channels
            values = values.flatten(1, 2)
        batch = values.shape[0]
        channels = values.shape[1] if values.ndim > 1 else 1
        if self.feature_channels is not None:
            values, channels = _as_features(values, self.feature_channels)
        values = values.reshape(batch, channels, -1).float()
        positions = values.shape[2]
        if self.calibrating:
            if self.high is None:
                self.high = _top_edge(values)
            return
        if not self._state:
            self._start(values, channels, positions)
        s = self._state
        count = batch * positions
        wide = values.double()
        batch_mean = wide.mean((0, 2))
        batch_m2 = ((wide - batch_mean[None, :, None]) ** 2).sum((0, 2))
        total = self.n + count
        delta = batch_mean - s["mean"]
        s["mean"] += delta * (count / total)
        s["m2"] += batch_m2 + delta**2 * (self.n * count / total)
        self.n = total
        s["min"] = torch.minimum(s["min"], values.amin((0, 2)))
        s["max"] = torch.maximum(s["max"], values.amax((0, 2)))
        s["below"] += (values < LOW).sum()
        s["above"] += (values > HIGH).sum()
        finite = torch.isfinite(values)
        s["nonfinite"] += (~finite).sum()
        s["clamped"] += ((values < s["edges"][0]) | (values > s["edges"][-1])).sum()
        bucket = torch.bucketize(values.clamp(s["edges"][0], s["edges"][-1]), s["edges"][1:-1], right=True)
        s["histogram"] += torch.bincount(bucket.flatten(), minlength=self.bins)
        if self.labels is not None and self.classes:
            per_image = wide.sum(2)  # [B, C]
            s["class_sum"].index_add_(0, self.labels, per_image)
            s["class_count"].index_add_(0, self.labels, torch.full((batch,), float(positions), dtype=torch.float64,
                                                                   device=values.device))

    def _start(self, values: torch.Tensor, channels: int, positions: int) -> None:
        device = values.device
        high = _top_edge(values) if self.high is None else self.high
        self.positions = positions
        self._state = {
            "mean": torch.zeros(channels, dtype=torch.float64, device=device),
            "m2": torch.zeros(channels, dtype=torch.float64, device=device),
            "min": torch.full((channels,), math.inf, device=device),
            "max": torch.full((channels,), -math.inf, device=device),
            "below": torch.zeros((), dtype=torch.long, device=device),
            "above": torch.zeros((), dtype=torch.long, device=device),
            "nonfinite": torch.zeros((), dtype=torch.long, device=device),
            "clamped": torch.zeros((), dtype=torch.long, device=device),
            "edges": torch.linspace(self.low, high, self.bins + 1, dtype=torch.float64).float().to(device),
            "histogram": torch.zeros(self.bins, dtype=torch.long, device=device),
            "class_sum": torch.zeros(self.classes, channels, dtype=torch.float64, device=device),
            "class_count": torch.zeros(self.classes, dtype=torch.float64, device=device),
        }

    def state_bytes(self) -> int:
        """Memory held by the accumulators: fixed once the first batch has been seen."""
        return sum(t.numel() * t.element_size() for t in self._state.values())

    def result(self, class_names: tuple[str, ...] = ()) -> GateStats:
        if not self._state:
            raise RuntimeError(f"gate {self.name}.{self.gate} never ran")
        s = {key: value.cpu() for key, value in self._state.items()}
        channels = s["mean"].numel()
        values = self.n * channels
        mean = float(s["mean"].mean())
        # Pool the channels: total M2 = sum of M2 within channels + n * sum of squared mean offsets.
        m2 = float(s["m2"].sum() + self.n * ((s["mean"] - mean) ** 2).sum())
        channel_stds = (s["m2"] / self.n).clamp_min(0).sqrt()
        seen = s["class_count"] > 0
        class_means = s["class_sum"][seen] / s["class_count"][seen][:, None]
        labels = [name for name, present in zip(class_names, seen.tolist(), strict=True) if present]
        class_spread = float(class_means.std(0, unbiased=False).mean()) if len(labels) > 1 else 0.0
        return GateStats(
            name=self.name, gate=self.gate, kind=_kind(channels, self.positions), stage=self.stage,
            channels=channels, positions=self.positions, values=values, mean=mean,
            std=math.sqrt(max(m2 / values, 0.0)), min=float(s["min"].min()), max=float(s["max"].max()),
            below=int(s["below"]) / values, above=int(s["above"]) / values,
            histogram=Histogram(tuple(s["edges"].tolist()), tuple(s["histogram"].tolist()), int(s["clamped"])),
            channel_means=tuple(s["mean"].tolist()), channel_stds=tuple(channel_stds.tolist()),
            class_means=tuple((label, tuple(row)) for label, row in zip(labels, class_means.tolist(), strict=True)),
            image_spread=float(channel_stds.mean()), class_spread=class_spread, nonfinite=int(s["nonfinite"]),
        )


def _top_edge(values: torch.Tensor) -> float:
    """An unbounded gate's histogram top: twice the largest value of its first batch, at least 1."""
    top = float(values.max()) if values.numel() else 1.0
    return max(1.0, 2 * top) if math.isfinite(top) else 1.0


def _as_features(values: torch.Tensor, channels: int) -> tuple[torch.Tensor, int]:
    """A gate laid out as it multiplies the features, with `channels` channels: the dimension of that
    size moved to 1 (timm's ECA gate is [B, 1, C] before its view to [B, C, 1, 1]; a channels-last
    gate is [B, H, W, C]); a gate varying over positions only (channels 1) as one channel."""
    if channels == 1 or values.ndim < 2:
        return values, 1
    dims = [d for d in range(1, values.ndim) if values.shape[d] == channels]
    if not dims:
        return values, values.shape[1]
    return values.movedim(1 if 1 in dims else dims[0], 1), channels


def _kind(channels: int, positions: int) -> str:
    if positions == 1:
        return "channel"
    return "spatial" if channels == 1 else "channel x position"


def attach_accumulators(network: nn.Module, subject: Subject, bins: int,
                        classes: int) -> tuple[list[GateAccumulator], dict[str, int]]:
    """A hooked accumulator per gate of `network` (the model `subject` built, holding weights), in
    forward order, and each block's attention parameter count. The subject says where its gates are
    (senet_cli/subject.py: the zoo's `gate` convention, or the class table of senet_cli/outside/known.py)."""
    gates, attention_params = subject.gates(network)
    accumulators: list[GateAccumulator] = []
    for gate in gates:
        accumulator = GateAccumulator(gate.block, gate.label, gate.stage, gate.module, bins=bins, classes=classes)
        accumulator.replaces_conv = gate.replaces_conv
        accumulator.feature_channels = gate.channels
        accumulator.handle = gate.module.register_forward_hook(
            lambda _module, _inputs, output, a=accumulator: a.update(output)
        )
        accumulators.append(accumulator)
    return accumulators, attention_params
