"""`inspect`: exact gate statistics (against constant gates and a brute-force pass), the streaming
accumulator, the gates of the extended zoo (Coordinate, SK; DANet refused), and the command line's
JSON and plot."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from senet_cli import build_model, inspect, load_checkpoint, save_checkpoint
from senet_cli.checkpoint.recognise import materialize, resolve
from senet_cli.errors import SenetError
from senet_cli.inspect.gates import GateAccumulator

MODEL = "se_resnet18_cifar"  # the model conftest's constant_model is built from

# --- statistics -------------------------------------------------------------------------------------


def test_constant_gates_give_exactly_those_statistics(constant_model, image_folder, tmp_path):
    path = save_checkpoint(constant_model, tmp_path / "constant.pth")
    report = inspect(path, data=str(image_folder), batch=2)
    assert report.images == 5 and report.classes == ("cat", "dog")
    assert report.architecture_source == "metadata"
    for gate in report.blocks:
        expected = torch.sigmoid(torch.linspace(-4, 4, gate.channels)).double().numpy()
        assert gate.kind == "channel" and gate.values == 5 * gate.channels
        assert list(gate.channel_means) == expected.tolist()  # exact: every image sees the same value
        assert set(gate.channel_stds) == {0.0} and gate.image_spread == 0.0 and gate.class_spread == 0.0
        assert gate.mean == pytest.approx(expected.mean(), rel=1e-14)
        assert gate.std == pytest.approx(expected.std(), rel=1e-12)
        assert (gate.min, gate.max) == (expected.min(), expected.max())
        assert gate.below == pytest.approx((expected < 0.1).mean())
        assert gate.above == pytest.approx((expected > 0.9).mean())
        counts, _ = np.histogram(expected.astype(np.float32), bins=np.array(gate.histogram.edges, dtype=np.float32))
        assert list(gate.histogram.counts) == (5 * counts).tolist() and sum(gate.histogram.counts) == gate.values
        assert [label for label, _ in gate.class_means] == ["cat", "dog"]
        assert all(list(means) == expected.tolist() for _, means in gate.class_means)
    assert {c.name for c in report.candidates} == {g.name for g in report.blocks}
    se_params = sum(p.numel() for n, p in constant_model.named_parameters() if ".se." in n)
    assert sum(c.params for c in report.candidates) == se_params


def test_statistics_match_a_brute_force_pass(tmp_path):
    """Random CBAM weights, uneven batches: streaming results equal numpy over every gate value kept."""
    torch.manual_seed(2)
    path = save_checkpoint(build_model("cbam_resnet18_cifar"), tmp_path / "cbam.safetensors")
    report = inspect(path, data="synthetic", limit=7, batch=3, bins=20)
    checkpoint = load_checkpoint(path)
    model = materialize(resolve(checkpoint))  # the same weights, loaded the same way
    kept: dict[str, list[np.ndarray]] = {}
    for name, module in model.named_modules():
        if name.endswith("gate") and "cbam" in name:
            module.register_forward_hook(lambda m, i, o, n=name: kept.setdefault(n, []).append(o.detach().numpy()))
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for size in (3, 3, 1):
            model(torch.randn(size, 3, 32, 32, generator=generator))
    assert len(report.blocks) == 16  # channel and spatial gate of 8 blocks
    for gate in report.blocks:
        values = np.concatenate(kept[f"{gate.name}.{gate.gate}"]).astype(np.float64)
        values = values.reshape(values.shape[0], values.shape[1], -1)  # [N, C, positions]
        assert gate.kind == ("channel" if "Channel" in gate.gate else "spatial")
        assert gate.values == values.size
        assert gate.mean == pytest.approx(values.mean(), rel=1e-9)
        assert gate.std == pytest.approx(values.std(), rel=1e-7)
        assert np.allclose(gate.channel_means, values.mean((0, 2)), rtol=1e-9)
        assert np.allclose(gate.channel_stds, values.std((0, 2)), rtol=1e-6, atol=1e-12)
        counts, _ = np.histogram(values.astype(np.float32), bins=np.array(gate.histogram.edges, dtype=np.float32))
        assert list(gate.histogram.counts) == counts.tolist()


def test_accumulator_memory_does_not_grow_with_images():
    gate = torch.nn.Sigmoid()
    accumulator = GateAccumulator("layer1.0", "se.gate", 1, gate, bins=50, classes=3)
    accumulator.labels = torch.tensor([0, 1, 2, 0])
    accumulator.update(torch.rand(4, 64, 1, 1))
    size = accumulator.state_bytes()
    for _ in range(20):
        accumulator.update(torch.rand(4, 64, 1, 1))
    assert accumulator.state_bytes() == size
    assert accumulator.result(("a", "b", "c")).values == 21 * 4 * 64


def test_unbounded_gates_count_clamped_values():
    accumulator = GateAccumulator("b", "se.gate", 1, torch.nn.ReLU(), bins=10, classes=0)
    accumulator.update(torch.tensor([[0.5, 1.0]]))  # top edge: 2 x 1.0
    accumulator.update(torch.tensor([[3.0, 0.0]]))
    result = accumulator.result()
    assert result.histogram.edges[-1] == 2.0 and result.histogram.clamped == 1
    assert result.histogram.counts == (1, 0, 1, 0, 0, 1, 0, 0, 0, 1)  # 0.0, 0.5, 1.0, and 3.0 in the last bin


def test_inspect_reads_the_new_gates(tmp_path):
    torch.manual_seed(0)
    coord = tmp_path / "coord.pth"
    save_checkpoint(build_model("coord_resnet18_cifar"), coord)
    report = inspect(coord, data="synthetic", limit=4)
    gates = {(g.name, g.gate): g for g in report.blocks}
    assert {g for _, g in gates if _ == "layer1.0"} == {"coord.gate_h", "coord.gate_w"}
    assert gates[("layer1.0", "coord.gate_h")].positions == 32 and gates[("layer1.0", "coord.gate_w")].positions == 32
    sk = tmp_path / "sk.pth"
    save_checkpoint(build_model("sk_resnet18_cifar"), sk)
    first = inspect(sk, data="synthetic", limit=4).blocks[0]
    assert (first.gate, first.kind, first.channels) == ("conv1.gate", "channel", 2 * 64)
    assert math.isclose(sum(first.channel_means[:64]) + sum(first.channel_means[64:]), 64, rel_tol=1e-6)
    danet = tmp_path / "danet.pth"
    save_checkpoint(build_model("danet_resnet18_cifar"), danet)
    with pytest.raises(SenetError, match="add a context term"):
        inspect(danet, data="synthetic", limit=2)


# --- command line -----------------------------------------------------------------------------------


def test_cli_json_contract_and_plot(constant_model, image_folder, tmp_path, cli):
    checkpoint = save_checkpoint(constant_model, tmp_path / "c.pth")
    figure, output = tmp_path / "gates.png", tmp_path / "gates.json"
    code, _, err = cli(["inspect", str(checkpoint), "--data", str(image_folder), "--plot", str(figure),
                        "--output", str(output), "--bins", "20"])
    assert code == 0, err
    payload = json.loads(output.read_text())
    assert {"model", "checkpoint", "images", "blocks"} <= set(payload)
    assert payload["model"] == MODEL and payload["images"] == 5
    block = payload["blocks"][0]
    assert {"name", "stage", "channels", "mean", "std", "min", "max", "histogram", "channel_means",
            "class_means"} <= set(block)
    assert block["name"] == "layer1.0" and len(block["histogram"]["edges"]) == 21
    assert sum(block["histogram"]["counts"]) == 5 * 64 and set(block["class_means"]) == {"cat", "dog"}
    assert figure.read_bytes()[:4] == b"\x89PNG" and figure.stat().st_size > 20_000
    code, _, err = cli(["inspect", str(checkpoint), "--data", "synthetic", "--plot", str(figure)])
    assert code == 2 and "--force" in err


@pytest.mark.parametrize("argv,message", [
    (["--ratio", "8"], "build options given without --model NAME (--ratio)"),
    (["--plot", "figure.jpg"], ".png, .svg or .pdf"),
    (["--data", "no/such/folder"], "'samples', 'synthetic' or an ImageFolder"),
    (["--model", "se_resnt18_cifar"], "did you mean 'resnet18_cifar'"),
    (["--device", "tpu"], "tpu"),
])
def test_cli_bad_options(argv, message, constant_model, tmp_path, cli):
    checkpoint = tmp_path / "c.pth"
    torch.save(constant_model.state_dict(), checkpoint)
    code, _, err = cli(["inspect", str(checkpoint), *argv])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_default_data_is_the_shipped_photograph(constant_model, tmp_path, cli):
    checkpoint = tmp_path / "c.pth"
    torch.save(constant_model.state_dict(), checkpoint)
    code, out, err = cli(["inspect", str(checkpoint), "--limit", "4", "--format", "json"])
    assert code == 0, err
    payload = json.loads(out)
    assert payload["images"] == 4 and "grace_hopper.jpg" in payload["data"]
    assert payload["architecture"]["source"] == "detected"


def test_a_module_standing_in_for_a_conv_is_never_a_drop_candidate(tmp_path):
    """SK's branch selection replaces the 3x3 conv: however constant, it is not a scale BN can absorb
    (a newcomer saw 'dropping them saves 41.74%' for timm's skresnet18). SE with the same loose
    tolerance is listed, so the tolerance is not what empties the list."""
    import torch

    from senet_cli import build_model, inspect

    for name, expected in (("sk_resnet18_cifar", 0), ("se_resnet18_cifar", 8)):
        path = tmp_path / f"{name}.pth"
        torch.save(build_model(name).state_dict(), path)
        report = inspect(path, data="synthetic", limit=2, batch=2, constant_tol=10.0)
        assert len(report.candidates) == expected, name
