"""`prune`: folding a constant gate is exact (logits, parameters, the BN's weights against sigmoid of
the biases), a non-constant gate's logit change is what an independent fold says, the written file
round-trips through count and inspect, and bad input is one line each."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import senet_cli
from senet_cli import build_model, count, inspect, load_checkpoint, prune, save_checkpoint
from senet_cli.checkpoint.recognise import materialize, resolve
from senet_cli.errors import SenetError
from senet_cli.inspect.images import open_images
from senet_cli.inspect.results import Preprocess
from senet_cli.prune.results import BlockPrune, Costs, Evaluation, PruneReport

MODEL = "se_resnet18_cifar"


def _trained_like(seed: int, **options) -> nn.Module:
    """A random model whose BN statistics and affine terms are not the identity (as after training),
    so that folding into them is tested on real numbers."""
    torch.manual_seed(seed)
    model = build_model(MODEL, **options)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    return model.eval()


def _images(limit: int = 16) -> torch.Tensor:
    """The synthetic images prune and inspect read (the image pipeline is not what is tested here)."""
    source = open_images("synthetic", Preprocess((32, 32)), limit=limit, batch=limit)
    return torch.cat([images for images, _ in source])


def _loaded(path) -> nn.Module:
    return materialize(resolve(load_checkpoint(path)))


def test_constant_gate_folds_exactly(constant_model, tmp_path):
    source = save_checkpoint(constant_model, tmp_path / "constant.pth")
    report = prune(source, tmp_path / "folded.pth", blocks=["layer1.0"], data="synthetic", limit=16)
    folded = _loaded(tmp_path / "folded.pth")
    x = _images()
    with torch.inference_mode():
        want, got = constant_model.eval()(x), folded(x)
    assert torch.allclose(got, want, rtol=0, atol=1e-5 * float(want.abs().max()))
    se_params = sum(p.numel() for p in constant_model.layer1[0].se.parameters())
    original = sum(p.numel() for p in constant_model.parameters())
    assert sum(p.numel() for p in folded.parameters()) == original - se_params
    assert report.saved.params == se_params == report.blocks[0].params
    assert isinstance(folded.layer1[0].se, nn.Identity)
    gate = torch.sigmoid(torch.linspace(-4, 4, 64))  # the constant gate: sigmoid of fc2's biases
    bn = constant_model.layer1[0].bn2
    assert torch.allclose(folded.layer1[0].bn2.weight, bn.weight * gate, rtol=1e-6)
    assert torch.allclose(folded.layer1[0].bn2.bias, bn.bias * gate, rtol=1e-6, atol=1e-7)
    assert report.blocks[0].folded_into == ("layer1.0.bn2",) and report.blocks[0].image_spread == 0.0
    assert report.after.agreement == 1.0 and report.after.max_logit_change <= 1e-5 * float(want.abs().max())


def test_non_constant_fold_changes_logits_by_what_the_report_states(tmp_path):
    model = _trained_like(3)
    source = save_checkpoint(model, tmp_path / "model.pth")
    report = prune(source, tmp_path / "folded.safetensors", stages=[4], data="synthetic", limit=16)
    x = _images()
    means: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for block in (model.layer4[0], model.layer4[1]):  # the gate's mean per channel, by hand
            captured = []
            handle = block.se.gate.register_forward_hook(lambda _m, _i, out, c=captured: c.append(out))
            model(x)
            handle.remove()
            means[block] = captured[0].mean(0).flatten()
        reference = model(x)
        by_hand = build_model(MODEL).eval()
        by_hand.load_state_dict(model.state_dict())
        for index in (0, 1):
            bn, scale = by_hand.layer4[index].bn2, means[model.layer4[index]]
            bn.weight.mul_(scale)
            bn.bias.mul_(scale)
            by_hand.layer4[index].se = nn.Identity()
        by_hand_logits = by_hand(x)
        expected = (by_hand_logits - reference).abs()
    assert report.after.max_logit_change > 1e-4  # the gate did vary: folding is not exact here
    assert report.after.max_logit_change == pytest.approx(float(expected.max()), rel=1e-3)
    assert report.after.mean_logit_change == pytest.approx(float(expected.mean()), rel=1e-3)
    agreement = float((by_hand_logits.argmax(1) == reference.argmax(1)).float().mean())
    assert report.after.agreement == pytest.approx(agreement)
    assert [b.folded_into for b in report.blocks] == [("layer4.0.bn2",), ("layer4.1.bn2",)]


def test_pruned_file_round_trips_through_count_and_inspect(tmp_path, cli):
    source = save_checkpoint(_trained_like(4), tmp_path / "model.pth")
    out = tmp_path / "pruned.safetensors"
    report = prune(source, out, stages=[1, 4], mode="remove", data="synthetic", limit=8)
    rebuilt = _loaded(out)
    params = sum(p.numel() for p in rebuilt.parameters())
    assert params == report.cost_after.params == count(str(out)).params
    plain_se = sum(p.numel() for name, p in build_model(MODEL).named_parameters()
                   if ".se." in name and name.startswith(("layer1.", "layer4.")))
    assert report.cost_before.params - params == plain_se
    code, stdout, _ = cli(["count", str(out), "--format", "json"])
    assert code == 0 and json.loads(stdout)["params"] == params
    timed = senet_cli.profile(str(out), batches=[1], iters=1, warmup=0)  # profile builds the pruned model too
    assert sorted(path for path, _ in timed.config.pruned) == [
        "layer1.0.se", "layer1.1.se", "layer4.0.se", "layer4.1.se"] and timed.results[0].error is None
    code, _, err = cli(["profile", str(out), "--batch", "1", "--iters", "1", "--warmup", "0"])
    assert code == 0, err
    gates = inspect(out, data="synthetic", limit=4)
    assert gates.params == params and {g.name for g in gates.blocks} == {"layer2.0", "layer2.1", "layer3.0", "layer3.1"}
    original = load_checkpoint(source).state_dict
    assert all(torch.equal(value, original[key]) for key, value in load_checkpoint(out).state_dict.items())
    assert load_checkpoint(out).metadata["pruned"] == {
        "folded": [], "removed": ["layer1.0.se", "layer1.1.se", "layer4.0.se", "layer4.1.se"]}


def test_fold_into_the_consumer_conv_where_an_activation_precedes_the_gate(tmp_path):
    torch.manual_seed(5)
    model = build_model("se_mobilenet_v2", placement="inner", num_classes=10).eval()
    with torch.no_grad():  # a gate that ignores the image, so folding must be exact
        for name, module in model.named_modules():
            if name.endswith(".se"):
                module.fc2.weight.zero_()
                module.fc2.bias.uniform_(-3, 3)
    source = save_checkpoint(model, tmp_path / "mobile.pth")
    report = prune(source, tmp_path / "folded.pth", blocks=["features.2"], data="synthetic", limit=4,
                   input_size=64)
    assert report.blocks[0].folded_into == ("features.2.conv.2",)  # the 1x1 projection after ReLU6 and SE
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        want, got = model(x), _loaded(tmp_path / "folded.pth")(x)
    assert torch.allclose(got, want, rtol=0, atol=1e-5 * float(want.abs().max()))


def test_sweep_ranks_blocks_and_states_each_alone(tmp_path):
    source = save_checkpoint(_trained_like(6), tmp_path / "model.pth")
    report = prune(source, None, stages=[3, 4], mode="remove", sweep=True, data="synthetic", limit=8)
    assert len(report.blocks) == 4 and all(b.alone is not None for b in report.blocks)
    costs = [b.cost_per_kparam for b in report.ranked()]
    assert costs == sorted(costs)
    for b in report.blocks:  # without labels, the cost is disagreement per 1,000 parameters saved
        assert b.cost_per_kparam == pytest.approx(100 * (1 - b.alone.agreement) / (b.params / 1000))


@pytest.mark.slow  # folds and checks all eight blocks, then inspects again
def test_candidates_are_inspects(constant_model, tmp_path):
    source = save_checkpoint(constant_model, tmp_path / "constant.pth")
    report = prune(source, None, candidates=True, data="synthetic", limit=8)
    assert {b.block for b in report.blocks} == {c.name for c in inspect(source, data="synthetic", limit=8).candidates}
    assert report.after.agreement == 1.0


@pytest.mark.parametrize(("argv", "expected"), [
    (["--blocks", "layer1.9"], "unknown block 'layer1.9' in se_resnet18_cifar (did you mean 'layer1.1'?)"),
    (["--blocks", "layer1.0", "--stages", "4"], "exactly one of --blocks"),
    (["--stages", "9"], "stage(s) 9 of se_resnet18_cifar have no attention module"),
    (["--blocks", "layer1.0", "--roofline", "tpu"], "tpu"),
])
def test_bad_choices_are_one_line(tmp_path, cli, argv, expected):
    source = save_checkpoint(build_model(MODEL), tmp_path / "model.pth")
    code, stdout, stderr = cli(["prune", str(source), str(tmp_path / "out.pth"), "--data", "synthetic",
                                "--limit", "4", *argv])
    assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1 and expected in stderr
    assert not (tmp_path / "out.pth").exists()


def test_bad_inputs_are_one_line(tmp_path, cli):
    def run(source, *argv, out="out.pth"):
        code, stdout, stderr = cli(["prune", str(source), str(tmp_path / out), "--data", "synthetic", "--limit", "4",
                                    *argv])
        assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1, stderr
        return stderr

    later = save_checkpoint(build_model(MODEL, stages=[3, 4]), tmp_path / "late.pth")
    assert "block layer1.0 of se_resnet18_cifar has no attention module" in run(later, "--blocks", "layer1.0")
    cbam = save_checkpoint(build_model("cbam_resnet18_cifar"), tmp_path / "cbam.pth")
    line = run(cbam, "--stages", "4")
    assert "cannot fold layer4.0.cbam" in line and "--mode remove" in line
    sk = save_checkpoint(build_model("sk_resnet18_cifar"), tmp_path / "sk.pth")
    assert "replaces the block's conv" in run(sk, "--stages", "4", "--mode", "remove")
    source = save_checkpoint(build_model(MODEL), tmp_path / "model.pth")
    assert "OUT takes a path ending in" in run(source, "--stages", "4", out="out.xlsx")
    pruned = tmp_path / "pruned.pth"
    prune(source, pruned, stages=[4], mode="remove", data="synthetic", limit=4)
    assert "already pruned (removed 2)" in run(pruned, "--stages", "3")
    assert "already exists; pass --force" in run(source, "--stages", "4", out="pruned.pth")
    plain = save_checkpoint(build_model("resnet18_cifar"), tmp_path / "plain.pth")
    assert "resnet18_cifar has no attention module to prune" in run(plain, "--stages", "4")
    gc = save_checkpoint(build_model("gc_resnet18_cifar"), tmp_path / "gc.pth")
    assert "GlobalContext has no gate submodule" in run(gc, "--stages", "4")


def test_a_forged_pruned_record_is_one_line(tmp_path):
    source = save_checkpoint(build_model(MODEL), tmp_path / "model.pth")
    payload = torch.load(source, weights_only=True)
    for record, message in (({"folded": ["layer1.0.conv1"]}, "is a Conv2d"), ({"folded": "x"}, "must be a list"),
                            ({"cut": []}, "metadata field pruned must be")):
        payload["senet"]["pruned"] = record
        torch.save(payload, tmp_path / "forged.pth")
        with pytest.raises(SenetError, match=message):
            count(str(tmp_path / "forged.pth"))


def test_cli_table_and_json(tmp_path, cli):
    source = save_checkpoint(_trained_like(7), tmp_path / "model.pth")
    code, stdout, _ = cli(["prune", str(source), str(tmp_path / "out.pth"), "--stages", "4", "--data", "synthetic",
                           "--limit", "4", "--format", "json"])
    assert code == 0
    data = json.loads(stdout)
    assert data["saved"]["params"] == data["cost_before"]["params"] - data["cost_after"]["params"] > 0
    assert [b["module"] for b in data["blocks"]] == ["layer4.0.se", "layer4.1.se"]
    code, stdout, _ = cli(["prune", str(source), str(tmp_path / "out2.pth"), "--stages", "4", "--data", "synthetic",
                           "--limit", "4", "--columns", "block,folded_into,params"])
    assert code == 0 and "layer4.0.bn2" in stdout and "params 11,263,042 -> " in stdout
    code, stdout, _ = cli(["count", str(tmp_path / "out2.pth")])
    assert code == 0 and "pruned: folded 2" in stdout


@pytest.mark.slow
def test_two_processes_give_the_one_process_evaluation(tmp_path, image_folder):
    """Under torchrun the gate means and the evaluation are split and merged: the same report as one process."""
    import os
    import socket
    import subprocess
    import sys

    source = save_checkpoint(_trained_like(8), tmp_path / "model.pth")
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    reports = {}
    for processes in (None, 2):
        launcher = [sys.executable, "-m", "senet_cli"]
        if processes is not None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
                        "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "senet_cli"]
        target = tmp_path / f"report-{processes}.json"
        done = subprocess.run(launcher + ["prune", str(source), str(tmp_path / f"out-{processes}.pth"), "--stages",
                                          "3,4", "--data", str(image_folder), "--batch", "2", "--output", str(target)],
                              capture_output=True, text=True, env=environment, timeout=240)
        assert done.returncode == 0, done.stderr
        reports[processes] = json.loads(target.read_text())
    one, two = reports[None], reports[2]
    assert (one["world_size"], two["world_size"]) == (1, 2)
    for key in ("before", "after"):
        assert one[key]["images"] == two[key]["images"] == 5
        for field in ("top1", "agreement", "max_logit_change", "mean_logit_change"):
            assert one[key][field] == pytest.approx(two[key][field], rel=1e-5, abs=1e-7), (key, field)
    assert one["saved"] == two["saved"]
    assert torch.equal(load_checkpoint(tmp_path / "out-None.pth").state_dict["layer4.0.bn2.weight"],
                       load_checkpoint(tmp_path / "out-2.pth").state_dict["layer4.0.bn2.weight"]) or torch.allclose(
        load_checkpoint(tmp_path / "out-None.pth").state_dict["layer4.0.bn2.weight"],
        load_checkpoint(tmp_path / "out-2.pth").state_dict["layer4.0.bn2.weight"], rtol=1e-6)


def test_count_refuses_build_options_beside_a_checkpoint(tmp_path, cli):
    source = save_checkpoint(build_model(MODEL), tmp_path / "model.pth")
    code, _, stderr = cli(["count", str(source), "--ratio", "8"])
    assert code == 2 and "build options given with the checkpoint" in stderr and len(stderr.splitlines()) == 1
    with pytest.raises(SenetError, match="build options given with the checkpoint"):
        count(str(source), ratio=8)
    code, _, stderr = cli(["count", str(tmp_path / "missing.safetensors")])
    assert code == 2 and "does not exist" in stderr and len(stderr.splitlines()) == 1


def test_a_model_outside_the_zoo_folds_exactly_and_rebuilds_from_its_file(tmp_path):
    """torchvision's MobileNetV3 SE (x * hardsigmoid(fc2(...))) after an activation: folded into the
    projection conv that consumes it; count and inspect rebuild the pruned model from the metadata."""
    torch.manual_seed(9)
    name = "torchvision:mobilenet_v3_small"
    model = build_model(name, num_classes=10).eval()
    with torch.no_grad():  # gates that ignore the image: hardsigmoid of fc2's biases
        for module in model.modules():
            if type(module).__name__ == "SqueezeExcitation":
                module.fc2.weight.zero_()
                module.fc2.bias.uniform_(-3, 3)
    source = save_checkpoint(model, tmp_path / "mobile.safetensors")
    out = tmp_path / "pruned.safetensors"
    report = prune(source, out, blocks=["features.4", "features.9"], data="synthetic", limit=4, input_size=64)
    assert [b.folded_into for b in report.blocks] == [("features.4.block.3.0",), ("features.9.block.3.0",)]
    se_params = sum(p.numel() for path in ("features.4.block.2", "features.9.block.2")
                    for p in model.get_submodule(path).parameters())
    assert report.saved.params == se_params == sum(b.params for b in report.blocks)
    rebuilt = _loaded_outside(out)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        want, got = model(x), rebuilt(x)
    assert torch.allclose(got, want, rtol=0, atol=1e-5 * float(want.abs().max()))
    assert count(str(out), input_size=64).params == report.cost_after.params == \
        sum(p.numel() for p in model.parameters()) - se_params
    assert inspect(out, data="synthetic", limit=2).params == report.cost_after.params
    assert load_checkpoint(out).metadata["pruned"] == {"folded": ["features.4.block.2", "features.9.block.2"],
                                                       "removed": []}


def _loaded_outside(path) -> nn.Module:
    from senet_cli.outside.load import checkpoint_subject

    subject, _, state = checkpoint_subject(load_checkpoint(path), None, {})
    return subject.with_weights(state)


def test_kernels_and_predicted_time_saved_on_a_calibrated_device(tmp_path):
    """SE launches 6 kernels (mean, conv, relu, conv, sigmoid, mul); a calibrated device predicts the time
    each block's SE takes, and the totals saved are the sums of the blocks'."""
    from test_latency import synthetic

    device = tmp_path / "device.json"
    device.write_text(json.dumps(synthetic().to_dict()))
    source = save_checkpoint(_trained_like(10), tmp_path / "model.pth")
    report = prune(source, None, stages=[3, 4], mode="remove", sweep=True, data="synthetic", limit=4,
                   roofline=str(device))
    assert [b.kernels for b in report.blocks] == [6, 6, 6, 6] and report.saved.kernels == 24
    assert all(b.predicted_ms is not None and b.predicted_ms > 0 for b in report.blocks)
    assert report.saved.predicted_ms == pytest.approx(sum(b.predicted_ms for b in report.blocks), rel=1e-6)
    assert report.saved.roofline_ms is not None and report.saved.roofline_ms > 0
    ranked = [b.cost_per_ms for b in report.ranked()]
    assert ranked == sorted(ranked)  # ranked per predicted ms saved once every block has a prediction
    data = report.to_dict()
    assert data["saved"]["kernels"] == 24 and data["blocks"][0]["cost_per_ms"] is not None


def _wide_report(sweep: bool) -> PruneReport:
    """A report at SE-ResNet-50's scale (the widest numbers a table meets), with every optional field set."""
    alone = Evaluation(5000, 0.7512, 0.9234, 0.9876, 12.345, 0.1234)
    blocks = tuple(BlockPrune(f"layer4.{i}", 4, f"layer4.{i}.se", "folded", (f"layer4.{i}.bn3",), 0.1234, 0.0987,
                              1_050_624, 1_050_624, 3_211_264, 12_845_056, 6, 0.0123, alone if sweep else None,
                              0.0123 if sweep else None, 1.234 if sweep else None) for i in range(3))
    before = Costs(28_088_024, 4_091_638_272, 32_123_456, 612_345_678, 391, 1.2345, 2.3456)
    after = Costs(24_936_152, 4_088_486_400, 22_489_664, 573_810_510, 373, 1.1234, 2.2345)
    evaluation = Evaluation(5000, 0.7612, 0.9301, 1.0, 0.0, 0.0)
    return PruneReport("se_resnet50", "ckpt.pth", "small.pth", "fold", "stages 4", blocks, "imagenet/val",
                       tuple(map(str, range(1000))), (224, 224), "cuda:0", evaluation, alone, before, after,
                       "h100", sweep)


@pytest.mark.parametrize("sweep", [False, True])
def test_the_table_reads_at_80_columns(sweep):
    from senet_cli.render import prune_view
    from senet_cli.render.tables import needed_width, render_text, select_columns, to_rich

    report = _wide_report(sweep)
    table = select_columns(prune_view.prune_table(report), None)
    text = render_text([to_rich(table)], width=80)
    assert needed_width(table) <= 80 and max(map(len, text.splitlines())) <= 80
    assert all(cell in text for row in (*table.rows, table.footer or ()) for cell in row)
    assert "3,151,872" in text  # the parameters saved, whole: 3 x 1,050,624
    every = select_columns(prune_view.prune_table(report), "all")
    assert {"folded_into", "module", "bytes", "predicted_ms"} <= set(every.keys)
    assert "layer4.0.bn3" in render_text([to_rich(every)], width=300)
