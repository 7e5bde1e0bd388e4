"""What `count()` returns: rows per block, totals, the baseline and the overhead, as frozen dataclasses.

Conventions (also in formulas.py): `macs` are multiply-accumulates of conv/linear/matmul (what the
papers call FLOPs); `elementwise_ops` count one op per input element of pooling and reductions and
one per output element of elementwise arithmetic; `params` count every parameter tensor once
(buffers such as BN running statistics are not parameters). All counts are for the whole batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from senet_cli.count.references import ReferenceCount
from senet_cli.count.roofline import Roofline
from senet_cli.options import ExternalConfig, ModelConfig

CONVENTION = (
    "macs: multiply-accumulates of conv/linear/matmul (one fused multiply-add = 1; the papers' "
    "'FLOPs'); elementwise_ops: 1 per input element of pooling/reductions, 1 per output element of "
    "elementwise arithmetic (activations, gating, adds, batch norm); params: each tensor once, "
    "buffers excluded; all for the whole batch"
)
BYTES_CONVENTION = (
    "bytes: memory traffic of unfused, eager execution: each op reads each tensor input once "
    "(parameters included; a broadcast input once per distinct element) and writes each output once, at "
    "its dtype's size; views and allocations move nothing, copies count, in-place ops move what their "
    "out-of-place forms do; fused kernels (torch.compile, "
    "TensorRT) move fewer bytes, so this is not a lower bound for them; MB = 10^6 bytes"
)
KERNELS_CONVENTION = (
    "kernels: ops that launch work in one eager forward pass (each traced op with MACs, elementwise ops "
    "or bytes: views, reshapes and allocations are not counted); each costs a fixed dispatch/launch time, "
    "which dominates at small batch"
)


@dataclass(frozen=True)
class BlockCount:
    """One row: a residual block (or the stem before the first block, or the head after the last)."""

    name: str
    stage: int | None
    params: int
    macs: int
    elementwise_ops: int
    attention_params: int
    attention_macs: int
    attention_elementwise_ops: int
    bytes: int = 0  # memory traffic, see BYTES_CONVENTION
    attention_bytes: int = 0
    roofline_ms: float | None = None  # the row's roofline bound, when a device was given
    memory_bound_ms: float | None = None  # the part of roofline_ms spent in memory-bound ops
    kernels: int = 0  # ops that launch work (count's traced ops: views and allocations are not among them)
    attention_kernels: int = 0
    predicted_ms: float | None = None  # predicted time on a calibrated device (count/latency.py)
    attention_predicted_ms: float | None = None

    @property
    def memory_bound(self) -> bool | None:
        """True when most of the row's bound is memory-bound ops (None without a roofline)."""
        if self.roofline_ms is None or self.memory_bound_ms is None:
            return None
        return self.memory_bound_ms > self.roofline_ms / 2


@dataclass(frozen=True)
class Baseline:
    """The plain backbone, same backbone options, same input."""

    model: str
    params: int
    macs: int
    elementwise_ops: int
    bytes: int = 0
    kernels: int = 0


@dataclass(frozen=True)
class Overhead:
    """model - baseline, absolute and as a percentage of the baseline."""

    params: int
    macs: int
    elementwise_ops: int
    params_pct: float
    macs_pct: float
    elementwise_ops_pct: float
    bytes: int = 0
    bytes_pct: float = 0.0
    kernels: int = 0
    kernels_pct: float = 0.0


@dataclass(frozen=True)
class CountReport:
    """What `senet count` computes for one model and input. `to_dict()` is the JSON contract.

    For a model outside the zoo (an ExternalConfig), `attention_modules` counts the attention found
    in it (by class or by structure), `attention_found` lists each module (path, class, found_by,
    role, removed_in_baseline), `notes` say what was found and what the baseline is (modules that
    replace a conv are kept in it), and `baseline` and `overhead` are None where no attention module
    of it has a pass-through.
    """

    config: ModelConfig | ExternalConfig
    input: tuple[int, int, int, int]
    params: int
    macs: int
    elementwise_ops: int
    stem: BlockCount
    blocks: tuple[BlockCount, ...]
    head: BlockCount
    baseline: Baseline | None
    overhead: Overhead | None
    uncounted_ops: tuple[tuple[str, int], ...] = ()
    references: tuple[ReferenceCount, ...] = ()
    attention_modules: tuple[tuple[str, int], ...] = ()  # (class, how many): models outside the zoo
    notes: tuple[str, ...] = ()
    attention_found: tuple[dict[str, Any], ...] = ()  # each module: path, class, found_by, role, removed_in_baseline
    bytes: int = 0
    dtype: str = "float32"
    amp: bool = False
    roofline: Roofline | None = None
    counted_on: str = "meta"  # "cpu": its forward needs real data, counted with random weights (count/on_cpu.py)

    @property
    def plain(self) -> bool:
        """True for a model without attention (a plain backbone, or no attention class found): count
        then makes the model its own baseline."""
        return self.baseline is not None and self.baseline.model == self.config.name

    @property
    def model(self) -> str:
        return self.config.name

    @property
    def rows(self) -> tuple[BlockCount, ...]:
        """Stem, blocks, head: the rows that add up to the totals."""
        return (self.stem, *self.blocks, self.head)

    @property
    def kernels(self) -> int:
        """Ops that launch work in one forward pass, summed over the rows."""
        return sum(row.kernels for row in self.rows)

    def attention_total(self, measure: str) -> int:
        """Sum of `attention_<measure>` over all rows (measure: params, macs, elementwise_ops, bytes, kernels)."""
        return sum(getattr(row, f"attention_{measure}") for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        def row(block: BlockCount) -> dict[str, Any]:
            entry = asdict(block)
            if block.roofline_ms is None:
                del entry["roofline_ms"], entry["memory_bound_ms"]
            else:
                entry["memory_bound"] = block.memory_bound
            if block.predicted_ms is None:
                del entry["predicted_ms"], entry["attention_predicted_ms"]
            return entry

        roofline = None
        if self.roofline is not None:
            roofline = asdict(self.roofline)
            roofline["memory_bound_blocks"] = [b.name for b in self.rows if b.memory_bound]
            roofline["calibrated"] = self.roofline.predicted_ms is not None  # as profile's: a device file predicts
        return {
            "model": self.model,
            "options": self.config.as_dict(),
            "input": list(self.input),
            "params": self.params,
            "macs": self.macs,
            "elementwise_ops": self.elementwise_ops,
            "bytes": self.bytes,
            "kernels": self.kernels,
            "dtype": self.dtype,
            "amp": self.amp,
            "counted_on": self.counted_on,
            "attention": {
                "params": self.attention_total("params"),
                "macs": self.attention_total("macs"),
                "elementwise_ops": self.attention_total("elementwise_ops"),
                "bytes": self.attention_total("bytes"),
                "kernels": self.attention_total("kernels"),
            },
            "baseline": asdict(self.baseline) if self.baseline is not None else None,
            "overhead": asdict(self.overhead) if self.overhead is not None else None,
            "stem": row(self.stem),
            "blocks": [row(block) for block in self.blocks],
            "head": row(self.head),
            "roofline": roofline,
            "uncounted_ops": dict(self.uncounted_ops),
            "references": [asdict(reference) for reference in self.references],
            "convention": CONVENTION,
            "bytes_convention": BYTES_CONVENTION,
            "kernels_convention": KERNELS_CONVENTION,
            **({"attention_modules": dict(self.attention_modules), "notes": list(self.notes),
                "attention_found": [dict(item) for item in self.attention_found]}
               if self.notes else {}),  # a model outside the zoo: its subject always says what it found
        }
