"""`inspect`: safe loading, container unwrapping, architecture detection, exact gate statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run
from PIL import Image

from senet_cli import build_model, inspect, load_checkpoint, save_checkpoint
from senet_cli.analysis.architecture import detect, materialize, resolve, skeleton
from senet_cli.analysis.gates import GateAccumulator
from senet_cli.attention import ATTENTION
from senet_cli.errors import SenetError
from senet_cli.zoo import list_models, make_config

MODEL = "se_resnet18_cifar"


@pytest.fixture(scope="module")
def se_state() -> dict[str, torch.Tensor]:
    """se_resnet18_cifar at ratio 8 and 7 classes: options detection must recover."""
    torch.manual_seed(0)
    return build_model(MODEL, ratio=8, num_classes=7).state_dict()


@pytest.fixture(scope="module")
def constant_model() -> torch.nn.Module:
    """SE gates that ignore the image: fc2 weights 0, biases b_c spread over [-4, 4], so gate_c = sigmoid(b_c)."""
    torch.manual_seed(1)
    model = build_model(MODEL)
    for name, module in model.named_modules():
        if name.endswith(".se"):
            module.fc2.weight.data.zero_()
            channels = module.fc2.bias.numel()
            module.fc2.bias.data = torch.linspace(-4, 4, channels)
    return model


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """An ImageFolder tree: classes 'cat' (3 images) and 'dog' (2), random pixels."""
    root = tmp_path_factory.mktemp("images")
    generator = np.random.default_rng(0)
    for label, count in (("cat", 3), ("dog", 2)):
        (root / label).mkdir()
        for index in range(count):
            pixels = generator.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{index}.png")
    return root


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
        assert gate.below == pytest.approx((expected < 0.1).mean()) and gate.above == pytest.approx((expected > 0.9).mean())
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
    model = materialize(checkpoint, resolve(checkpoint).config)  # the same weights, loaded the same way
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


# --- loading ----------------------------------------------------------------------------------------


def _wrapped(state):
    prefixed = lambda prefix: {prefix + k: v for k, v in state.items()}  # noqa: E731
    return {
        "plain": state,
        "state_dict": {"state_dict": state, "epoch": 3},
        "model": {"model": state, "optimizer": {"lr": 0.1}},
        "model_state_dict": {"model_state_dict": state},
        "state_dict_ema": {"state_dict_ema": state},
        "model_ema": {"model_ema": state},
        "lightning.ckpt": {"state_dict": prefixed("model."), "pytorch-lightning_version": "2.4.0",
                           "hyper_parameters": {"lr": 0.1}, "global_step": 10},
        "dataparallel": prefixed("module."),
        "compiled": prefixed("_orig_mod."),
        "ddp_compiled_in_state_dict": {"state_dict": prefixed("module._orig_mod.")},
    }


@pytest.mark.parametrize("wrapping", list(_wrapped({})))
def test_every_wrapping_loads_and_detection_finds_architecture_and_ratio(wrapping, se_state, tmp_path):
    path = tmp_path / (wrapping if wrapping.endswith(".ckpt") else f"{wrapping}.pth")
    torch.save(_wrapped(se_state)[wrapping], path)
    checkpoint = load_checkpoint(path)
    assert set(checkpoint.state_dict) == set(se_state)
    resolved = resolve(checkpoint)
    assert resolved.source == "detected"
    assert resolved.config == make_config(MODEL, ratio=8, num_classes=7)


def test_safetensors_and_our_metadata(se_state, tmp_path):
    model = build_model(MODEL, ratio=8, num_classes=7, stages="2,3,4")
    path = save_checkpoint(model, tmp_path / "model.safetensors", preprocess={"input": 48})
    checkpoint = load_checkpoint(path)
    assert checkpoint.format == "safetensors" and checkpoint.metadata["model"] == MODEL
    assert resolve(checkpoint).config == model.senet_config
    with pytest.raises(SenetError, match="already exists"):
        save_checkpoint(model, path)
    report = inspect(path, data="synthetic", limit=2)
    assert report.input == (48, 48) and report.blocks[0].name == "layer2.0"


def test_ema_weights_are_taken_only_when_asked(se_state, tmp_path):
    averaged = {k: v + 1 if v.is_floating_point() else v for k, v in se_state.items()}
    path = tmp_path / "ema.pth"
    torch.save({"state_dict": se_state, "state_dict_ema": averaged}, path)
    raw, ema = load_checkpoint(path), load_checkpoint(path, ema=True)
    assert raw.container == "state_dict" and raw.other_weights == ("state_dict_ema",)
    assert ema.container == "state_dict_ema"
    assert torch.equal(ema.state_dict["fc.bias"], se_state["fc.bias"] + 1)
    torch.save(se_state, tmp_path / "plain.pth")
    with pytest.raises(SenetError, match="no EMA weights"):
        load_checkpoint(tmp_path / "plain.pth", ema=True)


PARAMETER_FREE = ("simam", "ge")  # with default options: their models have the plain backbone's weights
DETECTION_CASES = [
    (f"{attention}_{backbone}", {}) for attention in ATTENTION if attention not in PARAMETER_FREE
    for backbone in ("resnet18", "resnet50", "resnext50_32x4d", "resnet34_cifar", "mobilenet_v2",
                     "shufflenet_v2_x1_0", "vgg16_bn", "inception_v3")
] + [(name, {}) for name in list_models("se_*")] + [
    ("ge_resnet50", {"extent": 4, "parametric": True}), ("ge_mobilenet_v2", {"mlp": True}),
    ("nonlocal_resnet50", {"sub_sample": False}), ("gc_resnet50", {"fusion": "add+mul"}),
    ("se_resnet50", {"ratio": 4, "bias": False}), ("se_resnet18_cifar", {"stages": "3,4", "num_classes": 7}),
    ("se_resnet50", {"placement": "pre"}), ("se_resnet50", {"excitation": "channelwise"}),
    ("se_resnet50", {"excitation": "group", "groups": 8}), ("se_resnet50", {"excitation": "fc"}),
    ("eca_resnet50", {"k_size": 3}), ("eca_resnet18", {"k_size": "3,5,7,9"}),
    ("cbam_resnet18", {"spatial": False}), ("cbam_resnet18", {"spatial_kernel": 3, "ratio": 8}),
    ("se_resnet34", {"ratio": 32}), ("se_resnext50_32x4d", {"ratio": 8}),
]


@pytest.mark.parametrize("name,options", DETECTION_CASES, ids=[f"{n}-{o}" for n, o in DETECTION_CASES])
def test_detection_recovers_every_registered_configuration(name, options):
    config = make_config(name, **options)
    assert detect(skeleton(config).shapes).config == config


@pytest.mark.parametrize("name", [f"{a}_{b}" for a in PARAMETER_FREE for b in ("resnet50", "vgg16_bn")])
def test_parameter_free_models_are_detected_as_their_backbone(name):
    config = make_config(name)
    assert detect(skeleton(config).shapes).config == make_config(config.backbone)


def test_detection_says_what_weights_cannot_tell():
    notes = " ".join(detect(skeleton(make_config("se_resnet50")).shapes).notes)
    assert "variant v1.5" in notes and "placement standard" in notes and "squeeze avg" in notes


def test_wrong_architecture_is_reported_as_keys_with_the_fitting_model(se_state, tmp_path):
    path = tmp_path / "se.pth"
    torch.save(se_state, path)
    with pytest.raises(SenetError) as error:
        inspect(path, model="cbam_resnet18_cifar", data="synthetic", limit=1)
    message = str(error.value)
    assert "missing (layer1.0.cbam" in message and "unexpected (layer1.0.se" in message
    assert "its weights fit se_resnet18_cifar" in message
    with pytest.raises(SenetError, match="pass --num-classes 7"):
        inspect(path, model=MODEL, ratio=8, data="synthetic", limit=1)


def test_unknown_weights_are_not_detected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3), "decoder.weight": torch.zeros(3)}, path)
    with pytest.raises(SenetError, match="could not detect the architecture"):
        resolve(load_checkpoint(path))


# --- safety and bad files ---------------------------------------------------------------------------


class Payload:
    """Unpickling this touches a marker file: the stand-in for arbitrary code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (self.marker.touch, ())


