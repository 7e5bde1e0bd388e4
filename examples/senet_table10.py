"""Reproduce SENet's Table 10 (reduction ratio sweep on SE-ResNet-50) and show where SE's cost lies.

Runs on a fresh install with no data or weights: models are built on PyTorch's meta device.

    python examples/senet_table10.py
"""

from __future__ import annotations

import senet_cli

PAPER_PARAMS_M = {2: 45.7, 4: 35.7, 8: 30.7, 16: 28.1, 32: 26.8}  # SENet Table 10


def main() -> None:
    print("| ratio | params | paper | MACs (G), v1 | SE elementwise ops (M) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for ratio, paper in PAPER_PARAMS_M.items():
        report = senet_cli.count("se_resnet50", ratio=ratio, variant="v1")
        print(f"| {ratio} | {report.params:,} | {paper}M | {report.macs / 1e9:.3f} | "
              f"{report.attention_total('elementwise_ops') / 1e6:.2f} |")

    report = senet_cli.count("se_resnet50", variant="v1")
    costliest = max(report.blocks, key=lambda block: block.attention_elementwise_ops)
    print(f"\nbaseline {report.baseline.model}: {report.baseline.params:,} params, "
          f"{report.baseline.macs / 1e9:.3f} GMACs")
    print(f"SE at r=16 adds {report.overhead.params_pct:.2f}% parameters, {report.overhead.macs_pct:.3f}% MACs "
          f"and {report.overhead.elementwise_ops_pct:.1f}% elementwise ops; the block with the most SE "
          f"elementwise work is {costliest.name} in stage {costliest.stage} "
          f"({costliest.attention_elementwise_ops:,} ops: pooling and gating read and write its whole output).")


if __name__ == "__main__":
    main()
