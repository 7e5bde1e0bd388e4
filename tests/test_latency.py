"""The latency model (#22) against closed forms on synthetic device files; kernels per block counted
by hand; the bound never above the prediction; calibrate's JSON; profile's notes."""

from __future__ import annotations

import importlib
import json
import math
import re
from dataclasses import replace

import pytest

import senet_cli
from senet_cli.count.latency import DeviceCalibration, RatePoint, cold_op_group, op_kind
from senet_cli.count.roofline import calibrated_device, parse_device
from senet_cli.errors import SenetError
from senet_cli.profile.results import BatchResult, LatencyStats, Measurement

OP_COST_US = 5.0


def synthetic(op_cost_us: float = OP_COST_US, **rates: float) -> DeviceCalibration:
    """A device: a large conv at 1 TFLOPS, a depthwise-like conv at 0.01, a matmul at 0.5; copies at
    100 GB/s for 10 kB and 10 GB/s for 1 MB; a max pool at 0.5 GB/s. `rates` override by kind."""
    points = (
        RatePoint("conv", "big", 10**9, 10**7, 0.0, rates.get("conv", 1.0)),
        RatePoint("conv", "depthwise", 10**6, 10**6, 0.0, rates.get("conv", 0.01)),
        RatePoint("matmul", "fc", 10**6, 10**6, 0.0, rates.get("matmul", 0.5)),
        RatePoint("memory", "small copy", 10**4, 10**4, 0.0, rates.get("memory", 100.0)),
        RatePoint("memory", "large copy", 0, 10**6, 0.0, rates.get("memory", 10.0)),
        RatePoint("max_pool", "stem pool", 0, 10**6, 0.0, rates.get("max_pool", 0.5)),
    )
    return DeviceCalibration("cpu", "synthetic", "float32", 1, op_cost_us, points)


def cold(op_cost_us: float = OP_COST_US) -> DeviceCalibration:
    """`synthetic()` with cold-write points: a copy moving 10 kB at 20 GB/s (100 warm) and 1 MB at 5
    GB/s (10 warm), schema 5."""
    device = synthetic(op_cost_us)
    return replace(device, points=(*device.points, RatePoint("cold_write", "small cold copy", 0, 10**4, 0.0, 20.0),
                                   RatePoint("cold_write", "large cold copy", 0, 10**6, 0.0, 5.0)))


def cold_reads(op_cost_us: float = OP_COST_US, cache_bytes: int = 10**5) -> DeviceCalibration:
    """`cold()` with read points (a sum of 10 kB in 0.2 us, of 1 MB in 50 us: 50 and 20 GB/s) and
    cold-read points (1 and 200 us: 10 and 5 GB/s), each median with the 5 us per-op cost, and caches
    of `cache_bytes`, schema 6."""
    device = cold(op_cost_us)
    return replace(device, cache_bytes=cache_bytes, points=(
        *device.points, RatePoint("read", "small sum", 0, 10**4, 5.2, 50.0),
        RatePoint("read", "large sum", 0, 10**6, 55.0, 20.0),
        RatePoint("cold_read", "small cold sum", 0, 10**4, 6.0, 10.0),
        RatePoint("cold_read", "large cold sum", 0, 10**6, 205.0, 5.0)))


def test_a_compute_bound_op_takes_its_macs_at_its_shape_class_rate_plus_the_op_cost():
    device = synthetic()
    # 1e9 MACs = 2e9 FLOP at 1e12 FLOP/s: 2 ms; its 1e7 bytes at 10 GB/s (past the largest copy): 1 ms
    assert device.op_seconds("convolution", 10**9, 10**7) == pytest.approx(2e-3 + 5e-6)
    # a depthwise-like conv (2e6 MACs, 2e6 bytes) is nearest the depthwise point: 4e6 FLOP at 1e10/s = 0.4 ms
    assert device.compute_tflops("conv", 2 * 10**6, 2 * 10**6) == 0.01
    assert device.op_seconds("convolution", 2 * 10**6, 2 * 10**6) == pytest.approx(4e-4 + 5e-6)
    # a matmul uses the matmul point: 2e6 FLOP at 5e11/s = 4 us
    assert device.op_seconds("addmm", 10**6, 10**4) == pytest.approx(4e-6 + 5e-6)


def test_the_shape_class_is_the_nearest_in_macs_and_depth():
    """Depth (MACs per output element) tells a depthwise conv (9) from a dense one (576) of the same size."""
    points = (RatePoint("conv", "dense 3x3", 10**8, 10**6, 0.0, 1.0, depth=576),
              RatePoint("conv", "depthwise 3x3", 10**6, 10**6, 0.0, 0.01, depth=9),
              RatePoint("memory", "copy", 0, 10**6, 0.0, 10.0))
    device = DeviceCalibration("cpu", "synthetic", "float32", 1, 0.0, points)
    assert device.compute_tflops("conv", 10**7, 10**6, depth=9) == 0.01  # log distance (1, 0) vs (1, 1.8)
    assert device.compute_tflops("conv", 10**7, 10**6, depth=576) == 1.0
    assert device.op_seconds("convolution", 10**7, 10**3, 9) == pytest.approx(2e7 / 1e10)


def test_a_batched_product_takes_the_rate_of_the_calibrated_one_alike_in_macs_per_byte():
    """GC's context pooling is a matrix-vector product per image (0.25 MACs per byte), a non-local
    block's affinity a matrix-matrix one (18 MACs per byte); a non-local product on a 7x7 map, near
    a GC point in MACs and depth, took the GC point's rate, 1/50 of its own, before bmm shapes were
    also told apart by MACs per byte (nonlocal_resnet18's products at batch 1 predicted 2,757 us,
    measured 573 in the network). Convs and matmuls keep (MACs, depth)."""
    device = replace(synthetic(), points=(
        *synthetic().points,
        RatePoint("bmm", "GC context 1024 @14, batch 8", 1_605_632, 6_461_568, 0.0, 0.002, depth=196, batch=8),
        RatePoint("bmm", "non-local affinity 196x256 @14", 9_834_496, 555_072, 0.0, 0.1, depth=256, batch=1)))
    nonlocal_7x7 = dict(macs=1_229_312, moved_bytes=163_856, depth=128)  # 7.5 MACs per byte
    gc_like = dict(macs=1_605_632, moved_bytes=6_461_568, depth=196)
    assert device.compute_tflops("bmm", **nonlocal_7x7) == 0.1
    assert device.compute_tflops("bmm", **gc_like) == 0.002
    assert device.op_seconds("bmm", 1_229_312, 163_856, depth=128) == pytest.approx(2 * 1_229_312 / 0.1e12 + 5e-6)
    # a conv keeps (MACs, depth): the point of its depth, though the other is alike in MACs per byte
    convs = replace(synthetic(), points=(RatePoint("conv", "depth 9", 10**6, 10**6, 0.0, 0.01, depth=9),
                                         RatePoint("conv", "depth 10", 10**6, 10**4, 0.0, 1.0, depth=10),
                                         *synthetic().points[3:]))
    assert convs.compute_tflops("conv", 10**6, 10**4, depth=9) == 0.01


def test_a_strided_conv_takes_the_rate_of_a_strided_one():
    """A 1x1 conv with stride 2 ran 1.2-2.2x slower per MAC than the same conv on the halved map: with
    the stride traced (aten.convolution's argument) and calibrated, it picks the strided point; a
    point or an op that does not know its stride (a file from before) is matched as before."""
    import torch

    from senet_cli.count.dispatch import trace_costs

    points = (RatePoint("conv", "1x1 @28", 10**8, 10**6, 0.0, 1.0, depth=512, stride=1),
              RatePoint("conv", "1x1/2 @56", 10**8, 10**6, 0.0, 0.5, depth=512, stride=2),
              RatePoint("memory", "copy", 0, 10**6, 0.0, 10.0))
    device = DeviceCalibration("cpu", "synthetic", "float32", 1, 0.0, points)
    assert device.compute_tflops("conv", 10**8, 10**6, depth=512, stride=2) == 0.5
    assert device.compute_tflops("conv", 10**8, 10**6, depth=512, stride=1) == 1.0
    conv = torch.nn.Conv2d(8, 16, 1, stride=(2, 1)).to("meta")
    (op,) = trace_costs(conv, torch.empty(1, 8, 8, 8, device="meta")).ops
    assert (op.op, op.depth, op.stride) == ("convolution", 8, 2)


def test_a_memory_bound_op_takes_its_bytes_at_the_bandwidth_for_its_size():
    device = synthetic()
    assert device.op_seconds("add", 0, 10**6) == pytest.approx(1e6 / 10e9 + 5e-6)  # 100 us + 5 us
    assert device.op_seconds("add", 0, 10**3) == pytest.approx(1e3 / 100e9 + 5e-6)  # below the smallest: 100 GB/s
    # halfway in log bytes between 1e4 (100 GB/s) and 1e6 (10 GB/s): 55 GB/s
    assert device.bandwidth_for(10**5) == pytest.approx(55.0)
    assert device.op_seconds("mul", 0, 10**5) == pytest.approx(1e5 / 55e9 + 5e-6)
    # a conv whose bytes outweigh its MACs is bound by the bytes: 1e3 MACs at 1 TFLOPS is 2 ns, 1e6 bytes 100 us
    assert device.op_seconds("convolution", 10**3, 10**6) == pytest.approx(1e-4 + 5e-6)
    # a max pool at the max-pool bandwidth (0.5 GB/s): 1e6 bytes in 2 ms; an average pool has no points: copies'
    assert device.op_seconds("max_pool2d_with_indices", 0, 10**6) == pytest.approx(2e-3 + 5e-6)
    assert device.op_seconds("_adaptive_avg_pool2d", 0, 10**6) == pytest.approx(1e-4 + 5e-6)


def test_the_per_op_cost_is_all_a_tiny_op_takes():
    assert synthetic().op_seconds("sigmoid", 0, 0) == pytest.approx(5e-6)
    assert synthetic(op_cost_us=0.0).op_seconds("sigmoid", 0, 8) == pytest.approx(8 / 100e9)
    assert [op_kind(op, macs) for op, macs in (("convolution", 1), ("bmm", 1), ("mean", 0), ("amax", 0), ("max", 0),
                                               ("max_pool2d_with_indices", 0), ("_adaptive_avg_pool2d", 0),
                                               ("mul", 0), ("native_batch_norm", 0))] == [
        "conv", "bmm", "sum_reduce", "max_reduce", "max_reduce", "max_pool", "avg_pool", "memory", "batch_norm"]
    assert op_kind("addmm", 1) == "matmul" and op_kind("baddbmm", 1) == "bmm"
    assert op_kind("mul", 0, depth=49) == "channelwise" and op_kind("relu", 0, depth=49) == "memory"
    assert op_kind("sigmoid", 0) == "pointwise" and op_kind("_softmax", 0) == "pointwise"


def test_per_channel_ops_are_traced_with_the_map_each_channel_covers():
    """SE's gating x * s (s: N x C x 1 x 1) and batch norm run a loop of H x W per channel (the trace's
    depth); CBAM's spatial gate (N x 1 x H x W), x * 2.0 and a residual add keep the whole inner loop (0)."""
    import torch

    from senet_cli.count.dispatch import trace_costs

    class Gates(torch.nn.Module):
        def forward(self, x):
            s = x.mean((2, 3), keepdim=True)
            return x * s, x * x.amax(1, keepdim=True), x * 2.0, x + x, s * x.mean((2, 3), keepdim=True)

    x = torch.empty(2, 8, 7, 5, device="meta")
    ops = [(op.op, op.depth) for op in trace_costs(Gates(), x).ops if op.op in ("mul", "add")]
    assert ops == [("mul", 35), ("mul", 0), ("mul", 0), ("add", 0), ("mul", 0)]
    norm = torch.nn.BatchNorm2d(8).eval().to("meta")
    assert [(op.op, op.depth) for op in trace_costs(norm, x).ops] == [("native_batch_norm", 35)]


def test_per_channel_ops_take_their_own_calibrated_rate_and_older_files_the_copy_rate():
    """A batch norm on a 7x7 map ran 2-3x below a copy's bandwidth on this project's CPU: with points of
    its own it is charged at the nearest one's rate in (log bytes, log map); a schema 1 file (no such
    points) charges it as before, at the memory points' bandwidth."""
    points = (*synthetic().points, RatePoint("batch_norm", "bn 2048 @7", 0, 10**6, 0.0, 2.0, depth=49),
              RatePoint("batch_norm", "bn 256 @56", 0, 10**6, 0.0, 8.0, depth=3136),
              RatePoint("channelwise", "x * s @7", 0, 10**6, 0.0, 4.0, depth=49))
    device = replace(synthetic(op_cost_us=0.0), points=points)
    assert device.op_seconds("native_batch_norm", 0, 10**6, depth=49) == pytest.approx(1e6 / 2e9)
    assert device.op_seconds("native_batch_norm", 0, 10**6, depth=3136) == pytest.approx(1e6 / 8e9)
    assert device.op_seconds("mul", 0, 10**6, depth=49) == pytest.approx(1e6 / 4e9)
    assert device.op_seconds("mul", 0, 10**6) == pytest.approx(1e6 / 10e9)  # no broadcast: a copy's rate
    older = synthetic(op_cost_us=0.0)
    assert older.op_seconds("native_batch_norm", 0, 10**6, depth=49) == pytest.approx(1e6 / 10e9)
    data = {**older.to_dict(), "schema": 1}
    assert DeviceCalibration.from_dict(data) == older  # schema 1 files are read as they are


def test_a_reduction_takes_its_bytes_at_the_rate_of_the_nearest_calibrated_reduction():
    """Nearest in (log bytes, log elements reduced per output), among reductions of its kind; the copies'
    bandwidth for its size where none of its kind was calibrated (a device file from before)."""
    points = (RatePoint("memory", "copy", 0, 10**6, 0.0, 10.0),
              RatePoint("max_reduce", "max over a 7x7 map", 0, 10**6, 0.0, 2.0, depth=49),
              RatePoint("max_reduce", "max over a 56x56 map", 0, 10**6, 0.0, 20.0, depth=3136),
              RatePoint("sum_reduce", "mean over a 56x56 map", 0, 10**6, 0.0, 40.0, depth=3136))
    device = DeviceCalibration("cpu", "synthetic", "float32", 1, 0.0, points)
    assert device.reduction_gbs("max_reduce", 10**6, 64) == 2.0
    assert device.reduction_gbs("max_reduce", 10**6, 2048) == 20.0
    assert device.op_seconds("amax", 0, 10**6, 49) == pytest.approx(1e6 / 2e9)
    assert device.op_seconds("mean", 0, 10**6, 49) == pytest.approx(1e6 / 40e9)  # the only mean point
    assert device.op_seconds("mul", 0, 10**6) == pytest.approx(1e6 / 10e9)
    older = DeviceCalibration("cpu", "synthetic", "float32", 1, 0.0, points[:1])
    assert older.op_seconds("amax", 0, 10**6, 49) == pytest.approx(1e6 / 10e9)


