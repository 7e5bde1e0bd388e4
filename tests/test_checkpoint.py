"""Loading checkpoints: every container and wrapping (Lightning, DataParallel, torch.compile, EMA),
safetensors with our metadata, never running a pickle's code without trust, and one line for a bad
file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from senet_cli import build_model, inspect, load_checkpoint, save_checkpoint
from senet_cli.checkpoint.convert import convert
from senet_cli.checkpoint.recognise import Resolved, materialize, resolve
from senet_cli.errors import SenetError
from senet_cli.zoo import make_config

MODEL = "se_resnet18_cifar"  # the model conftest's se_state is built from

# --- containers and wrappings -----------------------------------------------------------------------


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


# --- safety and bad files ---------------------------------------------------------------------------


class Payload:
    """Unpickling this touches a marker file: the stand-in for arbitrary code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (self.marker.touch, ())


def test_a_pickle_payload_is_never_executed_without_trust(se_state, tmp_path, cli):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": se_state, "hook": Payload(marker)}, path)
    code, _, err = cli(["inspect", str(path), "--data", "synthetic", "--limit", "1"])
    assert code == 2 and not marker.exists()
    assert "pathlib" in err and "--trust" in err and len(err.strip().splitlines()) == 1
    checkpoint = load_checkpoint(path, trust=True)
    assert marker.exists() and checkpoint.trusted  # the flag is what lets it run


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "directory", "missing", "raw pickle", "no weights"])
def test_bad_files_get_one_line_and_exit_2(kind, se_state, tmp_path, cli):
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
    code, out, err = cli(["inspect", str(path), "--data", "synthetic", "--limit", "1"])
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("senet: error: ") and "Traceback" not in err + out


def test_save_checkpoint_takes_a_module_and_inspect_refuses_options_without_a_model(se_state, tmp_path):
    with pytest.raises(SenetError, match="model must be a torch.nn.Module, got OrderedDict"):
        save_checkpoint(se_state, tmp_path / "state.pth")
    path = save_checkpoint(build_model(MODEL), tmp_path / "model.pth")
    with pytest.raises(SenetError, match=r"build options given without model='NAME' \(ratio\)"):
        inspect(path, ratio=8, data="synthetic", limit=1)  # an API caller too: never silently ignored


def test_save_checkpoint_and_convert_write_the_same_file_through_one_writer(tmp_path):
    """A model with tied weights (one storage, two keys) saves as safetensors, which refuses shared
    storage: the writer stores them apart; what comes back equals what went in, dtype kept."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)).to(torch.float64)
    model[1].weight = model[0].weight
    path = save_checkpoint(model, tmp_path / "tied.safetensors")
    back = load_checkpoint(path).state_dict
    assert set(back) == set(model.state_dict()) and back["1.weight"].dtype == torch.float64
    assert all(torch.equal(back[key], value) for key, value in model.state_dict().items())
    with pytest.raises(SenetError, match="give a file path in an existing folder"):
        save_checkpoint(model, tmp_path / "missing" / "tied.pth")
    ours = save_checkpoint(build_model(MODEL), tmp_path / "ours.pth")
    convert(ours, tmp_path / "converted.pth")
    saved, converted = (torch.load(tmp_path / name, weights_only=True) for name in ("ours.pth", "converted.pth"))
    assert saved.keys() == converted.keys() == {"state_dict", "senet"}
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in converted["state_dict"].items())
    assert converted["senet"]["model"] == saved["senet"]["model"] == MODEL


def test_resolve_fills_missing_step_counters_and_materialize_needs_its_weights(se_state, tmp_path):
    """A Caffe port has no num_batches_tracked: resolve still fits (counters are optional), its state
    holds zero counters, and materialize loads it strictly; a Resolved without weights is refused."""
    path = tmp_path / "no_counters.pth"
    torch.save({k: v for k, v in se_state.items() if not k.endswith("num_batches_tracked")}, path)
    resolved = resolve(load_checkpoint(path))
    counters = [key for key in se_state if key.endswith("num_batches_tracked")]
    assert counters and all(resolved.state[key].item() == 0 for key in counters)
    model = materialize(resolved)
    assert torch.equal(model.state_dict()["fc.weight"], se_state["fc.weight"])
    with pytest.raises(SenetError, match="no weights to load"):
        materialize(Resolved(resolved.config, "given"))