def test_a_pickle_payload_is_never_executed_without_trust(se_state, tmp_path, capsys):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": se_state, "hook": Payload(marker)}, path)
    code, _, err = run(["inspect", str(path), "--data", "synthetic", "--limit", "1"], capsys)
    assert code == 2 and not marker.exists()
    assert "pathlib" in err and "--trust" in err and len(err.strip().splitlines()) == 1
    checkpoint = load_checkpoint(path, trust=True)
    assert marker.exists() and checkpoint.trusted  # the flag is what lets it run


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "directory", "missing", "raw pickle", "no weights"])
def test_bad_files_get_one_line_and_exit_2(kind, se_state, tmp_path, capsys):
    path = tmp_path / "bad.pth"
    if kind == "truncated":
        torch.save(se_state, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not a checkpoint\n" * 10)
    elif kind == "directory":
        path.mkdir()
    elif kind == "raw pickle":
        import pickle

        path.write_bytes(pickle.dumps({"a": 1}))
    elif kind == "no weights":
        torch.save({"epoch": 3, "lr": 0.1}, path)
    code, out, err = run(["inspect", str(path), "--data", "synthetic", "--limit", "1"], capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("senet: error: ") and "Traceback" not in err + out


# --- command line -----------------------------------------------------------------------------------


def test_cli_json_contract_and_plot(constant_model, image_folder, tmp_path, capsys):
    checkpoint = save_checkpoint(constant_model, tmp_path / "c.pth")
    figure, output = tmp_path / "gates.png", tmp_path / "gates.json"
    code, _, err = run(["inspect", str(checkpoint), "--data", str(image_folder), "--plot", str(figure),
                        "--output", str(output), "--bins", "20"], capsys)
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
    code, _, err = run(["inspect", str(checkpoint), "--data", "synthetic", "--plot", str(figure)], capsys)
    assert code == 2 and "--force" in err


@pytest.mark.parametrize("argv,message", [
    (["--ratio", "8"], "need --model"),
    (["--plot", "figure.jpg"], ".png, .svg or .pdf"),
    (["--data", "no/such/folder"], "'samples', 'synthetic' or an ImageFolder"),
    (["--model", "se_resnt18_cifar"], "did you mean 'resnet18_cifar'"),
    (["--device", "tpu"], "tpu"),
])
def test_cli_bad_options(argv, message, constant_model, tmp_path, capsys):
    checkpoint = tmp_path / "c.pth"
    torch.save(constant_model.state_dict(), checkpoint)
    code, _, err = run(["inspect", str(checkpoint), *argv], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_default_data_is_the_shipped_photograph(constant_model, tmp_path, capsys):
    checkpoint = tmp_path / "c.pth"
    torch.save(constant_model.state_dict(), checkpoint)
    code, out, err = run(["inspect", str(checkpoint), "--limit", "4", "--format", "json"], capsys)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["images"] == 4 and "grace_hopper.jpg" in payload["data"]
    assert payload["architecture"]["source"] == "detected"