def test_a_strided_reduction_takes_the_rate_of_a_strided_one():
    """A max over 64 channels 3,136 elements apart (CBAM's channel pool at 64x56x56) is nearest, in
    depth and bytes, a max over a contiguous 7x7 map; the stride sends it to the channel max. Where
    either side does not know its stride (older files, untraced), depth and bytes decide as before."""
    points = (RatePoint("memory", "copy", 0, 10**6, 0.0, 10.0),
              RatePoint("max_reduce", "max over a 7x7 map, 2048 channels", 0, 4 * 10**5, 0.0, 3.0, depth=49,
                        stride=1),
              RatePoint("max_reduce", "max over 256 channels @56", 0, 32 * 10**5, 0.0, 25.0, depth=256,
                        stride=3136))
    device = DeviceCalibration("cpu", "synthetic", "float32", 1, 0.0, points)
    assert device.reduction_gbs("max_reduce", 8 * 10**5, 64, stride=3136) == 25.0
    assert device.reduction_gbs("max_reduce", 8 * 10**5, 64) == 3.0  # log distance 0.74 against 1.96
    assert device.op_seconds("amax", 0, 8 * 10**5, 64, 3136) == pytest.approx(8e5 / 25e9)


def test_a_traced_reduction_records_the_elements_each_output_reduces():
    import torch

    from senet_cli.count.dispatch import trace_costs

    class Pools(torch.nn.Module):
        def forward(self, x):
            return x.amax(1, keepdim=True) + x.mean((2, 3), keepdim=True) + x.sum() + x.amax(-2, keepdim=True)

    ops = trace_costs(Pools(), torch.empty(2, 8, 4, 6, device="meta")).ops
    assert [(op.op, op.depth, op.stride) for op in ops if op.op in ("amax", "mean", "sum")] == [
        ("amax", 8, 4 * 6), ("mean", 4 * 6, 1), ("sum", 2 * 8 * 4 * 6, 1), ("amax", 4, 6)]
    last = trace_costs(Pools(), torch.empty(2, 8, 4, 6, device="meta").to(memory_format=torch.channels_last)).ops
    assert [op.stride for op in last if op.op == "amax"] == [1, 6 * 8]  # channels are contiguous there


def test_kernels_per_block_by_hand():
    """ResNet-18: stem conv, bn, relu, max pool (4); 8 basic blocks of conv, bn, relu, conv, bn, add,
    relu (56); 3 downsample conv + bn (6); head: average pool and addmm (2; flatten is a view) = 68.
    SE adds per block: mean, conv, relu, conv, sigmoid, mul = 6, x 8 = 48."""
    plain = senet_cli.count("resnet18")
    assert plain.kernels == 68 and plain.stem.kernels == 4 and plain.head.kernels == 2
    se = senet_cli.count("se_resnet18")
    assert se.kernels == 116 and se.attention_total("kernels") == 48
    assert all(block.attention_kernels == 6 for block in se.blocks)
    assert se.baseline.kernels == 68 and se.overhead.kernels == 48
    assert se.overhead.kernels_pct == pytest.approx(48 / 68 * 100)
    data = se.to_dict()
    assert data["kernels"] == 116 and data["attention"]["kernels"] == 48 and data["overhead"]["kernels"] == 48
    assert data["blocks"][0]["kernels"] == 13 and "kernels_convention" in data


def test_with_infinite_rates_the_prediction_is_kernels_times_the_op_cost():
    device = calibrated_device(synthetic(op_cost_us=7.0, conv=1e12, matmul=1e12, memory=1e15, max_pool=1e15))
    report = senet_cli.count("se_resnet18", roofline=device)
    roof = report.roofline
    assert roof.predicted_ms == pytest.approx(116 * 7.0e-3, rel=1e-6)
    assert roof.baseline_predicted_ms == pytest.approx(68 * 7.0e-3, rel=1e-6)
    assert roof.predicted_overhead_pct == pytest.approx((116 - 68) / 68 * 100, rel=1e-6)
    for row in report.rows:
        assert row.predicted_ms == pytest.approx(row.kernels * 7.0e-3, rel=1e-6)
        assert row.attention_predicted_ms == pytest.approx(row.attention_kernels * 7.0e-3, rel=1e-6)


@pytest.mark.parametrize("model", ["se_resnet18", "cbam_resnet18", "sk_resnet18", "torchvision:mobilenet_v3_small"])
def test_a_bound_never_exceeds_a_prediction(model):
    device = calibrated_device(synthetic())
    report = senet_cli.count(model, roofline=device, input_size=64)
    roof = report.roofline
    assert roof.peak_tflops == 1.0 and roof.bandwidth_gbs == 100.0  # the best rates measured
    assert roof.ms <= roof.predicted_ms and roof.baseline_ms <= roof.baseline_predicted_ms
    for row in report.rows:
        assert row.roofline_ms <= row.predicted_ms
    assert roof.predicted_ms == pytest.approx(sum(row.predicted_ms for row in report.rows))
    # at least the per-op cost of every kernel on top of the bound's work
    assert roof.predicted_ms >= report.kernels * OP_COST_US * 1e-3


