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
from senet_cli.options import ExternalConfig, ModelConfig

CONVENTION = (
    "macs: multiply-accumulates of conv/linear/matmul (one fused multiply-add = 1; the papers' "
    "'FLOPs'); elementwise_ops: 1 per input element of pooling/reductions, 1 per output element of "
    "elementwise arithmetic (activations, gating, adds, batch norm); params: each tensor once, "
    "buffers excluded; all for the whole batch"
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


@dataclass(frozen=True)
class Baseline:
    """The plain backbone, same backbone options, same input."""

    model: str
    params: int
    macs: int
    elementwise_ops: int


@dataclass(frozen=True)
class Overhead:
    """model - baseline, absolute and as a percentage of the baseline."""

    params: int
    macs: int
    elementwise_ops: int
    params_pct: float
    macs_pct: float
    elementwise_ops_pct: float


@dataclass(frozen=True)
class CountReport:
    """What `senet count` computes for one model and input. `to_dict()` is the JSON contract.

    For a model outside the zoo (an ExternalConfig), `attention_modules` counts the attention found
    in it by class, `notes` say what was found and what the baseline is, and `baseline` and
    `overhead` are None where no pass-through stands for its attention (a module replacing a conv).
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

    @property
    def plain(self) -> bool:
        """True for a model without attention: a plain backbone, or no attention class found."""
        if isinstance(self.config, ModelConfig):
            return self.config.attention is None
        return not self.attention_modules

    @property
    def model(self) -> str:
        return self.config.name

    @property
    def rows(self) -> tuple[BlockCount, ...]:
        """Stem, blocks, head: the rows that add up to the totals."""
        return (self.stem, *self.blocks, self.head)

    def attention_total(self, measure: str) -> int:
        """Sum of `attention_<measure>` over all rows (measure: params, macs, elementwise_ops)."""
        return sum(getattr(row, f"attention_{measure}") for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "options": self.config.as_dict(),
            "input": list(self.input),
            "params": self.params,
            "macs": self.macs,
            "elementwise_ops": self.elementwise_ops,
            "attention": {
                "params": self.attention_total("params"),
                "macs": self.attention_total("macs"),
                "elementwise_ops": self.attention_total("elementwise_ops"),
            },
            "baseline": asdict(self.baseline) if self.baseline is not None else None,
            "overhead": asdict(self.overhead) if self.overhead is not None else None,
            "stem": asdict(self.stem),
            "blocks": [asdict(block) for block in self.blocks],
            "head": asdict(self.head),
            "uncounted_ops": dict(self.uncounted_ops),
            "references": [asdict(reference) for reference in self.references],
            "convention": CONVENTION,
            **({"attention_modules": dict(self.attention_modules), "notes": list(self.notes)}
               if isinstance(self.config, ExternalConfig) else {}),
        }
