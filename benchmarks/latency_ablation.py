"""Issue #22: which calibrated points make the latency model better, on the same measurements?

Takes the JSON that `latency_model.py --json` wrote (its calibration and its measured medians) and
predicts every zoo row again with that calibration and with copies of it from which groups of points
are left out: those ops then fall back to what the model did before those points existed (per-channel
ops to the copies' bandwidth, a conv to the nearest other conv shape), and without the after-op
fraction (no op then pays for the one before it). Timing noise cannot favour one
variant: the measurements are the same for all. Printed per variant: the median and worst
|predicted / measured - 1| (and, where the JSON has each family's speed-probe ratio, the same with
each prediction scaled by it) and each SE/ECA/CBAM/GC/SK overhead's error in points.

Run: python benchmarks/latency_ablation.py results.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace

from senet_cli.count import count
from senet_cli.count.latency import DeviceCalibration
from senet_cli.count.roofline import DevicePeaks, calibrated_device

PER_CHANNEL = ("batch_norm", "channelwise")
NEW_CONVS = ("conv 1x1 128->512 @28", "conv 1x1 256->1024 @14", "conv 1x1 512->2048 @7", "conv 1x1/2", "conv 3x3/2")
"""Labels (prefixes) of the conv shapes added with the stride: the expanding and the strided ones."""


def without(calibration: DeviceCalibration, kinds: tuple[str, ...] = (), labels: tuple[str, ...] = ()
            ) -> DeviceCalibration:
    """`calibration` less the points of `kinds` and those whose label starts with one of `labels`."""
    return replace(calibration, points=tuple(p for p in calibration.points
                                             if p.kind not in kinds and not p.label.startswith(labels)))


WITHOUT = " without attention"
"""What latency_model.py appends to a model outside the zoo for its copy without attention."""


def predicted_ms(model: str, batch: int, device: DevicePeaks) -> float:
    """The prediction for one row of latency_model.py: a model by name, or the copy without attention
    of one outside the zoo (its count's baseline)."""
    roofline = count(model.removesuffix(WITHOUT), batch=batch, roofline=device).roofline
    value = None if roofline is None else roofline.baseline_predicted_ms if model.endswith(WITHOUT) \
        else roofline.predicted_ms
    if value is None:
        raise SystemExit(f"{model}: no prediction (not a calibrated device?)")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the JSON latency_model.py --json wrote")
    args = parser.parse_args()
    with open(args.results, encoding="utf-8") as stream:
        data = json.load(stream)
    calibration = DeviceCalibration.from_dict(data["calibration"])
    measured = {(row["model"], row["batch"]): row["measured_ms"] for row in data["rows"]}
    shifts = {(row["model"], row["batch"]): row["machine_shift"] for row in data["rows"]
              if "ratio_at_probe_speed" in row}  # the in-round probe (since 2026-12-06)
    variants = {
        "all points": calibration,
        "without the cold-write points": without(calibration, ("cold_write",)),
        "without the cold-read points": without(calibration, ("read", "cold_read")),
        "without cold writes or cold reads": without(calibration, ("cold_write", "read", "cold_read")),
        "without the in-place points": without(calibration, ("in_place",)),
        "without the after-op fraction": replace(calibration, after_op_fraction=0.0),
        "without the pointwise points": without(calibration, ("pointwise",)),
        "without the convs' widths": replace(calibration,
                                             points=tuple(replace(p, width=0) for p in calibration.points)),
        "without the cold-op cost (the after-op fraction still netted of it)":
            replace(calibration, cold_op_us=0.0, cold_op_us_by_group=()),
        "with one cold-op cost for every op (no groups)": replace(calibration, cold_op_us_by_group=()),
        "without batch_norm/channelwise": without(calibration, PER_CHANNEL),
        "without those and the strided/expanding convs": without(calibration, PER_CHANNEL, NEW_CONVS),
    }
    print(f"{len(measured)} measured rows of {args.results}; calibration of {calibration.created}, "
          f"{len(calibration.points)} points")
    for name, variant in variants.items():
        device = calibrated_device(variant)
        predicted = {key: predicted_ms(key[0], key[1], device) for key in measured}
        errors = [abs(predicted[key] / measured[key] - 1) for key in measured]
        adjusted = [abs(predicted[key] * shifts[key] / measured[key] - 1) for key in measured if key in shifts]
        at_probe = (f"; at the probe's speed {statistics.median(adjusted) * 100:.1f}% / {max(adjusted) * 100:.1f}%"
                    if adjusted else "")
        overheads = []
        for (model, batch), value in predicted.items():
            attention, _, backbone = model.partition("_")
            shown = f"{attention}-{backbone.removeprefix('resnet')}"
            if (f"{model}{WITHOUT}", batch) in measured:  # a torchvision model and its copy without attention
                backbone, shown = f"{model}{WITHOUT}", model
            if backbone and (backbone, batch) in measured:
                real = (measured[(model, batch)] / measured[(backbone, batch)] - 1) * 100
                guess = (value / predicted[(backbone, batch)] - 1) * 100
                overheads.append(f"{shown} b{batch} {guess - real:+.1f}")
        print(f"- {name} ({len(variant.points)} points): median {statistics.median(errors) * 100:.1f}%, worst "
              f"{max(errors) * 100:.1f}%{at_probe}; overhead predicted - measured (points): "
              f"{', '.join(sorted(overheads))}")


if __name__ == "__main__":
    main()