def test_a_device_file_round_trips_and_bad_ones_get_one_line(tmp_path, cli):
    path = tmp_path / "device.json"
    path.write_text(json.dumps(synthetic().to_dict()))
    device = parse_device(str(path))
    assert device.calibration == synthetic() and device.bandwidth_gbs == 100.0 and "calibrated" in device.name
    code, out, err = cli(["count", "se_resnet18_cifar", "--roofline", str(path), "--format", "json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["roofline"]["predicted_ms"] > data["roofline"]["ms"] and "predicted_ms" in data["blocks"][0]
    assert data["roofline"]["op_cost_us"] == OP_COST_US
    with pytest.raises(SenetError, match="does not exist; write one with `senet calibrate"):
        parse_device(str(tmp_path / "missing.json"))
    (tmp_path / "other.json").write_text('{"schema": 1, "device": "cpu"}')
    code, _, err = cli(["count", "resnet18_cifar", "--roofline", str(tmp_path / "other.json")])
    assert code == 2 and err.count("\n") == 1 and "'points' must be a list of measured points" in err
    (tmp_path / "not.json").write_text("[]")
    with pytest.raises(SenetError, match="is not a `senet calibrate` device file"):
        parse_device(str(tmp_path / "not.json"))
    code, _, err = cli(["count", "resnet18_cifar", "--roofline", str(path), "--dtype", "float16"])
    assert code == 2 and "calibrated in float32, not float16" in err


def test_calibrate_measures_and_writes_its_schema(tmp_path):
    from senet_cli.profile.calibrate import calibrate

    calibration = calibrate("cpu", threads=1, batches=(1,), min_run_time=0.01,
                            conv_shapes=(("3x3 16->16 @16", 16, 16, 3, 1, 1, 16),),
                            linear_shapes=(("linear 64->10", 64, 10),), memory_bytes=(2**12, 2**16),
                            cold_bytes=(2**12,), cold_pool_bytes=2**16,
                            reduce_maps=((8, 8),), batch_norm_maps=((4, 8),), channel_maps=((4, 8),),
                            bmm_shapes=(("context", 4, 64, 1),), pointwise_ops=("silu", "_softmax"),
                            pointwise_bytes=(2**12 * 784 // 1024,))
    data = calibration.to_dict()
    assert set(data) >= {"schema", "device", "name", "dtype", "threads", "op_cost_us", "peak_tflops", "bandwidth_gbs",
                         "points", "torch_version", "created", "seconds", "method", "units"}
    assert data["device"] == "cpu" and data["threads"] == 1 and data["dtype"] == "float32"
    assert data["op_cost_us"] > 0 and all(p["rate"] > 0 and p["median_us"] > 0 for p in data["points"])
    kinds = [p["kind"] for p in data["points"]]
    assert kinds.count("memory") == 2 and kinds.count("cold_write") == 1
    assert {"conv", "matmul", "max_pool", "avg_pool"} <= set(kinds)
    assert all(kind in data["units"] for kind in kinds)  # every kind's rate has its unit named
    assert kinds.count("max_reduce") == 2 and kinds.count("sum_reduce") == 2
    over_channels = next(p for p in data["points"] if p["label"].startswith("amax over the channels"))
    assert over_channels["depth"] == 8 and over_channels["bytes"] == 4 * (8 * 8 * 8 + 8 * 8)  # read, write
    conv = next(p for p in data["points"] if p["kind"] == "conv")
    assert conv["macs"] == 16 * 16 * 9 * 16 * 16 and conv["bytes"] == 4 * (2 * 16 * 16 * 16 + 16 * 16 * 9)
    assert conv["depth"] == 16 * 9 and conv["stride"] == 1  # MACs per output element; its spatial stride
    assert conv["width"] == 16 and conv["op"] == "" and all(p["width"] == 0 for p in data["points"] if p is not conv)
    silu, softmax = (next(p for p in data["points"] if p["kind"] == "pointwise" and p["op"] == op)
                     for op in ("silu", "_softmax"))
    assert silu["bytes"] == softmax["bytes"] == 2 * 4 * 784 and silu["label"] == "silu, 0.00299072 MiB"  # read, write
    copy = next(p for p in data["points"] if p["kind"] == "memory")
    assert copy["bytes"] == 2 * 2**12  # x * 2.0: read once, written once
    norm = next(p for p in data["points"] if p["kind"] == "batch_norm")
    gating = next(p for p in data["points"] if p["kind"] == "channelwise")
    assert norm["depth"] == gating["depth"] == 8 * 8  # the map each channel's value covers
    assert gating["bytes"] == 4 * (2 * 4 * 8 * 8 + 4)  # x read and written, s read once
    product = next(p for p in data["points"] if p["kind"] == "bmm")
    assert product["macs"] == 4 * 64 and product["depth"] == 64  # [1, 4, 64] x [1, 64, 1]
    assert DeviceCalibration.from_dict(json.loads(json.dumps(data))) == calibration


def test_calibrate_measures_every_point_in_interleaved_rounds_within_its_budget():
    """Every point is measured `rounds` times (the method says how many); a budget already spent
    stops after MIN_ROUNDS; each point records the spread of its rounds."""
    from senet_cli.profile.calibrate import MIN_ROUNDS, calibrate

    tiny = dict(threads=1, batches=(1,), min_run_time=0.001, conv_shapes=(("3x3 8->8 @8", 8, 8, 3, 1, 1, 8),),
                linear_shapes=(("linear 16->4", 16, 4),), memory_bytes=(2**12,), cold_bytes=(), reduce_maps=(),
                batch_norm_maps=(), channel_maps=(), bmm_shapes=(), pointwise_ops=(), after_op_pairs=())
    steps: list[tuple[int, int]] = []
    calibration = calibrate("cpu", rounds=5, on_step=lambda done, total: steps.append((done, total)), **tiny)
    assert "in 5 interleaved rounds" in calibration.method
    jobs = 1 + len(calibration.points)  # the per-op chain and the points; 3 pools at batch 1
    assert len(calibration.points) == 1 + 1 + 1 + 3 + 1 and steps[-1] == (jobs * 6, jobs * 6)  # 5 rounds
    assert [done for done, _ in steps] == list(range(1, jobs * 6 + 1))  # the end once (a progress line each)
    assert all(point.spread >= 0 for point in calibration.points)
    steps.clear()
    hurried = calibrate("cpu", rounds=9, budget_s=0.0, on_step=lambda done, total: steps.append((done, total)), **tiny)
    assert f"in {MIN_ROUNDS} interleaved rounds (at most 9" in hurried.method
    end = jobs * (1 + MIN_ROUNDS)  # stopped early: the total shrinks to the rounds the budget left, the end said once
    assert steps[-1] == (end, end) and [done for done, _ in steps] == list(range(1, end + 1))
    assert steps[0][1] == jobs * 10 and all(done <= total for done, total in steps)
    assert DeviceCalibration.from_dict(json.loads(json.dumps(hurried.to_dict()))) == hurried


def test_every_round_times_a_fresh_copy_of_the_module_and_its_input():
    """Where a tensor lands moves its op's time for as long as it lives: each round measures new
    copies (new modules, new input storage, the same values), so the median spans placements; the
    caller's module and input are left as they were."""
    import torch
    from torch import nn

    from senet_cli.profile.calibrate import time_interleaved

    seen: list[tuple[nn.Module, torch.Tensor, float]] = []  # kept alive, so ids and addresses stay distinct

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.full((1,), 3.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((self, x, float((x * self.scale).sum())))
            return x * self.scale

    module, x = Probe(), torch.arange(4.0)
    times = time_interleaved([(module, x)], seconds=1e-6, rounds=3)
    assert len(times) == 1 and len(times[0]) == 3 and all(t > 0 for t in times[0])
    warm_up = [entry for entry in seen if entry[0] is module]
    rounds = [entry for entry in seen if entry[0] is not module]
    assert warm_up and all(seen_x is x for _, seen_x, _ in warm_up)  # the warm-up and the call count
    assert len({id(copy) for copy, _, _ in rounds}) == 3  # a new module each round
    assert len({seen_x.data_ptr() for _, seen_x, _ in rounds} - {x.data_ptr()}) == 3  # and new storage
    assert {value for _, _, value in seen} == {18.0}  # the same values: 3 * (0 + 1 + 2 + 3)
    assert float(module.scale.detach()) == 3.0 and x.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_every_measurement_runs_on_the_thread_count_calibrate_was_given():
    """torch.utils.benchmark's Timer runs on one thread unless told otherwise: `calibrate --threads 2`
    once measured single-threaded rates and wrote `"threads": 2` into the device file."""
    import torch
    from torch import nn

    from senet_cli.profile.calibrate import calibrate, time_interleaved

    counts: list[int] = []

    class Threads(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            counts.append(torch.get_num_threads())
            return x + 1

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        time_interleaved([(Threads(), torch.zeros(2))], seconds=1e-6, rounds=2)
        assert counts and set(counts) == {2}
        tiny = dict(batches=(1,), min_run_time=0.001, rounds=1, conv_shapes=(), linear_shapes=(("linear 4->4", 4, 4),),
                    memory_bytes=(2**12,), cold_bytes=(), reduce_maps=(), batch_norm_maps=(), channel_maps=(),
                    bmm_shapes=(), pointwise_ops=())
        assert calibrate("cpu", threads=3, **tiny).threads == 3
        assert torch.get_num_threads() == 3  # what calibrate set is what it measured with and recorded
    finally:
        torch.set_num_threads(before)


def test_the_calibration_table_and_csv_show_every_kind_with_its_unit():
    from senet_cli.render.calibrate_view import calibration_table, csv_rows

    points = (*synthetic().points, RatePoint("max_reduce", "amax over the map", 0, 10**6, 9.0, 3.5, 49, spread=0.04),
              RatePoint("sum_reduce", "mean over the channels", 0, 10**6, 9.0, 20.0, 256, 0.02),
              RatePoint("avg_pool", "squeeze", 0, 10**6, 9.0, 15.0))
    calibration = replace(synthetic(), points=points)
    table = calibration_table(calibration)
    units = {row[0]: row[-1].split()[-1] for row in table.rows}
    assert units == {"conv": "TFLOPS", "matmul": "TFLOPS", "memory": "GB/s", "max_pool": "GB/s",
                     "max_reduce": "GB/s", "sum_reduce": "GB/s", "avg_pool": "GB/s"}
    assert table.rows[-3][-2] == "4%"  # the spread over calibrate's rounds
    assert table.shown == ("kind", "label", "batch", "median_us", "spread", "rate")  # MACs, bytes: --columns
    headers, rows = csv_rows([calibration])
    assert len(rows) == len(points) and rows[-3][headers.index("rate_unit")] == "GB/s"


def test_the_calibration_table_fits_80_columns_with_the_batch_in_a_column_of_its_own():
    from senet_cli.render.calibrate_view import calibration_table, csv_rows
    from senet_cli.render.tables import needed_width, render_text, rich_notes, select_columns, to_rich

    labels = ("conv 1x1/2 256->512 @56 (downsample), batch 1", "x * s (s: N x 2048 x 1 x 1) @7, batch 8",
              "x * 2.0, 256 MiB")
    points = tuple(RatePoint("conv" if "conv" in label else "channelwise" if "s:" in label else "memory", label,
                             10**9, 10**6, 139716.5, 0.0008328, 49, spread=0.04) for label in labels)
    calibration = replace(synthetic(), points=points)
    table = select_columns(calibration_table(calibration), None)
    assert [row[:3] for row in table.rows] == [
        ("conv", "conv 1x1/2 256->512 @56 (downsample)", "1"), ("channelwise", "x * s (s: N x 2048 x 1 x 1) @7", "8"),
        ("memory", "x * 2.0, 256 MiB", "")]
    text = render_text([to_rich(table), *rich_notes(table)], width=80)
    assert needed_width(table) <= 80 and max(map(len, text.splitlines())) <= 80, text
    headers, rows = csv_rows([calibration])
    assert [row[headers.index("batch")] for row in rows] == ["1", "8", ""]
    assert rows[0][headers.index("label")] == labels[0]  # the CSV keeps the label whole
    assert {"after_op_fraction", "depth", "stride", "rounds", "busy"} <= set(headers)


@pytest.mark.slow
def test_the_calibrate_command_writes_a_device_file_under_a_minute(tmp_path, cli):
    import time

    path = tmp_path / "dev.json"
    started = time.perf_counter()
    code, _, err = cli(["calibrate", "--threads", "1", "--output", str(path)])
    assert code == 0, err
    assert time.perf_counter() - started < 60
    assert DeviceCalibration.load(path).threads == 1
    code, _, err = cli(["calibrate", "--threads", "1", "--output", str(path)])
    assert code == 2 and "already exists; pass --force" in err


def _measurement(median: float) -> Measurement:
    return Measurement("m", LatencyStats(median, median, median, median, median), 1.0, None, 3)


def test_profile_says_when_a_bound_is_above_the_measured_median():
    from senet_cli.profile.api import _bound_notes
    from senet_cli.profile.timing import Timing

    result = BatchResult(1, _measurement(2.0), None, None, roofline_ms=3.0)
    (note,) = _bound_notes((result,), parse_device("h100"), Timing(), 1)
    assert "bound is above the measured median at batch 1 (0.67x)" in note and "senet calibrate" in note
    assert _bound_notes((replace(result, roofline_ms=1.0),), parse_device("h100"), Timing(), 1) == ()
    device = calibrated_device(replace(synthetic(), threads=2))
    (note,) = _bound_notes((replace(result, roofline_ms=1.0),), device, Timing(), 1)
    assert note == ("the device file was calibrated on cpu, 2 threads, this run is on cpu, 1 thread: its "
                    "predictions are for that setting")
    # a calibrated bound above the median: the setting it was made in is named first, as the likely cause
    (note,) = _bound_notes((result,), device, Timing(), 1)
    assert note.endswith("bound is above the measured median at batch 1 (0.67x): the device file was calibrated "
                         "on cpu, 2 threads, this run is on cpu, 1 thread; calibrate with this run's setting")
    (note,) = _bound_notes((result,), calibrated_device(synthetic()), Timing(), 1)
    assert "faster than the calibration's rates" in note and "calibrate again on a quiet machine" in note
    # a prediction is for eager, channels-first execution: a channels-last or compiled run is told so
    (note,) = _bound_notes((replace(result, roofline_ms=1.0),), calibrated_device(synthetic()),
                           Timing(channels_last=True, compile=True), 1)
    assert "predicted for eager, channels-first execution" in note and "channels-last and compiled" in note
    assert _bound_notes((replace(result, roofline_ms=1.0),), parse_device("h100"), Timing(channels_last=True), 1) == ()


def test_profile_refuses_a_precision_the_device_file_was_not_calibrated_in_before_timing(tmp_path, cli,
                                                                                         monkeypatch):
    """count refused it; profile timed every batch and then dropped the prediction with advice that
    could not be followed (calibrate has no autocast). Now both refuse up front, in one line."""
    from senet_cli.profile import harness

    monkeypatch.setattr(harness, "prepare", lambda *a, **k: pytest.fail("timed before refusing"))
    path = tmp_path / "device.json"
    path.write_text(json.dumps(synthetic().to_dict()))
    for extra, said in ((["--amp"], "--roofline holds rates measured in float32 without autocast; a prediction "
                                    "under --amp would mix precisions op by op"),
                        (["--dtype", "bfloat16"], "--roofline was calibrated in float32, not bfloat16: use --dtype "
                                                  "float32, or calibrate again with --dtype bfloat16")):
        for command in ("profile", "count"):
            code, _, err = cli([command, "se_resnet18_cifar", "--roofline", str(path), *extra])
            assert code == 2 and said in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(SenetError, match="calibrated in float32, not bfloat16: use dtype='float32'"):
        senet_cli.profile("se_resnet18_cifar", roofline=str(path), dtype="bfloat16")


def test_profile_in_train_mode_says_it_has_no_bound_or_prediction(tmp_path):
    path = tmp_path / "device.json"
    path.write_text(json.dumps(synthetic().to_dict()))
    report = senet_cli.profile("se_resnet18_cifar", input_size=32, iters=1, warmup=0, threads=1, mode="train",
                               roofline=str(path))
    assert report.roofline is None and report.results[0].predicted_ms is None
    assert "no bound or prediction in train mode: count's bound and the latency model cover one forward pass " \
           "(inference)" in report.notes


def test_a_device_file_is_any_file_and_a_removed_preset_says_why(tmp_path, monkeypatch):
    path = tmp_path / "device.calibration"  # calibrate's JSON kept under another name
    path.write_text(json.dumps(synthetic().to_dict()))
    assert parse_device(str(path)).calibration == synthetic()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "h100").write_text("a file named like a preset")
    assert parse_device("h100").name == "h100"  # a preset's name is the preset, whatever is in the folder
    with pytest.raises(SenetError, match="the cpu preset was removed .* measure this machine with `senet calibrate`"):
        parse_device("cpu")
    with pytest.raises(SenetError, match="device file missing.txt does not exist; write one with `senet calibrate`"):
        parse_device("missing.txt")
    with pytest.raises(SenetError, match="two positive numbers PEAK_TFLOPS,BANDWIDTH_GBS .* got '1.5'"):
        parse_device("1.5")
    with pytest.raises(SenetError, match="unknown roofline device 'h10' \\(did you mean 'h100'\\?\\)"):
        parse_device("h10")


def test_a_device_file_made_on_a_busy_machine_says_so_wherever_it_is_used():
    busy = replace(synthetic(), load_before=2.0, cpu_count=2)
    assert busy.busy and "CAUTION: calibrated on a busy machine (load 2.0 before, on 2 CPUs)" in \
        calibrated_device(busy).source
    assert "CAUTION" not in calibrated_device(synthetic()).source
    roof = senet_cli.count("se_resnet18_cifar", roofline=calibrated_device(busy)).roofline
    assert "busy machine" in roof.source  # count's roofline note and JSON, profile's bound note


def test_calibrate_records_its_rounds_and_one_round_shows_no_spread():
    from senet_cli.render.calibrate_view import calibration_table

    one = replace(synthetic(), rounds=1)
    assert DeviceCalibration.from_dict(one.to_dict()).rounds == 1
    assert DeviceCalibration.from_dict({k: v for k, v in one.to_dict().items() if k != "rounds"}).rounds == 0
    table = calibration_table(one)
    spread = table.keys.index("spread")
    assert {row[spread] for row in table.rows} == {"n/a"} and table.caption.endswith(", 1 round")
    assert any("n/a with 1 round" in note for note in table.notes)
    assert {row[spread] for row in calibration_table(replace(one, rounds=5)).rows} == {"0%"}
    assert one.setting == "cpu, 1 thread" and replace(one, threads=4).setting == "cpu, 4 threads"
    assert replace(one, device="cuda").setting == "cuda"


def test_count_and_profile_share_the_roofline_keys(tmp_path):
    path = tmp_path / "device.json"
    path.write_text(json.dumps(cold_reads().to_dict()))
    counted = senet_cli.count("se_resnet18_cifar", roofline=str(path)).to_dict()["roofline"]
    assert counted["calibrated"] is True and counted["op_cost_us"] == OP_COST_US
    assert senet_cli.count("se_resnet18_cifar", roofline="h100").to_dict()["roofline"]["calibrated"] is False
    report = senet_cli.profile("se_resnet18_cifar", input_size=32, iters=1, warmup=0, threads=1, roofline=str(path))
    profiled = report.to_dict()["roofline"]
    shared = {"device", "peak_tflops", "bandwidth_gbs", "source", "calibrated", "op_cost_us", "after_op_fraction",
              "cold_write_us_per_mib", "cold_read_us_per_mib", "cache_bytes", "cold_op_us", "fresh_page_us_per_mib"}
    per_mib, read_per_mib = cold().cold_write_us_per_mib, cold_reads().cold_read_us_per_mib
    assert per_mib > 0 and counted["cold_write_us_per_mib"] == pytest.approx(per_mib)
    assert read_per_mib > 0 and counted["cold_read_us_per_mib"] == pytest.approx(read_per_mib)
    assert shared <= set(counted) and shared <= set(profiled)
    assert {key: counted[key] for key in shared} == {key: profiled[key] for key in shared}
    from senet_cli.render.profile_view import csv_rows

    headers, (row,) = csv_rows([report])
    assert row[headers.index("cold_write_us_per_mib")] == pytest.approx(per_mib)  # the CSV holds what the JSON does
    assert row[headers.index("cold_read_us_per_mib")] == pytest.approx(read_per_mib) and headers[-5:] == \
        ["cold_read_us_per_mib", "cold_op_us", "page_faults_mib", "baseline_page_faults_mib",
         "fresh_page_us_per_mib"]  # new columns go last: a script's column numbers keep
    assert row[-4] == counted["cold_op_us"] == 0.0  # cold_reads() measured none
    assert row[-1] == counted["fresh_page_us_per_mib"] == 0.0  # nor a fresh-page cost
    faults = report.to_dict()["results"][0]
    assert (row[-3], row[-2]) == (faults["page_faults_mib"], faults["baseline"]["page_faults_mib"])


def test_profile_puts_the_median_next_to_the_prediction(tmp_path):
    path = tmp_path / "device.json"
    path.write_text(json.dumps(synthetic().to_dict()))
    report = senet_cli.profile("se_resnet18_cifar", input_size=32, iters=2, warmup=0, threads=1, roofline=str(path))
    (result,) = report.results
    counted = senet_cli.count("se_resnet18_cifar", roofline=str(path)).roofline
    assert result.predicted_ms == pytest.approx(counted.predicted_ms)
    assert result.over_predicted == pytest.approx(result.model.latency_ms.median / counted.predicted_ms)
    entry = report.to_dict()["results"][0]
    assert entry["measured_over_predicted"] == pytest.approx(result.over_predicted)
    assert entry["predicted_overhead_pct"] == pytest.approx(counted.predicted_overhead_pct)
    assert report.to_dict()["roofline"]["calibrated"] is True
    assert math.isfinite(entry["baseline_predicted_ms"])
    from senet_cli.render.profile_view import csv_rows

    headers, (row,) = csv_rows([report])  # the CSV has every JSON field of a batch, the predicted overhead too
    assert row[headers.index("predicted_overhead_pct")] == pytest.approx(counted.predicted_overhead_pct)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_calibration_measures_the_gpu():
    """On a GPU (benchmarks/gpu_check.sh runs this): the device file names it, and the prediction
    for a model is above its bound and within 100x of it (launches dominate at batch 1)."""
    import torch

    from senet_cli.profile.calibrate import calibrate

    calibration = calibrate("cuda", batches=(1,), min_run_time=0.02)
    assert calibration.device == "cuda" and calibration.name == torch.cuda.get_device_name()
    assert 0 < calibration.op_cost_us < 1000
    roof = senet_cli.count("se_resnet18", roofline=calibrated_device(calibration)).roofline
    assert roof.ms <= roof.predicted_ms < 100 * roof.ms + 1.0


def test_calibrate_prints_no_cuda_runtime_warning_on_a_machine_without_one():
    """torch.utils.benchmark imports torch.utils.cpp_extension, which logs "No CUDA runtime is found"
    at import on a CUDA build without a GPU (this project's CI): calibrate's stderr is its progress only."""
    import subprocess
    import sys

    code = ("import torch\nfrom senet_cli.profile.calibrate import time_interleaved\n"
            "time_interleaved([(torch.nn.Identity(), torch.zeros(1))], seconds=1e-6, rounds=1)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "cpp_extension" not in result.stderr and "CUDA_HOME" not in result.stderr


def test_hostile_device_files_get_one_line_that_names_what_is_wrong(tmp_path):
    """Bounded before it is read (size, nesting, point count); each field checked by name."""
    from senet_cli.count.latency import MAX_FILE_BYTES, MAX_POINTS

    good = synthetic().to_dict()

    def refused(data: object, match: str, text: str | None = None) -> None:
        path = tmp_path / "bad.json"
        path.write_text(text if text is not None else json.dumps(data))
        with pytest.raises(SenetError, match=match):
            parse_device(str(path))

    refused(None, "nested too deeply", text="[" * 100_000 + "]" * 100_000)
    refused(None, f"at most {MAX_FILE_BYTES // 2**20} MiB are read", text=" " * (MAX_FILE_BYTES + 1))
    refused({**good, "points": [good["points"][0]] * (MAX_POINTS + 1)}, "points; senet calibrate writes about 100")
    refused({**good, "schema": 10}, "has schema 10; this senet reads schema 1, 2, 3, 4, 5, 6, 7, 8 and 9")
    refused({**good, "schema": True}, "is not a `senet calibrate` device file")
    refused({**good, "points": 5}, "'points' must be a list")
    refused({**good, "threads": None}, "threads must be a whole number, got None")
    refused({**good, "points": [{**good["points"][0], "kind": "warp"}, *good["points"][1:]]},
            "point 1 .*: its kind is not one of conv")
    for name, value in (("bytes", -5), ("depth", -5), ("stride", -1), ("stride", "2"), ("depth", True),
                        ("stride", 2.0), ("depth", 10**400), ("depth", float("nan"))):
        refused({**good, "points": [{**good["points"][0], name: value}, *good["points"][1:]]},
                f"point 1 of {len(good['points'])} \\('conv', 'big'\\): {name} must be a whole number from 0 to "
                f"1e18, got {re.escape(repr(value)[:20])}")
    refused({**good, "points": [{**good["points"][0], "rate": float("inf")}, *good["points"][1:]]},
            "not a finite positive number")
    for rate in (1e-300, 5e-324, 1e7):  # 1e-300 rounded an interpolated bandwidth to 0: a ZeroDivisionError
        refused({**good, "points": [*good["points"][:3], {**good["points"][3], "rate": rate}, *good["points"][4:]]},
                re.escape(f"point 4 of 6 ('memory', 'small copy'): its rate must be from 1e-06 to 1e+06 "
                          f"(TFLOPS or GB/s), got {rate:g}"))
    for name, value, said in (("rate", "12", "rate must be a number, got '12'"),
                              ("median_us", -1.0, "median_us must be a number from 0, got -1.0"),
                              ("median_us", float("nan"), "median_us must be a number from 0, got nan"),
                              ("spread", "0.1", "spread must be a number from 0, got '0.1'"),
                              ("rate", True, "rate must be a number, got True")):  # not read as 12 or 1.0
        refused({**good, "points": [{**good["points"][0], name: value}, *good["points"][1:]]},
                re.escape(f"point 1 of {len(good['points'])} ('conv', 'big'): {said}"))
    # a point's rate is per byte or per MAC: none of them may be 0 (a bandwidth interpolated in log bytes, issue 22)
    copy = next(i for i, p in enumerate(good["points"]) if p["kind"] == "memory")
    zero_bytes = [*good["points"][:copy], {**good["points"][copy], "bytes": 0}, *good["points"][copy + 1:]]
    refused({**good, "points": zero_bytes},
            re.escape(f"point {copy + 1} of 6 ('memory', 'small copy'): bytes must be at least 1"))
    refused({**good, "points": [{**good["points"][0], "macs": 0}, *good["points"][1:]]},
            re.escape("point 1 of 6 ('conv', 'big'): macs must be at least 1"))
    refused({**good, "op_cost_us": 1e308}, "op_cost_us must be")
    refused({**good, "threads": 0}, "threads must be at least 1")
    refused({**good, "device": "tpu"}, "device one of cpu, cuda")
    refused({**good, "points": [{k: v for k, v in good["points"][0].items() if k != "rate"}]},
            "point 1 of 1 lacks 'rate'")
    bom = tmp_path / "bom.json"  # what Windows editors write
    bom.write_text("\ufeff" + json.dumps(good), encoding="utf-8")
    assert parse_device(str(bom)).calibration == synthetic()


def test_a_calibration_made_on_a_busy_machine_says_so(monkeypatch, tmp_path, cli):
    """Load before + threads over the CPUs (by more than half of one) is busy: recorded in the device
    file (load_before, load_after, cpu_count, busy) and cautioned in one line by the CLI."""
    calibrate_module = importlib.import_module("senet_cli.profile.calibrate")  # the package re-exports its name
    quiet = replace(synthetic(), threads=1, load_before=0.4, load_after=1.1, cpu_count=2)
    busy = replace(quiet, threads=2, load_before=2.0, load_after=3.9)
    assert not quiet.busy and busy.busy  # 0.4 + 1 <= 2.5 < 2.0 + 2
    joined = replace(quiet, load_after=2.4)  # others began while it ran: 2.4 - 0.57 of its own + 1 > 2.5
    assert joined.busy and not replace(quiet, load_after=-1.0).busy
    assert quiet.own_load_share == pytest.approx(1 - math.exp(-50 / 60))  # no recorded length: the 50 s budget
    short, long = replace(quiet, seconds=10.0, load_after=1.9), replace(quiet, seconds=120.0, load_after=1.9)
    assert short.own_load_share == pytest.approx(1 - math.exp(-10 / 60)) and short.busy  # 1.9 - 0.15 + 1 > 2.5
    assert long.own_load_share == pytest.approx(1 - math.exp(-2)) and not long.busy  # 1.9 - 0.86 + 1 <= 2.5
    assert not replace(busy, cpu_count=0).busy and not replace(busy, device="cuda").busy  # unknown; a GPU
    data = json.loads(json.dumps(busy.to_dict()))
    assert data["busy"] is True and data["load_before"] == 2.0 and data["cpu_count"] == 2
    assert DeviceCalibration.from_dict(data) == busy
    legacy = {key: value for key, value in quiet.to_dict().items() if key not in ("load_before", "load_after",
                                                                                  "cpu_count", "busy")}
    assert DeviceCalibration.from_dict(legacy).cpu_count == 0  # files from before read as "not known"

    monkeypatch.setattr(calibrate_module, "calibrate", lambda *args, **kwargs: busy)
    code, _, err = cli(["calibrate", "--output", str(tmp_path / "busy.json")])
    assert code == 0 and "caution: the machine was busy (load average 2.0 before and 3.9 after, on 2 CPUs" in err
    code, _, err = cli(["calibrate"])
    assert code == 0 and "nothing was written; add --output DEVICE.json" in err
    monkeypatch.setattr(calibrate_module, "calibrate", lambda *args, **kwargs: quiet)
    code, _, err = cli(["calibrate", "--output", str(tmp_path / "quiet.json")])
    assert code == 0 and "caution" not in err
    assert "per-op cost 5.00 us; after a long op, 0.0% of its time" in err  # what was found, though written away
    assert json.loads((tmp_path / "quiet.json").read_text())["busy"] is False


def test_calibrate_records_the_load_and_the_cpus(monkeypatch):
    import os

    calibrate_module = importlib.import_module("senet_cli.profile.calibrate")
    loads = iter([1.5, 2.5])
    monkeypatch.setattr(calibrate_module, "_load_average", lambda: next(loads))
    tiny = dict(batches=(1,), min_run_time=0.001, rounds=1, conv_shapes=(), linear_shapes=(("linear 4->4", 4, 4),),
                memory_bytes=(2**12,), cold_bytes=(), reduce_maps=(), batch_norm_maps=(), channel_maps=(),
                    bmm_shapes=(), pointwise_ops=())
    calibration = calibrate_module.calibrate("cpu", threads=1, **tiny)
    assert (calibration.load_before, calibration.load_after, calibration.cpu_count) == (1.5, 2.5, os.cpu_count())


def test_each_op_pays_the_after_op_fraction_of_the_op_before_it():
    """forward_predictor: op_seconds, plus after_op_fraction x the previous op's op_seconds (not its
    own extra); a count's predicted time is then linear in the fraction, and grows by less than the
    fraction of the whole (the last op has no follower)."""
    calibration = replace(synthetic(), after_op_fraction=0.1)
    predict = calibration.forward_predictor()
    first, second = calibration.op_seconds("convolution", 10**8, 10**6, 576), calibration.op_seconds("add", 0, 10**6)
    assert predict("convolution", 10**8, 10**6, 576) == first
    assert predict("add", 0, 10**6) == pytest.approx(second + 0.1 * first)
    assert predict("add", 0, 10**6) == pytest.approx(second + 0.1 * second)  # the previous op's own time
    assert calibration.forward_predictor()("add", 0, 10**6) == second  # a new pass starts afresh
    devices = {f: calibrated_device(replace(synthetic(), after_op_fraction=f)) for f in (0.0, 0.1, 0.2)}
    totals = {f: senet_cli.count("resnet18_cifar", roofline=dev).roofline.predicted_ms for f, dev in devices.items()}
    assert totals[0.2] - totals[0.0] == pytest.approx(2 * (totals[0.1] - totals[0.0]))
    assert 0 < totals[0.1] - totals[0.0] < 0.1 * totals[0.0]


def test_the_after_op_fraction_is_read_checked_and_absent_from_older_files():
    data = replace(synthetic(), after_op_fraction=0.02).to_dict()
    assert DeviceCalibration.from_dict(data).after_op_fraction == 0.02
    older = {key: value for key, value in data.items() if key != "after_op_fraction"} | {"schema": 2}
    assert DeviceCalibration.from_dict(older).after_op_fraction == 0.0  # schema 2: no op pays for the one before
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(SenetError, match="after_op_fraction must be a number from 0 to 1"):
            DeviceCalibration.from_dict(data | {"after_op_fraction": bad})
    for bad in (True, "0.1", None, [0.1]):  # never read as 1.0 or 10%
        with pytest.raises(SenetError, match=r"after_op_fraction must be a number, got "):
            DeviceCalibration.from_dict(data | {"after_op_fraction": bad})
    with pytest.raises(SenetError, match="after_op_fraction is out of range"):
        DeviceCalibration.from_dict(data | {"after_op_fraction": 10**400})
    with pytest.raises(SenetError, match="after_op_fraction came with schema 3; this file is schema 2"):
        DeviceCalibration.from_dict(data | {"schema": 2})  # a hand-edited older file is not half read
    for name, bad, said in (("threads", 1.9, "threads must be a whole number, got 1.9"),
                            ("threads", "1", "threads must be a whole number, got '1'"),
                            ("op_cost_us", "5.3", "op_cost_us must be a number, got '5.3'"),
                            ("rounds", True, "rounds must be a whole number, got True"),
                            ("schema", 3.0, "has schema 3.0; this senet reads schema 1, 2, 3, 4, 5, 6, 7, 8 and 9")):
        with pytest.raises(SenetError, match=re.escape(said)):
            DeviceCalibration.from_dict(data | {name: bad})
    with pytest.raises(SenetError, match="^the device file lacks 'threads'$"):
        DeviceCalibration.from_dict({key: value for key, value in data.items() if key != "threads"})


def test_calibrate_measures_the_after_op_fraction_on_conv_and_batch_norm_pairs():
    from senet_cli.profile.calibrate import after_op_fraction, calibrate

    tiny = dict(threads=1, batches=(1,), min_run_time=0.001, conv_shapes=(("3x3 8->8 @8", 8, 8, 3, 1, 1, 8),),
                linear_shapes=(), memory_bytes=(2**12,), cold_bytes=(), reduce_maps=(), batch_norm_maps=(),
                channel_maps=(), bmm_shapes=(), pointwise_ops=(), after_op_pairs=(("3x3 32->32 @28", 32, 32, 3, 28),))
    steps: list[tuple[int, int]] = []
    calibration = calibrate("cpu", rounds=1, on_step=lambda done, total: steps.append((done, total)), **tiny)
    assert 0.0 <= calibration.after_op_fraction <= 1.0 and "after-op fraction: 1 convs" in calibration.method
    assert calibration.cold_op_us >= 0 and "cold-op cost: 5 tiny ops" in calibration.method
    assert [group for group, _ in calibration.cold_op_us_by_group] == ["compute", "reduction", "batch_norm",
                                                                        "elementwise"]
    assert steps[-1][0] == steps[-1][1] and len(steps) == steps[-1][1]  # the pair is one step of the progress
    import torch
    from torch import nn

    class Sleeps(nn.Module):  # a "conv" of 2 ms, a "batch norm" that takes 1 ms longer right after it
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x):
            import time
            self.calls += 1
            time.sleep(0.002 if x.dim() == 1 else 0.0 if self.calls % 2 else 0.001)  # even: right after the conv
            return x.view(1, 1)

    norm = Sleeps()
    assert after_op_fraction([(Sleeps(), torch.ones(1), norm)], 5) == pytest.approx(0.5, abs=0.2)


def test_calibrate_measures_the_cold_op_cost_and_nets_it_out_of_the_after_op_fraction():
    """A tiny op that takes 1 ms more after the long op and another op than looped: a cold-op cost of
    1,000 us; a batch norm that takes 1.5 ms more right after a 2 ms conv then pays (1.5 - 1) / 2 =
    0.25 of the conv as the after-op fraction, beyond the cold-op cost it pays too."""
    import torch
    from torch import nn

    from senet_cli.profile.calibrate import after_op_fraction, cold_op_seconds

    class Ticks(nn.Module):
        """Sleeps `slow` s on the call after `trigger` (a module) last ran, else `fast`."""

        def __init__(self, fast: float, slow: float) -> None:
            super().__init__()
            self.fast, self.slow, self.armed = fast, slow, False

        def forward(self, x):
            import time
            time.sleep(self.slow if self.armed else self.fast)
            self.armed = False
            return x

    norm, tiny = Ticks(0.0, 0.0015), Ticks(0.0, 0.001)

    class Conv(nn.Module):
        def forward(self, x):
            import time
            time.sleep(0.002)
            norm.armed = tiny.armed = True
            return x

    quick = Ticks(0.0, 0.0)  # an op that pays nothing for running cold
    cold_s, by_group = cold_op_seconds([(Conv(), torch.ones(1))], [("compute", tiny, torch.ones(1)),
                                                                   ("elementwise", quick, torch.ones(1))],
                                       (nn.Identity(), torch.ones(1)), 7)
    assert by_group == {"compute": pytest.approx(1e-3, abs=4e-4), "elementwise": pytest.approx(0.0, abs=2e-4)}
    assert cold_s == pytest.approx(5e-4, abs=3e-4)  # the median of the two
    cold_s, _ = cold_op_seconds([(Conv(), torch.ones(1))], [("compute", tiny, torch.ones(1))],
                                (nn.Identity(), torch.ones(1)), 7)
    assert cold_s == pytest.approx(1e-3, abs=4e-4)
    assert after_op_fraction([(Conv(), torch.ones(1), norm)], 7, cold_s) == pytest.approx(0.25, abs=0.15)
    assert after_op_fraction([(Conv(), torch.ones(1), norm)], 7) == pytest.approx(0.75, abs=0.15)  # not netted


def test_an_op_pays_the_cold_op_cost_when_no_op_of_its_name_ran_within_the_caches_traffic():
    """forward_predictor charges cold_op_us to an op when the ops since one of its name last started
    (that one's own bytes included) moved more than cache_bytes, or none ran; not without a measured
    cost or a known cache size (a file from before schema 7)."""
    calibration = replace(synthetic(), cold_op_us=20.0, cache_bytes=10**5)
    times = {op: calibration.op_seconds(op, macs, moved) for op, macs, moved in (
        ("convolution", 10**8, 10**6), ("relu", 0, 100), ("add", 0, 1000))}
    predict = calibration.forward_predictor()
    cold = 20e-6
    assert predict("convolution", 10**8, 10**6) == pytest.approx(times["convolution"] + cold)  # the first
    assert predict("convolution", 10**8, 10**6) == pytest.approx(times["convolution"] + cold)  # 1 MB since
    assert predict("relu", 0, 100) == pytest.approx(times["relu"] + cold)
    assert predict("relu", 0, 100) == pytest.approx(times["relu"])  # 100 bytes since the last ReLU started
    assert predict("add", 0, 1000) == pytest.approx(times["add"] + cold)
    assert predict("relu", 0, 100) == pytest.approx(times["relu"])  # 1,100 bytes since
    assert predict("add", 0, 1000) == pytest.approx(times["add"])
    assert predict("convolution", 10**8, 10**6) == pytest.approx(times["convolution"] + cold)  # the last one's 1 MB
    assert predict("relu", 0, 100) == pytest.approx(times["relu"] + cold)  # the conv's 1 MB since
    for without in (replace(calibration, cold_op_us=0.0), replace(calibration, cache_bytes=0)):
        assert without.forward_predictor()("relu", 0, 100) == pytest.approx(times["relu"])
    grouped = replace(calibration, cold_op_us_by_group=(("compute", 30.0), ("elementwise", 4.0)))
    predict = grouped.forward_predictor()  # each op pays its group's figure; a group not measured, cold_op_us
    assert predict("convolution", 10**8, 10**6) == pytest.approx(times["convolution"] + 30e-6)
    assert predict("relu", 0, 100) == pytest.approx(times["relu"] + 4e-6)
    assert predict("amax", 0, 100) == pytest.approx(grouped.op_seconds("amax", 0, 100) + 20e-6)
    assert [cold_op_group(op, macs) for op, macs in (("addmm", 1), ("mean", 0), ("max_pool2d_with_indices", 0),
                                                     ("native_batch_norm", 0), ("sigmoid", 0), ("mul", 0))] == [
        "compute", "reduction", "reduction", "batch_norm", "elementwise", "elementwise"]
    devices = {c: calibrated_device(replace(calibration, cold_op_us=c)) for c in (0.0, 20.0)}
    counted = {c: senet_cli.count("resnet18_cifar", roofline=dev).roofline for c, dev in devices.items()}
    assert counted[20.0].predicted_ms > counted[0.0].predicted_ms >= counted[0.0].ms == counted[20.0].ms
    assert counted[20.0].cold_op_us == 20.0


def test_the_cold_op_cost_is_read_checked_and_absent_from_older_files():
    data = replace(synthetic(), cold_op_us=24.5, cache_bytes=2**20).to_dict()
    assert data["cold_op_us"] == 24.5 and "cold_op_us" in data["units"]
    assert DeviceCalibration.from_dict(data).cold_op_us == 24.5
    older = {key: value for key, value in data.items() if key != "cold_op_us"} | {"schema": 6}
    assert DeviceCalibration.from_dict(older).cold_op_us == 0.0  # schema 6: no op pays for running cold
    for bad, said in ((-1.0, "cold_op_us must be a number of microseconds from 0 to 1e6, got -1.0"),
                      (float("nan"), "cold_op_us must be a number of microseconds from 0 to 1e6"),
                      (1e7, "cold_op_us must be a number of microseconds from 0 to 1e6, got 10000000.0"),
                      ("24.5", "cold_op_us must be a number, got '24.5'"), (True, "cold_op_us must be a number")):
        with pytest.raises(SenetError, match=re.escape(said)):
            DeviceCalibration.from_dict(data | {"cold_op_us": bad})
    with pytest.raises(SenetError, match="cold_op_us came with schema 7; this file is schema 6"):
        DeviceCalibration.from_dict(data | {"schema": 6})
    grouped = data | {"cold_op_us_by_group": {"elementwise": 4.5, "compute": 30}}
    assert DeviceCalibration.from_dict(grouped).cold_op_us_by_group == (("compute", 30.0), ("elementwise", 4.5))
    for bad, said in (([30.0], "cold_op_us_by_group must be an object of compute, reduction, batch_norm, elementwise"),
                      ({"conv": 3.0}, "cold_op_us_by_group has 'conv'; its groups are compute, reduction"),
                      ({"compute": -1}, "cold_op_us_by_group's compute must be a number of microseconds from 0 to "
                                        "1e6, got -1"),
                      ({"compute": "3"}, "cold_op_us_by_group's compute must be a number"),
                      ({"compute": float("inf")}, "must be a number of microseconds from 0 to 1e6, got inf")):
        with pytest.raises(SenetError, match=re.escape(said)):
            DeviceCalibration.from_dict(data | {"cold_op_us_by_group": bad})
    with pytest.raises(SenetError, match="cold_op_us_by_group came with schema 7; this file is schema 6"):
        DeviceCalibration.from_dict(grouped | {"schema": 6, "cold_op_us": 0.0})


def test_the_speed_probe_times_one_fixed_product_per_measurement():
    import torch

    from senet_cli.profile.probe import PROBE_SIDE, SpeedProbe, probe_text

    probe = SpeedProbe(torch.device("cpu"), torch.float32)
    assert probe.median_us is None
    times = [probe.measure() for _ in range(3)]
    assert all(t > 0 for t in times) and probe.samples_us == times
    assert probe.median_us == sorted(times)[1]
    probe.reset()
    assert probe.median_us is None and probe.samples_us == []
    assert probe_text("cpu") == f"a {PROBE_SIDE['cpu']} x {PROBE_SIDE['cpu']} by {PROBE_SIDE['cpu']} x " \
                                f"{PROBE_SIDE['cpu']} matrix product into an existing tensor"


def test_calibrate_records_the_speed_probe_and_each_points_batch():
    from senet_cli.profile.calibrate import calibrate

    tiny = dict(threads=1, batches=(2,), min_run_time=0.001, conv_shapes=(("3x3 8->8 @8", 8, 8, 3, 1, 1, 8),),
                linear_shapes=(("linear 16->4", 16, 4),), memory_bytes=(2**12,), cold_bytes=(), reduce_maps=(),
                batch_norm_maps=(), channel_maps=(), bmm_shapes=(), pointwise_ops=(), after_op_pairs=())
    calibration = calibrate("cpu", rounds=3, **tiny)
    assert calibration.probe_us > 0 and "speed probe: a 512 x 512" in calibration.method
    assert {p.label: p.batch for p in calibration.points if p.kind in ("memory", "conv", "matmul")} == {
        "x * 2.0, 0.00390625 MiB": 0, "conv 3x3 8->8 @8, batch 2": 2, "linear 16->4, batch 2": 2}
    data = calibration.to_dict()
    assert data["schema"] == 9 and data["probe_us"] == calibration.probe_us and "probe_us" in data["units"]
    assert DeviceCalibration.from_dict(json.loads(json.dumps(data))) == calibration
    unprobed = calibrate("cpu", rounds=1, speed_probe=False, **tiny)
    assert unprobed.probe_us == 0.0 and "speed probe" not in unprobed.method


def test_the_probe_and_a_points_batch_are_read_checked_and_absent_from_older_files():
    points = (*synthetic().points, RatePoint("conv", "conv 3x3, batch 8", 10**9, 10**7, 0.0, 1.0, batch=8))
    data = replace(synthetic(), points=points, probe_us=1890.5).to_dict()
    read = DeviceCalibration.from_dict(data)
    assert read.probe_us == 1890.5 and read.points[-1].batch == 8
    older = {key: value for key, value in data.items() if key != "probe_us"} | {"schema": 3}
    older["points"] = [{k: v for k, v in p.items() if k != "batch"} for p in data["points"]]
    assert DeviceCalibration.from_dict(older).probe_us == 0.0  # schema 3: no speed to compare
    assert {p.batch for p in DeviceCalibration.from_dict(older).points} == {0}
    for bad, said in ((-1.0, "probe_us must be 0 (no probe) or a number of microseconds from 1 to 1e6, got -1.0"),
                      (float("inf"), "probe_us must be 0 (no probe) or a number of microseconds from 1 to 1e6"),
                      (float("nan"), "probe_us must be 0 (no probe) or a number of microseconds from 1 to 1e6"),
                      (1e-320, "from 1 to 1e6, got 1e-320"), (0.5, "from 1 to 1e6, got 0.5"),
                      ("1890", "probe_us must be a number, got '1890'"), (True, "probe_us must be a number, got True")):
        with pytest.raises(SenetError, match=re.escape(said)):
            DeviceCalibration.from_dict(data | {"probe_us": bad})
    with pytest.raises(SenetError, match="probe_us came with schema 4; this file is schema 3"):
        DeviceCalibration.from_dict(data | {"schema": 3})  # a hand-edited older file is not half read
    with pytest.raises(SenetError, match=re.escape("a point's batch (point 7 of 7, 'conv 3x3, batch 8') came with "
                                                   "schema 4; this file is schema 3")):
        DeviceCalibration.from_dict(data | {"schema": 3, "probe_us": 0.0})
    hostile = json.loads(json.dumps(data))
    hostile["points"][-1]["batch"] = 8.5
    with pytest.raises(SenetError, match=r"point 7 of 7 \('conv', 'conv 3x3, batch 8'\): batch must be a whole number"):
        DeviceCalibration.from_dict(hostile)


def test_the_calibration_table_takes_a_points_batch_from_its_field():
    from senet_cli.render.calibrate_view import calibration_table, csv_rows

    points = (RatePoint("conv", "conv 3x3 64->64 @56", 10**9, 10**6, 100.0, 0.1, 576, batch=8),
              RatePoint("memory", "x * 2.0, 1 MiB", 0, 2**21, 50.0, 40.0))
    calibration = replace(synthetic(), points=points, probe_us=1890.5)
    table = calibration_table(calibration)
    assert [row[:3] for row in table.rows] == [("conv", "conv 3x3 64->64 @56", "8"), ("memory", "x * 2.0, 1 MiB", "")]
    assert "speed probe 1,890.5 us" in (table.caption or "")
    headers, rows = csv_rows([calibration])
    assert [row[headers.index("batch")] for row in rows] == ["8", ""]
    assert rows[0][headers.index("probe_us")] == 1890.5


def test_profile_times_the_speed_probe_beside_the_models_and_says_when_the_machine_moved(tmp_path):
    """The probe runs once a round; its median / the calibration's scales the prediction; a shift past
    PROBE_TOLERANCE is one note. A calibration without a probe, or of another setting, times none."""
    from senet_cli.profile.api import PROBE_TOLERANCE, _probe_notes
    from senet_cli.render.profile_view import csv_rows, profile_table
    from senet_cli.render.tables import select_columns

    path = tmp_path / "device.json"
    path.write_text(json.dumps(replace(synthetic(), probe_us=1.0).to_dict()))  # a probe 1 us "while calibrating"
    report = senet_cli.profile("se_resnet18_cifar", input_size=32, iters=3, warmup=0, threads=1, roofline=str(path))
    (result,) = report.results
    assert result.probe_ratio is not None and result.probe_ratio > 10  # a 512^3 product takes far more than 1 us
    assert result.predicted_at_probe_speed_ms == pytest.approx(result.predicted_ms * result.probe_ratio)
    assert result.over_predicted_at_probe_speed == pytest.approx(result.over_predicted / result.probe_ratio)
    (note,) = [n for n in report.notes if n.startswith("the machine's speed moved")]
    assert f"ran at batch 1 {result.probe_ratio:.2f}x its time (slower), predicted at that speed" in note
    assert "rerun on a quiet machine, and if the probe_ratio stays away from 1, calibrate again" in note
    entry = report.to_dict()["results"][0]
    assert entry["probe_ratio"] == result.probe_ratio and report.to_dict()["roofline"]["probe_us"] == 1.0
    assert entry["measured_over_predicted_at_probe_speed"] == pytest.approx(result.over_predicted_at_probe_speed)
    headers, (row,) = csv_rows([report])
    assert row[headers.index("probe_ratio")] == result.probe_ratio and row[headers.index("probe_us")] == 1.0
    table = select_columns(profile_table(report), "batch,probe_ratio")
    assert table.rows[0][1] == f"{result.probe_ratio:,.2f}x"
    starts = [note.split(":")[0] for note in select_columns(profile_table(report), None).notes]
    assert starts.index("predicted") < starts.index("the machine's speed moved")  # what "predicted" is, first
    assert any(n.startswith("probe / calibr. (probe_ratio)") for n in table.notes)
    default = select_columns(profile_table(report), None)
    assert not any(n.startswith("probe / calibr.") for n in default.notes)
    more = select_columns(profile_table(report), "default,probe_ratio,predicted_at_probe_speed_ms")
    assert more.keys == (*default.keys[:-1], "measured_over_predicted", "probe_ratio", "predicted_at_probe_speed_ms")

    for calibration in (synthetic(), replace(synthetic(), probe_us=1.0, threads=2)):  # no probe; another setting
        path.write_text(json.dumps(calibration.to_dict()))
        quiet = senet_cli.profile("se_resnet18_cifar", input_size=32, iters=2, warmup=0, threads=1, roofline=str(path))
        assert quiet.results[0].probe_ratio is None and quiet.to_dict()["results"][0]["probe_ratio"] is None
    unprobed = select_columns(profile_table(quiet), "batch,probe_ratio")  # the last: another setting
    path.write_text(json.dumps(synthetic().to_dict()))
    older = senet_cli.profile("se_resnet18_cifar", input_size=32, iters=2, warmup=0, threads=1, roofline=str(path))
    (said,) = [n for n in select_columns(profile_table(older), "batch,probe_ratio").notes if n.startswith("probe /")]
    assert "empty here: this device file has no speed probe (schema 3 or older" in said
    assert unprobed.rows[0][1] == ""
    within = BatchResult(1, _measurement(10.0), None, None, predicted_ms=10.0, probe_ratio=1 + PROBE_TOLERANCE / 2)
    assert _probe_notes([within], replace(synthetic(), probe_us=1.0)) == ()
    beyond = replace(within, probe_ratio=1 - 2 * PROBE_TOLERANCE)
    (said,) = _probe_notes([within, beyond], replace(synthetic(), probe_us=1.0))
    assert "ran at batch 1 1.05x its time, predicted at that speed 10.5 ms, median / that 0.95x; batch 1 0.80x its " \
           "time (faster), predicted at that speed 8 ms, median / that 1.25x." in said


def test_time_modules_measures_a_probe_once_a_round():
    import torch
    from torch import nn

    from senet_cli.profile import time_modules
    from senet_cli.profile.probe import SpeedProbe

    probe = SpeedProbe(torch.device("cpu"), torch.float32)
    measured = time_modules({"a": nn.Conv2d(3, 4, 3), "b": nn.Identity()}, input_size=(8, 8), iters=4, warmup=0,
                            threads=1, probe=probe)
    assert set(measured) == {"a", "b"} and len(probe.samples_us) == 4


def test_a_new_output_pays_the_cold_write_per_byte_and_an_in_place_one_does_not():
    """A copy writing 5e5 bytes moves 1e6: cold 1e6 / 5e9 = 200 us, warm 1e6 / 10e9 = 100 us, so the
    write pays 100 us on top of the op's 1e6 bytes at 10 GB/s and its op cost; written 0 (in place) pays nothing."""
    device = cold()
    assert device.cold_write_seconds(5 * 10**5) == pytest.approx(1e-4)
    assert device.cold_write_us_per_mib == pytest.approx(device.cold_write_seconds(2**20) * 1e6)
    assert synthetic().cold_write_us_per_mib is None  # none measured; 0 would be "measured, no slower at 1 MiB"
    assert device.op_seconds("mul", 0, 10**6, written=5 * 10**5) == pytest.approx(1e-4 + 1e-4 + 5e-6)
    assert device.op_seconds("relu_", 0, 10**6, written=0) == pytest.approx(1e-4 + 5e-6)
    # between the calibrated sizes: log-interpolated bandwidths (written 5e4 moves 1e5: 12.5 and 55 GB/s)
    assert device.cold_write_seconds(5 * 10**4) == pytest.approx(1e5 / 12.5e9 - 1e5 / 55e9)
    # a compute-bound op hides its output's write: 2 ms of MACs against 1 ms of bytes + 0.2 ms of cold write
    assert device.op_seconds("convolution", 10**9, 10**7, written=10**6) == pytest.approx(2e-3 + 5e-6)
    # a cold write measured faster than the warm one (a warm point paying page faults) costs nothing
    faster = replace(device, points=tuple(replace(p, rate=200.0) if p.kind == "cold_write" else p
                                          for p in device.points))
    assert faster.cold_write_seconds(10**6) == 0.0 and faster.cold_write_us_per_mib == 0.0
    # a device file without cold_write points (schema < 5) predicts as before
    assert synthetic().cold_write_seconds(10**6) == 0.0
    assert synthetic().op_seconds("mul", 0, 10**6, written=5 * 10**5) == pytest.approx(1e-4 + 5e-6)


@pytest.mark.parametrize("model, before, after, said, unsaid", [
    ("se_resnet18", synthetic, cold, lambda: f"new output's write into memory not touched lately "
     f"({cold().cold_write_us_per_mib:.3g} us per MiB at 1 MiB)", "not touched lately"),
    ("cbam_resnet18", cold, cold_reads, lambda: f"plus each input read after more than {1e5 / 2**20:g} MiB of "
     f"traffic since it was last touched, past the caches ({cold_reads().cold_read_us_per_mib:.3g} us per MiB at "
     "1 MiB)", "past the caches"),
])
def test_each_cold_term_keeps_the_bound_below_the_prediction_raises_it_and_gives_its_figure(
        model, before, after, said, unsaid):
    """The cold-write term (synthetic to cold) and the cold-read term (cold to cold_reads): the bound
    unchanged and never above the prediction, the prediction higher, the note's figure the term's."""
    from senet_cli.count import count
    from senet_cli.render import count_view

    plain, colder = (count(model, roofline=calibrated_device(device()), input_size=64) for device in (before, after))
    assert colder.roofline.ms <= colder.roofline.predicted_ms and plain.roofline.ms == colder.roofline.ms
    assert colder.roofline.predicted_ms > plain.roofline.predicted_ms
    assert all(row.roofline_ms <= row.predicted_ms for row in colder.rows)
    notes = [" ".join(count_view.per_block_table(report).notes) for report in (plain, colder)]
    assert unsaid not in notes[0] and said() in notes[1]


def test_an_input_read_past_the_caches_pays_the_cold_read_per_byte_and_one_within_them_does_not():
    """An input of 1e6 bytes read cold: 205 us against 55 us looped (the per-op cost in both), so 150 us
    on top, when its reuse distance passes the 1e5 bytes of cache; within it, or without the points or
    the cache size, nothing."""
    from senet_cli.count.latency import FIRST_TOUCH

    device = cold_reads()
    assert device.cold_read_seconds([(10**6, FIRST_TOUCH)]) == pytest.approx(1.5e-4)
    assert device.cold_read_seconds([(10**6, 10**5 + 1)]) == pytest.approx(1.5e-4)
    assert device.cold_read_seconds([(10**4, 10**5)]) == 0.0  # touched within the caches' bytes: warm
    # two inputs: each by its own size (1e4 bytes: 1 us cold - 0.2 us looped), the warm one free
    assert device.cold_read_seconds([(10**4, FIRST_TOUCH), (10**6, 10**6), (10**6, 10**4)]) == pytest.approx(
        0.8e-6 + 1.5e-4)
    # between calibrated sizes, each median per byte log-interpolated (1e5 bytes: halfway)
    cold_per_byte, warm_per_byte = (6e-10 + 2.05e-10) / 2, (5.2e-10 + 5.5e-11) / 2
    assert device.cold_read_seconds([(10**5, FIRST_TOUCH)]) == pytest.approx(1e5 * (cold_per_byte - warm_per_byte))
    assert device.cold_read_us_per_mib == pytest.approx(device.cold_read_seconds([(2**20, FIRST_TOUCH)]) * 1e6)
    # added to the bytes time of a memory-bound op, hidden under a compute-bound one's
    assert device.op_seconds("amax", 0, 10**6, reads=((10**6, FIRST_TOUCH),)) == pytest.approx(
        1e-4 + 1.5e-4 + 5e-6)
    assert device.op_seconds("convolution", 10**9, 10**7, reads=((10**6, FIRST_TOUCH),)) == pytest.approx(
        2e-3 + 5e-6)
    # a cold sum measured faster than the looped one costs nothing
    faster = replace(device, points=tuple(replace(p, median_us=p.median_us / 100) if p.kind == "cold_read" else p
                                          for p in device.points))
    assert faster.cold_read_seconds([(10**6, FIRST_TOUCH)]) == 0.0 and faster.cold_read_us_per_mib == 0.0
    # the sums price the term only: they are not the device's bandwidth (a looped sum in the L2 runs
    # faster than any op is charged), so the roofline bound does not move with them
    assert device.bandwidth_gbs == cold().bandwidth_gbs == 100.0
    # half a pair is no measurement: null, not 0
    for kind in ("read", "cold_read"):
        half = replace(device, points=tuple(p for p in device.points if p.kind != kind))
        assert half.cold_read_us_per_mib is None and half.cold_read_seconds([(10**6, FIRST_TOUCH)]) == 0.0
    # no cache size (0: not known), no points, or a file from before (schema < 6): no input pays
    for older in (replace(device, cache_bytes=0), cold(), synthetic()):
        assert older.cold_read_seconds([(10**6, FIRST_TOUCH)]) == 0.0 and older.cold_read_us_per_mib is None
    assert cold().op_seconds("amax", 0, 10**6, reads=((10**6, FIRST_TOUCH),)) == pytest.approx(1e-4 + 5e-6)


def test_an_op_writing_nothing_new_takes_the_in_place_bandwidth_where_the_file_measured_one():
    """In place (written 0) at the in_place points' 40 GB/s, a new output at the copies' 10 GB/s; a
    file without in_place points prices both as copies; a reduction or batch norm keeps its kind."""
    device = replace(synthetic(), points=(*synthetic().points,
                                          RatePoint("in_place", "x.mul_(1.0)", 0, 10**6, 0.0, 40.0)))
    assert device.op_seconds("relu", 0, 10**6, written=0) == pytest.approx(1e6 / 40e9 + 5e-6)
    assert device.op_seconds("relu", 0, 10**6, written=5 * 10**5) == pytest.approx(1e6 / 10e9 + 5e-6)
    assert synthetic().op_seconds("relu", 0, 10**6, written=0) == pytest.approx(1e6 / 10e9 + 5e-6)
    assert device.op_seconds("max_pool2d_with_indices", 0, 10**6) == pytest.approx(2e-3 + 5e-6)
    assert device.bandwidth_gbs == 100.0  # it prices ops: a bandwidth point (the small copy's is higher)
    data = device.to_dict()
    with pytest.raises(SenetError, match=r"an? in_place point \(point 7 of 7\) came with schema 6"):
        DeviceCalibration.from_dict(data | {"schema": 5})


def test_the_points_are_indexed_once_per_calibration_and_a_copy_with_other_points_gets_its_own_index():
    """count prices every op against a per-kind index built on first use (scanning every point per
    op took 30 us an op on CBAM-ResNet-50); a copy made with other points (latency_ablation.py's
    variants, dataclasses.replace) prices with its own points, never the original's index."""
    device = replace(synthetic(), points=(*synthetic().points,
                                          RatePoint("in_place", "x.mul_(1.0)", 0, 10**6, 0.0, 40.0)))
    assert device.op_seconds("relu", 0, 10**6) == pytest.approx(1e6 / 40e9 + 5e-6)  # the index is built here
    assert device._index is device._index
    fewer = replace(device, points=tuple(p for p in device.points if p.kind != "in_place"))
    assert fewer.op_seconds("relu", 0, 10**6) == pytest.approx(1e6 / 10e9 + 5e-6)
    assert device.op_seconds("relu", 0, 10**6) == pytest.approx(1e6 / 40e9 + 5e-6)
    assert "_index" not in device.to_dict() and DeviceCalibration.from_dict(device.to_dict()) == device


def test_the_trace_gives_each_input_its_reuse_distance_in_bytes_moved_since_it_was_last_touched():
    import torch

    from senet_cli.count.dispatch import trace_costs
    from senet_cli.count.latency import FIRST_TOUCH

    class Ops(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(16, 16, device="meta"))

        def forward(self, x):  # x: 4 x 16 floats, 256 bytes
            y = x * 2.0  # reads x (first touch), moves 512
            y.relu_()  # reads y, just written: 256 moved since (its own)
            z = torch.nn.functional.linear(y, self.weight)  # the weight's first touch; a t() view touches nothing
            w = z + x  # x: last touched by the first op; 512 + 512 + 1024 + 256 moved since, + its own 256
            return w.amax(1)  # w: its own bytes alone

    trace = trace_costs(Ops(), torch.ones(4, 16, device="meta"))
    assert [op.op for op in trace.ops] == ["mul", "relu", "mm", "add", "amax"]
    assert [op.bytes for op in trace.ops] == [512, 512, 256 + 1024 + 256, 768, 256 + 16]
    assert trace.ops[0].reads == ((256, FIRST_TOUCH),)
    assert trace.ops[1].reads == ((256, 256),)
    assert trace.ops[2].reads == ((256, 256), (1024, FIRST_TOUCH))
    assert trace.ops[3].reads == ((256, 256), (256, 512 + 1536 + 256))
    assert trace.ops[4].reads == ((256, 256),)

    class Views(torch.nn.Module):
        def forward(self, x):
            first, second = x.chunk(2, 1)  # two halves of one storage
            both = first + second  # reads both: 256 bytes
            twice = x * x  # reads one view twice: 256 bytes, once
            like = torch.zeros_like(x)  # reads nothing: x is a template
            return both, twice, like

    ops = trace_costs(Views(), torch.ones(4, 16, device="meta")).ops
    assert [(op.op, op.reads) for op in ops] == [("add", ((256, FIRST_TOUCH),)), ("mul", ((256, 256),)),
                                                 ("zeros_like", ())]
    assert ops[2].bytes == 256  # its output alone


def test_fresh_bytes_are_an_ops_new_outputs_not_views_in_place_writes_or_out_arguments():
    import torch

    from senet_cli.count.dispatch import trace_costs

    class Ops(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(8, device="meta"))
            self.register_buffer("var", torch.ones(8, device="meta"))

        def forward(self, x):
            y = x * 2.0  # a new output: 4 x 8 x 8 floats
            y.relu_()  # in place: nothing new
            z = y.view(4, 64)  # a view: nothing
            torch.mul(z, 3.0, out=torch.empty(4, 64, device=x.device))  # out=: into a tensor it was given
            return torch.nn.functional.batch_norm(y, self.mean, self.var)  # its first output only

    trace = trace_costs(Ops(), torch.ones(4, 8, 8, device="meta"))
    assert [(op.op, op.written) for op in trace.ops] == [
        ("mul", 4 * 64 * 4), ("relu", 0), ("mul", 0), ("native_batch_norm", 4 * 64 * 4)]  # relu_ as traced
    pool = trace_costs(torch.nn.MaxPool2d(3, 2, 1), torch.ones(1, 4, 8, 8, device="meta")).ops
    assert [(op.op, op.written) for op in pool] == [("max_pool2d_with_indices", 4 * 4 * 4 * 4)]  # not its indices
    # the out= tensor is written, not read: counted once (it was counted as an input too)
    assert trace.ops[2].bytes == 2 * 4 * 64 * 4 and trace.ops[1].bytes == 2 * 4 * 64 * 4  # relu_ reads and writes


def test_calibrate_measures_cold_writes_round_a_pool_and_a_schema_4_file_with_one_is_refused():
    import copy

    import torch

    from senet_cli.profile.calibrate import _ColdScale, calibrate

    pool = torch.zeros(64)
    scale = _ColdScale(pool, 24)
    outputs = [scale(torch.ones(24)) for _ in range(3)]  # slots 0-23, 24-47, then round to 0-23
    assert [o.data_ptr() - pool.data_ptr() for o in outputs] == [0, 24 * 4, 0] and float(pool[30]) == 2.0
    # calibrate's fresh copy each round writes into the same pool, from the slot the last copy reached
    assert copy.deepcopy(scale)(torch.ones(24)).data_ptr() - pool.data_ptr() == 24 * 4
    tiny = dict(threads=1, batches=(1,), min_run_time=0.001, conv_shapes=(("3x3 8->8 @8", 8, 8, 3, 1, 1, 8),),
                linear_shapes=(), memory_bytes=(2**12, 2**16), cold_bytes=(2**12, 2**16), cold_pool_bytes=2**20,
                reduce_maps=(), batch_norm_maps=(), channel_maps=(), bmm_shapes=(), pointwise_ops=(), after_op_pairs=())
    calibration = calibrate("cpu", rounds=2, **tiny)
    colds = [p for p in calibration.points if p.kind == "cold_write"]
    assert [(p.bytes, p.batch) for p in colds] == [(2 * 2**12, 0), (2 * 2**16, 0)]  # x * 2.0: read, written
    assert all(p.rate > 0 for p in colds) and "round a 1 MiB pool (cold_write)" in calibration.method
    from senet_cli.render.calibrate_view import calibration_table

    table = calibration_table(calibration)  # the table says what the points are and the figure they make
    assert f"cold writes {calibration.cold_write_us_per_mib:.3g} us per MiB" in (table.caption or "")
    assert any(note.startswith("cold_write: the memory points' copy") for note in table.notes)
    assert ("cold_write", "x * 2.0 into cold memory, 0.00390625 MiB") in [row[:2] for row in table.rows]
    data = calibration.to_dict()
    assert data["schema"] == 9 and "cold_write" in data["units"]
    assert DeviceCalibration.from_dict(json.loads(json.dumps(data))) == calibration
    index = next(i for i, p in enumerate(data["points"], 1) if p["kind"] == "cold_write")
    with pytest.raises(SenetError, match=re.escape(f"a cold_write point (point {index} of {len(data['points'])}) "
                                                   "came with schema 5; this file is schema 4")):
        DeviceCalibration.from_dict(data | {"schema": 4})
    assert not any(p.kind == "cold_write" for p in calibrate("cpu", rounds=1, **(tiny | {"cold_bytes": ()})).points)


def test_calibrate_measures_reads_looped_and_round_the_pool_and_the_caches_they_are_charged_past():
    import copy

    import torch

    from senet_cli.profile.calibrate import _ColdSum, _private_cache_bytes, calibrate
    from senet_cli.render.calibrate_view import calibration_table, csv_rows

    pool = torch.arange(64, dtype=torch.float32)
    summed = _ColdSum(pool, 24)
    assert [float(summed(torch.ones(1))) for _ in range(3)] == [sum(range(24)), sum(range(24, 48)), sum(range(24))]
    assert float(copy.deepcopy(summed)(torch.ones(1))) == sum(range(24, 48))  # a fresh copy goes on round the pool
    tiny = dict(threads=1, batches=(1,), min_run_time=0.001, conv_shapes=(("3x3 8->8 @8", 8, 8, 3, 1, 1, 8),),
                linear_shapes=(), memory_bytes=(2**12,), cold_bytes=(2**12,), read_bytes=(2**12, 2**16),
                cold_pool_bytes=2**20, reduce_maps=(), batch_norm_maps=(), channel_maps=(), bmm_shapes=(),
                pointwise_ops=(), after_op_pairs=())
    calibration = calibrate("cpu", rounds=2, **tiny)
    assert [(p.kind, p.bytes) for p in calibration.points if p.kind == "in_place"] == [("in_place", 2 * 2**12)]
    assert any(note.startswith("in_place: x.mul_(1.0)") for note in calibration_table(calibration).notes)
    reads = [(p.kind, p.bytes) for p in calibration.points if p.kind in ("read", "cold_read")]
    # x.sum(): x read, a 4-byte sum written
    assert reads == [("read", 2**12 + 4), ("cold_read", 2**12 + 4), ("read", 2**16 + 4), ("cold_read", 2**16 + 4)]
    assert calibration.cache_bytes == _private_cache_bytes(torch.device("cpu"), 1)
    assert "looped (read) and over slot after slot of the same pool (cold_read)" in calibration.method
    if calibration.cache_bytes:  # Linux: the L2 of one core
        table = calibration_table(calibration)
        assert (f"cold reads {calibration.cold_read_us_per_mib:.3g} us per MiB (inputs touched "
                f"{calibration.cache_bytes / 2**20:g} MiB of traffic or more before)") in (table.caption or "")
        assert any(note.startswith("read, cold_read: a sum looped") for note in table.notes)
    data = calibration.to_dict()
    assert data["cache_bytes"] == calibration.cache_bytes and "cache_bytes: bytes" in data["units"]
    assert DeviceCalibration.from_dict(json.loads(json.dumps(data))) == calibration
    no_in_place = [p for p in data["points"] if p["kind"] != "in_place"]
    index = next(i for i, p in enumerate(no_in_place, 1) if p["kind"] == "read")
    with pytest.raises(SenetError, match=re.escape(f"a read point (point {index} of {len(no_in_place)}) came "
                                                   "with schema 6; this file is schema 5")):
        DeviceCalibration.from_dict(data | {"schema": 5, "points": no_in_place})
    no_reads = [p for p in no_in_place if p["kind"] not in ("read", "cold_read")]
    with pytest.raises(SenetError, match="cache_bytes came with schema 6; this file is schema 5"):
        DeviceCalibration.from_dict(data | {"schema": 5, "points": no_reads, "cache_bytes": 2**21})
    for bad in (-1, 1.5, True, "2097152"):
        with pytest.raises(SenetError, match="cache_bytes must be a whole number"):
            DeviceCalibration.from_dict(data | {"cache_bytes": bad})
    assert DeviceCalibration.from_dict({k: v for k, v in data.items() if k != "cache_bytes"}).cache_bytes == 0
    assert not any(p.kind == "read" for p in calibrate("cpu", rounds=1, **(tiny | {"read_bytes": ()})).points)
    unknown = replace(calibration, cache_bytes=0)  # no sysfs: the points are kept, and said to be unused
    assert unknown.cold_read_us_per_mib is None and "cold reads" not in (calibration_table(unknown).caption or "")
    assert any(note.startswith("read, cold_read: unused") and "cache_bytes 0" in note
               for note in calibration_table(unknown).notes)
    headers, rows = csv_rows([calibration])
    assert headers[-8:] == ["cache_bytes", "cold_write_us_per_mib", "cold_read_us_per_mib", "width", "op", "cold_op_us",
                           "fresh_page_us_per_mib", "positions"]
    assert {row[-8] for row in rows} == {calibration.cache_bytes}  # new columns go last
    widths = {row[headers.index("kind")]: row[-5] for row in rows}
    assert {row[-3] for row in rows} == {calibration.cold_op_us} and widths["read"] == 0 and widths["conv"] == 8


def test_a_conv_takes_the_rate_of_the_calibrated_conv_of_its_width():
    """A conv's width (output channels per group) tells MobileNetV3's 1x1 projection of 72 -> 24
    channels on a 28x28 map (0.05 TFLOPS measured in the network) from CBAM's 7x7 conv of 2 -> 1
    channels, as deep and of about as many MACs (0.007): without it the projection took CBAM's rate
    and was predicted at 7-10x its time. A point or an op that does not know its width (a file from
    before schema 7) is matched as before."""
    points = (RatePoint("conv", "7x7 2->1 @56, batch 8", 2_458_624, 301_448, 0.0, 0.007, depth=98, stride=1,
                        width=1),
              RatePoint("conv", "1x1 24->96 @28", 1_806_336, 385_536, 0.0, 0.076, depth=24, stride=1, width=96),
              RatePoint("memory", "copy", 0, 10**6, 0.0, 10.0))
    device = DeviceCalibration("cpu", "synthetic", "float32", 1, 0.0, points)
    projection = dict(macs=1_354_752, moved_bytes=307_008, depth=72, stride=1)
    assert device.compute_tflops("conv", **projection) == 0.007  # width unknown: CBAM's point is nearer
    assert device.compute_tflops("conv", **projection, width=24) == 0.076
    assert device.compute_tflops("conv", **projection | {"depth": 98}, width=1) == 0.007
    assert device.op_seconds("convolution", 1_354_752, 307_008, 72, 1, width=24) == pytest.approx(
        2 * 1_354_752 / 0.076e12)
    without = replace(device, points=tuple(replace(p, width=0) for p in points))
    assert without.compute_tflops("conv", **projection, width=24) == 0.007  # an older file: as before
    # count carries each conv's width to the model: a model of narrow convs takes the narrow point's rate
    narrow = replace(synthetic(), points=(RatePoint("conv", "one output map", 10**7, 10**6, 0.0, 0.01, width=1),
                                          RatePoint("conv", "wide", 10**7, 10**6, 0.0, 1.0, width=512),
                                          *synthetic().points[3:]))
    wide = replace(narrow, points=tuple(replace(p, width=512 if p.width == 1 else 1) for p in narrow.points))
    at_wide_rate, at_narrow_rate = (senet_cli.count("resnet18_cifar", roofline=calibrated_device(d)).roofline
                                    .predicted_ms for d in (narrow, wide))  # its convs are 16-512 wide: nearer 512
    assert at_wide_rate < at_narrow_rate / 10


def test_the_trace_records_each_convs_output_channels_per_group():
    import torch

    from senet_cli.count.dispatch import trace_costs

    convs = {"dense": (torch.nn.Conv2d(8, 32, 3), 32), "grouped": (torch.nn.Conv2d(8, 32, 3, groups=4), 8),
             "depthwise": (torch.nn.Conv2d(8, 8, 5, groups=8), 1), "one map": (torch.nn.Conv2d(2, 1, 7), 1),
             "multiplier 2": (torch.nn.Conv2d(8, 16, 3, groups=8), 2),
             "transposed": (torch.nn.ConvTranspose2d(8, 12, 2, groups=2), 6)}
    for name, (conv, width) in convs.items():
        (op,) = trace_costs(conv.to("meta"), torch.empty(2, conv.in_channels, 9, 9, device="meta")).ops
        assert (name, op.width) == (name, width)
    for conv, shape in ((torch.nn.Conv1d(8, 24, 3, groups=2), (2, 8, 9)), (torch.nn.Conv3d(8, 24, 3, groups=4),
                                                                            (2, 8, 5, 5, 5))):
        (op,) = trace_costs(conv.to("meta"), torch.empty(*shape, device="meta")).ops
        assert op.width == 24 // conv.groups
    (op,) = trace_costs(torch.nn.Linear(8, 4).to("meta"), torch.empty(2, 8, device="meta")).ops
    assert op.width == 0  # a conv's only


def test_between_dense_convs_the_map_counts_and_not_between_depthwise_ones():
    """On one CPU thread PyTorch runs an unstrided 1x1 conv at batch under 16 as a matrix product per
    image, whose third dimension is the map: EfficientNet-B0's 1x1 192 -> 1152 conv on a 7x7 map at
    batch 8 ran at the rate of a 1x1 conv on a 7x7 map at batch 1, not at that of one on a 14x14 map
    with the same MACs, depth and width. The map (output positions per image) counts between dense
    convs only: a depthwise op keeps the point its MACs, depth, stride and width pick. A point or an
    op that does not know its map (a file from before schema 9) is matched as before."""
    points = (RatePoint("conv", "1x1 256->1024 @14, batch 1", 51_380_224, 1_855_488, 0.0, 0.093, depth=256,
                        stride=1, width=1024, positions=196),
              RatePoint("conv", "1x1 512->2048 @7, batch 1", 51_380_224, 5_406_720, 0.0, 0.071, depth=512,
                        stride=1, width=2048, positions=49),
              RatePoint("conv", "dw 3x3 672 @14, batch 8", 9_483_264, 8_452_608, 0.0, 0.02, depth=9, stride=1,
                        width=1, positions=196),
              RatePoint("conv", "dw 3x3 96 @56, batch 8", 21_676_032, 19_271_680, 0.0, 0.012, depth=9, stride=1,
                        width=1, positions=3136),
              RatePoint("memory", "copy", 0, 10**6, 0.0, 10.0))
    device = DeviceCalibration("cpu", "synthetic", "float32", 1, 0.0, points)
    expanding = dict(macs=86_704_128, moved_bytes=2_973_696, depth=192, stride=1, width=1152)  # 8 x 192 @7 -> 1152
    assert device.compute_tflops("conv", **expanding) == 0.093  # map unknown: the 14x14 point is nearer
    assert device.compute_tflops("conv", **expanding, positions=49) == 0.071
    assert device.op_seconds("convolution", 86_704_128, 2_973_696, 192, 1, width=1152, positions=49) == \
        pytest.approx(2 * 86_704_128 / 0.071e12)
    older = replace(device, points=tuple(replace(p, positions=0) for p in points))
    assert older.compute_tflops("conv", **expanding, positions=49) == 0.093  # an older file: as before
    # a depthwise 3x3 on a 56x56 map at batch 2 (5.4 M MACs): nearer the 14x14 point in MACs; its map
    # would pull it to the 56x56 point, but between depthwise convs the map does not count
    depthwise = dict(macs=5_419_008, moved_bytes=4_817_920, depth=9, stride=1, width=1)
    assert device.compute_tflops("conv", **depthwise, positions=3136) == \
        device.compute_tflops("conv", **depthwise) == 0.02
    # nor between a dense op and a point of width 1: a grouped conv of 2 outputs a group on a 7x7 map
    # keeps the one-map point nearer in width and MACs, though a dense point has its map
    grouped = (RatePoint("conv", "one map @56", 10**7, 10**6, 0.0, 0.007, depth=18, stride=1, width=1, positions=3136),
               RatePoint("conv", "2 a group @7", 10**7 * 3, 10**6, 0.0, 0.05, depth=18, stride=1, width=2,
                         positions=49), RatePoint("memory", "copy", 0, 10**6, 0.0, 10.0))
    assert replace(device, points=grouped).compute_tflops("conv", 10**7, 10**6, depth=18, stride=1, width=2,
                                                          positions=49) == 0.007
    # strided dense convs too (all of them go to oneDNN, one product per image on one thread as well)
    strided = tuple(replace(p, stride=2) if p.kind == "conv" else p for p in points)
    assert replace(device, points=strided).compute_tflops("conv", **expanding | {"stride": 2}, positions=49) == 0.071
    # only where calibrate ran on one CPU thread: with more, and on a GPU, one product covers the batch
    for other in (replace(device, threads=2), replace(device, device="cuda")):
        assert other.compute_tflops("conv", **expanding, positions=49) == 0.093


def test_count_predicts_a_1x1_conv_on_a_small_map_at_the_rate_of_its_map(tmp_path):
    """End to end: count's trace carries each conv's map through blocks.py and forward_predictor to
    the prediction (a 1x1 conv of 192 -> 1152 channels on a 7x7 map at batch 8: 86.7 M MACs)."""
    net = tmp_path / "smallmap.py"
    net.write_text("from torch import nn\n\n\ndef build():\n"
                   "    return nn.Sequential(nn.Conv2d(3, 192, 1), nn.Conv2d(192, 1152, 1))\n")
    macs = 8 * 49 * 192 * 1152
    near_in_shape = RatePoint("conv", "1x1 @14, fast", macs, 10**6, 0.0, 1.0, depth=192, stride=1, width=1152,
                              positions=196)
    near_in_map = RatePoint("conv", "1x1 @7, slow", 2 * macs, 10**6, 0.0, 0.01, depth=384, stride=1, width=1152,
                            positions=49)
    device = replace(synthetic(), points=(near_in_shape, near_in_map, *synthetic().points[3:]))
    with_map, without = (senet_cli.count(f"{net}:build", batch=8, input_size=7, roofline=calibrated_device(d))
                         .roofline.predicted_ms
                         for d in (device, replace(device, points=tuple(replace(p, positions=0)
                                                                         for p in device.points))))
    assert with_map > 2 * macs / 0.01e12 * 1e3 > 10 * without  # 17.3 ms at the slow point's rate, not 0.17


def test_the_trace_and_calibrate_record_each_convs_map():
    import torch

    from senet_cli.count.dispatch import trace_costs
    from senet_cli.profile.calibrate import calibrate

    for conv, shape, positions in ((torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), (2, 8, 9, 9), 25),
                                   (torch.nn.Conv2d(8, 8, 1, groups=8), (3, 8, 7, 5), 35),
                                   (torch.nn.Conv1d(8, 4, 3), (2, 8, 10), 8),
                                   (torch.nn.Conv3d(4, 4, 3), (1, 4, 5, 5, 5), 27)):
        (op,) = trace_costs(conv.to("meta"), torch.empty(*shape, device="meta")).ops
        assert op.positions == positions
    (op,) = trace_costs(torch.nn.Linear(8, 4).to("meta"), torch.empty(2, 8, device="meta")).ops
    assert op.positions == 0  # a conv's only
    calibration = calibrate("cpu", rounds=1, min_run_time=1e-4, memory_bytes=(2**16,), cold_bytes=(),
                            conv_shapes=(("1x1/2 8->16 @10", 8, 16, 1, 2, 1, 10),), linear_shapes=(),
                            reduce_maps=(), batch_norm_maps=(), channel_maps=(), bmm_shapes=(), pointwise_ops=(),
                            after_op_pairs=(), speed_probe=False, batches=(2,))
    (conv,) = (p for p in calibration.points if p.kind == "conv")
    assert conv.positions == 25 and all(p.positions == 0 for p in calibration.points if p.kind != "conv")


def test_a_convs_map_is_read_checked_and_absent_from_older_files():
    points = (*synthetic().points, RatePoint("conv", "1x1 192->1152 @7", 86_704_128, 2_973_696, 2_435.0, 0.071,
                                             depth=192, width=1152, positions=49))
    data = replace(synthetic(), points=points).to_dict()
    assert data["schema"] == 9 and "positions" in data["units"] and data["points"][-1]["positions"] == 49
    assert DeviceCalibration.from_dict(json.loads(json.dumps(data))) == replace(synthetic(), points=points)
    with pytest.raises(SenetError, match=re.escape("a conv's positions (point 7 of 7) came with schema 9; this file "
                                                   "is schema 8")):
        DeviceCalibration.from_dict(data | {"schema": 8})
    copy = {**data["points"][3], "positions": 4}
    with pytest.raises(SenetError, match=re.escape("point 4 of 7 ('memory', 'small copy'): only a conv point has "
                                                   "positions")):
        DeviceCalibration.from_dict(data | {"points": [*data["points"][:3], copy, *data["points"][4:]]})
    for bad in (-1, 2.0, True, "49"):
        with pytest.raises(SenetError, match="positions must be a whole number from 0 to 1e18"):
            DeviceCalibration.from_dict(data | {"points": [*data["points"][:-1], {**data["points"][-1],
                                                                                  "positions": bad}]})
    older = {k: v for k, v in data["points"][-1].items() if k != "positions"}
    assert DeviceCalibration.from_dict(data | {"points": [*data["points"][:-1], older]}).points[-1].positions == 0


def test_an_activation_takes_its_own_calibrated_rate_and_one_without_points_a_copys():
    """SiLU, sigmoid, GELU run at a fraction of a copy's bandwidth on a CPU (their arithmetic is
    their time): an op with pointwise points of its own takes their rate, interpolated in log bytes,
    in place or not; its cold writes and reads run under its arithmetic (the larger, not the sum);
    an op without points of its own, or in a file from before schema 7, takes the copies'."""
    device = replace(cold(op_cost_us=0.0), points=(
        *cold().points, RatePoint("pointwise", "silu, 0.01 MB", 0, 10**4, 0.0, 20.0, op="silu"),
        RatePoint("pointwise", "silu, 1 MB", 0, 10**6, 0.0, 2.0, op="silu"),
        RatePoint("pointwise", "sigmoid, 1 MB", 0, 10**6, 0.0, 4.0, op="sigmoid")))
    assert device.op_seconds("silu", 0, 10**5) == pytest.approx(10**5 / 11e9)  # halfway in log bytes: 11 GB/s
    assert device.op_seconds("silu", 0, 10**6, written=0) == device.op_seconds("silu", 0, 10**6, written=5 * 10**5)
    assert device.op_seconds("silu", 0, 10**6, written=5 * 10**5) == pytest.approx(10**6 / 2e9)  # not + cold write
    assert device.op_seconds("sigmoid", 0, 10**4) == pytest.approx(10**4 / 4e9)  # one size: its rate everywhere
    # GELU has no points here: a copy's bandwidth (10 GB/s at 1 MB), as an op of the memory kind
    assert device.op_seconds("gelu", 0, 10**6) == pytest.approx(device.op_seconds("relu", 0, 10**6))
    cold_heavy = replace(device, points=tuple(replace(p, rate=0.001) if p.kind == "cold_write" else p
                                              for p in device.points))
    assert cold_heavy.op_seconds("silu", 0, 10**6, written=5 * 10**5) == pytest.approx(
        10**6 / 10e9 + cold_heavy.cold_write_seconds(5 * 10**5))  # memory's time, when larger, counts
    older = replace(device, points=tuple(p for p in device.points if p.kind != "pointwise"))
    assert older.op_seconds("silu", 0, 10**6) == pytest.approx(10**6 / 10e9)


def test_pointwise_points_and_widths_are_read_checked_and_absent_from_older_files():
    points = (*synthetic().points, RatePoint("pointwise", "silu, 4 MiB", 0, 2**23, 480.0, 17.6, op="silu"),
              RatePoint("conv", "1x1 72->24 @28", 1_354_752, 307_008, 41.6, 0.072, depth=72, width=24))
    data = replace(synthetic(), points=points).to_dict()
    assert data["schema"] == 9 and "width" in data["units"] and "pointwise" in data["units"]
    read = DeviceCalibration.from_dict(json.loads(json.dumps(data)))
    assert read.points[-2].op == "silu" and read.points[-1].width == 24 and read == replace(synthetic(), points=points)
    for index, field, bad, said in (
            (-2, "op", "", "point 7 of 8 ('pointwise', 'silu, 4 MiB'): a pointwise point must name its op (op)"),
            (-2, "op", 3, "point 7 of 8 ('pointwise', 'silu, 4 MiB'): op must be an op's name"),
            (-2, "op", "x" * 101, "op must be an op's name (a string of at most 100 characters)"),
            (0, "op", "silu", "point 1 of 8 ('conv', 'big'): only a pointwise point names an op"),
            (2, "width", 4, "point 3 of 8 ('matmul', 'fc'): only a conv point has a width"),
            (-1, "width", -1, "width must be a whole number from 0 to 1e18, got -1"),
            (-1, "width", 2.5, "width must be a whole number from 0 to 1e18, got 2.5")):
        hostile = json.loads(json.dumps(data))
        hostile["points"][index][field] = bad
        with pytest.raises(SenetError, match=re.escape(said)):
            DeviceCalibration.from_dict(hostile)
    with pytest.raises(SenetError, match=re.escape("a pointwise point (point 7 of 8) came with schema 7; this file is "
                                                   "schema 6")):
        DeviceCalibration.from_dict(data | {"schema": 6})  # a hand-edited older file is not half read
    without_pointwise = data | {"schema": 6, "points": data["points"][:-2] + data["points"][-1:]}
    with pytest.raises(SenetError, match=re.escape("a conv's width (point 7 of 7) came with schema 7")):
        DeviceCalibration.from_dict(without_pointwise)
    older = data | {"schema": 6, "points": [{k: v for k, v in p.items() if k not in ("width", "op")}
                                            for p in data["points"][:6]]}
    assert DeviceCalibration.from_dict(older) == synthetic()


def test_calibrate_times_only_the_activations_it_knows():
    from senet_cli.errors import ArgumentError
    from senet_cli.profile.calibrate import calibrate

    with pytest.raises(ArgumentError, match="relu is not an activation calibrate times; it times sigmoid, silu"):
        calibrate("cpu", threads=1, batches=(1,), conv_shapes=(), linear_shapes=(), memory_bytes=(2**12,),
                  cold_bytes=(), pointwise_ops=("relu",), after_op_pairs=(), speed_probe=False)


def test_calibrate_keeps_the_rounds_median_cold_op_cost_and_nets_the_batch_norms_out_of_the_fraction(monkeypatch):
    """Each round's cold-op sample (overall, per group) is kept as the median over the rounds; the
    after-op fraction is netted by the batch norm group's figure (what the batch norm after a conv
    pays for running cold), not by the overall one."""
    from senet_cli.profile import calibrate as module

    samples = iter([(0.0, {"compute": 0.0, "batch_norm": 0.0}),  # the warm-up call, not kept
                    (10e-6, {"compute": 30e-6, "batch_norm": 16e-6}), (12e-6, {"compute": 40e-6, "batch_norm": 14e-6}),
                    (50e-6, {"compute": 20e-6, "batch_norm": 18e-6})])
    netted: list[float] = []
    monkeypatch.setattr(module, "cold_op_seconds", lambda *args: next(samples))
    monkeypatch.setattr(module, "after_op_fraction",
                        lambda pairs, repeats, cold_op_s=0.0, on_pair=None: netted.append(cold_op_s) or 0.01)
    tiny = dict(threads=1, batches=(1,), min_run_time=0.001, conv_shapes=(), linear_shapes=(),
                memory_bytes=(2**12,), cold_bytes=(), reduce_maps=(), batch_norm_maps=(), channel_maps=(),
                bmm_shapes=(), pointwise_ops=(), speed_probe=False, after_op_pairs=(("3x3 8->8 @8", 8, 8, 3, 8),))
    calibration = module.calibrate("cpu", rounds=3, **tiny)
    assert calibration.cold_op_us == pytest.approx(12.0)
    assert dict(calibration.cold_op_us_by_group) == {"compute": pytest.approx(30.0), "batch_norm": pytest.approx(16.0)}
    assert netted == [pytest.approx(16e-6)] and calibration.after_op_fraction == 0.01


def test_no_op_is_charged_for_page_faults_whatever_the_fresh_page_cost():
    """The prediction is for a process whose allocator keeps its memory: a 64 MiB output costs the
    same with a fresh-page cost in the file as without (profile counts and prices the faults)."""
    device = replace(synthetic(), fresh_page_us_per_mib=400.0)
    plain = synthetic()
    for op, macs, moved, written in (("mul", 0, 3 * 2**26, 2**26), ("convolution", 10**12, 2**27, 2**26)):
        assert device.op_seconds(op, macs, moved, written=written) == plain.op_seconds(op, macs, moved,
                                                                                        written=written)
    assert device.forward_predictor()("mul", 0, 3 * 2**26, written=2**26) == plain.forward_predictor()(
        "mul", 0, 3 * 2**26, written=2**26)


def test_the_fresh_page_cost_is_read_checked_and_absent_from_older_files():
    data = replace(synthetic(), fresh_page_us_per_mib=417.0).to_dict()
    assert data["schema"] == 9 and data["fresh_page_us_per_mib"] == 417.0
    assert DeviceCalibration.from_dict(data).fresh_page_us_per_mib == 417.0
    older = {key: value for key, value in data.items() if key != "fresh_page_us_per_mib"} | {"schema": 7}
    assert DeviceCalibration.from_dict(older).fresh_page_us_per_mib == 0.0  # schema 7: not measured
    for name, bad, said in (("fresh_page_us_per_mib", -1.0, "fresh_page_us_per_mib must be a number of "
                             "microseconds from 0 to 1e6, got -1.0"),
                            ("fresh_page_us_per_mib", float("nan"), "fresh_page_us_per_mib must be a number of "
                             "microseconds"),
                            ("fresh_page_us_per_mib", "417", "fresh_page_us_per_mib must be a number, got '417'"),
                            ("fresh_page_us_per_mib", True, "fresh_page_us_per_mib must be a number, got True")):
        with pytest.raises(SenetError, match=re.escape(said)):
            DeviceCalibration.from_dict(data | {name: bad})
    with pytest.raises(SenetError, match="fresh_page_us_per_mib came with schema 8; this file is schema 7"):
        DeviceCalibration.from_dict(data | {"schema": 7})


def _fresh_mapping_writer(every_call: bool, nbytes: int = 2**20):
    """A module writing into a new anonymous mapping of `nbytes` on every call, or on each copy's
    first call only (as a fresh copy's buffers fault in once); each call also sleeps 0.5 ms, so that a
    measurement makes a few calls and a warm-up's faults would show in a per-call count."""
    import mmap
    import time

    import torch

    class Writer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if every_call or self.calls == 1:
                mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
                memory = torch.frombuffer(mapping, dtype=torch.uint8)
                memory.fill_(1)
                del memory
                mapping.close()
            time.sleep(0.0005)
            return x

        def __deepcopy__(self, memo: dict) -> Writer:
            return Writer()  # a fresh copy: its first call faults

    return Writer()


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MAP_PRIVATE"), reason="counts page faults on Unix only")
def test_time_interleaved_counts_the_page_faults_of_the_timed_calls_only():
    """A module that faults 1 MiB in on every call shows its pages per call; one whose copies fault
    only on their first call (Timer's warm-up) shows none: warm-up calls are not counted."""
    import torch

    from senet_cli.profile.calibrate import time_interleaved
    from senet_cli.profile.pages import PAGE_BYTES

    faults: list[list[float]] = []
    time_interleaved([(_fresh_mapping_writer(True), torch.ones(1)), (_fresh_mapping_writer(False), torch.ones(1))],
                     seconds=0.002, rounds=3, faults=faults)
    pages = 2**20 // PAGE_BYTES
    assert all(pages <= per_call < pages * 1.5 for per_call in faults[0])
    assert all(per_call < pages * 0.05 for per_call in faults[1])  # counted with the warm-up: a quarter or more


def test_a_points_rounds_without_faults_are_its_measure_and_the_others_pay_their_faults():
    from senet_cli.profile.calibrate import fault_free

    fault_s = 1e-6  # a second per million faults: 100 faults cost 100 us
    # three rounds took none, two took 1,000 faults a call (1 ms): the clean three are kept
    assert fault_free([200.0, 1200.0, 210.0, 1190.0, 205.0], [0, 1000, 0, 1000, 1], fault_s) == [200.0, 210.0, 205.0]
    # fewer than three clean rounds: every round less its faults' cost, never below a tenth of it
    assert fault_free([200.0, 1200.0, 1190.0], [0, 1000, 1000], fault_s) == pytest.approx([200.0, 200.0, 190.0])
    assert fault_free([100.0, 100.0, 100.0], [500, 500, 500], fault_s) == [10.0, 10.0, 10.0]
    # a round of two with one clean: both rounds are few, the clean one is enough
    assert fault_free([100.0, 900.0], [0, 800], fault_s) == pytest.approx([100.0, 100.0])
    assert fault_free([5.0, 6.0], [], fault_s) == [5.0, 6.0] and fault_free([5.0], [3.0], 0.0) == [5.0]


def test_calibrate_keeps_each_points_fault_free_rounds_and_records_the_fresh_page_cost(monkeypatch):
    """calibrate prices faults at the median over its rounds of fresh_page_cost (per fault) and hands
    each point's rounds and faults to fault_free; the device file keeps the cost per MiB."""
    from senet_cli.profile import calibrate as module
    from senet_cli.profile.pages import FreshPages

    costs = iter([FreshPages(2e-6, 4096.0), FreshPages(1e-6, 4096.0), FreshPages(3e-6, 4096.0)])
    monkeypatch.setattr(module, "fresh_page_cost", lambda repeats=1: next(costs))
    seen: list[float] = []

    def halved(times_us, faults, fault_s):
        seen.append(fault_s)
        assert len(faults) == len(times_us) == 3
        return [t / 2 for t in times_us]

    monkeypatch.setattr(module, "fault_free", halved)
    tiny = dict(threads=1, batches=(1,), min_run_time=0.001, conv_shapes=(), linear_shapes=(),
                memory_bytes=(2**12,), cold_bytes=(), reduce_maps=(), batch_norm_maps=(), channel_maps=(),
                bmm_shapes=(), pointwise_ops=(), speed_probe=False, after_op_pairs=())
    calibration = module.calibrate("cpu", rounds=3, **tiny)
    assert seen and set(seen) == {2e-6}  # the median over the rounds, per fault
    assert calibration.fresh_page_us_per_mib == pytest.approx(2e-6 / 4096 * 2**20 * 1e6)  # 512 us per MiB
    monkeypatch.setattr(module, "fault_free", lambda times_us, faults, fault_s: list(times_us))
    costs = iter([FreshPages(2e-6, 4096.0)] * 3)
    whole = module.calibrate("cpu", rounds=3, **tiny)
    halved_point, whole_point = calibration.points[0], whole.points[0]  # the copy of 4 KiB
    assert halved_point.median_us < whole_point.median_us  # the halved rounds are what the point keeps


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MAP_PRIVATE"), reason="counts page faults on Unix only")
def test_a_fresh_page_costs_more_to_write_than_a_mapped_one_and_faults_are_counted():
    from senet_cli.profile.pages import PAGE_BYTES, fresh_page_cost, minor_faults

    before = minor_faults()
    assert before is not None and PAGE_BYTES >= 4096
    fresh = fresh_page_cost(repeats=3, nbytes=2**22)
    assert fresh.bytes_per_fault >= PAGE_BYTES  # a fault maps a page (or a huge page)
    assert 20 < fresh.us_per_mib < 1e5  # zeroing and mapping a MiB takes more than writing it at 50 GB/s
    assert (minor_faults() or 0) - before >= 3 * 2**22 // fresh.bytes_per_fault  # each mapping faulted in
    assert fresh_page_cost(repeats=0).us_per_mib == 0.0


def test_profile_counts_each_runs_page_faults_and_says_what_they_cost(tmp_path, monkeypatch):
    """On a CPU the harness counts minor faults around each timed run (JSON page_faults_mib, the
    median in MiB); the table's notes give them per batch, at the device file's cost when it has one."""
    from senet_cli.profile.pages import GLIBC_KEEP
    from senet_cli.render.profile_view import _faults_note

    path = tmp_path / "device.json"
    path.write_text(json.dumps(replace(synthetic(), fresh_page_us_per_mib=400.0).to_dict()))
    report = senet_cli.profile("se_resnet18_cifar", input_size=32, batches=(2,), iters=2, warmup=0, threads=1,
                               roofline=str(path))
    entry = report.to_dict()["results"][0]
    assert entry["page_faults_mib"] is not None and entry["page_faults_mib"] >= 0
    assert entry["baseline"]["page_faults_mib"] is not None
    assert report.to_dict()["roofline"]["fresh_page_us_per_mib"] == 400.0
    from senet_cli.profile import harness

    counter = iter(range(0, 10**9, 512))  # every read 512 faults on: 2 MiB of 4 KiB pages per run
    monkeypatch.setattr(harness, "minor_faults", lambda: next(counter))
    monkeypatch.setattr(harness, "PAGE_BYTES", 4096)
    counted = senet_cli.profile("se_resnet18_cifar", input_size=32, batches=(2,), iters=3, warmup=0, threads=1)
    (run,) = counted.results
    assert run.model.page_faults_mib == run.baseline.page_faults_mib == 2.0
    (result,) = report.results
    faulting = replace(report, results=(replace(result, model=replace(result.model, page_faults_mib=12.5),
                                                baseline=replace(result.baseline, page_faults_mib=0.0)),))
    note = _faults_note(faulting)
    assert f"batch 2: {result.model.model} 12.5 MiB (at least 5.00 ms)" in note  # 12.5 MiB x 400 us
    assert f" {result.baseline.model} " not in note and "which the prediction leaves out" in note and GLIBC_KEEP in note
    quiet = replace(faulting, results=(replace(result, model=replace(result.model, page_faults_mib=0.0),
                                               baseline=replace(result.baseline, page_faults_mib=0.0)),))
    assert _faults_note(quiet) == ""
