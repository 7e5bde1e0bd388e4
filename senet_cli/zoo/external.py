"""Models from outside the zoo: `torchvision:NAME`, `timm:NAME`, `path/to/file.py:callable` and
`package.module:callable`, their attention found by class, their blocks, and the same model
without its attention.

A file or module is imported as Python imports any code: whatever it runs at import and in the
callable runs in this process. That is what naming it asks for; name only code you trust.

What is attention: the zoo's own modules (`AttentionModule`), the classes of other libraries in
senet_cli/attention/foreign.py, and the caller's own classes ("PATH_OR_MODULE:Class"), matched by
`isinstance`; only the outermost match counts (timm's CbamModule, not its ChannelAttn inside).
A known class is matched only when its module is already imported (a model holding a timm class
has imported timm), so a torchvision model never imports timm.

What is a block (`external_blocks`): where the model is built from containers (nn.Sequential,
ModuleList, ModuleDict) of units, as ResNets (`layer1.0`), EfficientNets (`features.2.0`),
MobileNets (`features.3`) and RegNets (`trunk_output.block1.block1-0`) are, the units, provided
every attention module lies in one; otherwise the module that holds each attention module: its
outermost ancestor, below the model and not a container, that holds no other attention module.
A block's stage is the ordinal of the container holding it (1 where one container holds them all).

Torch is imported inside the functions that build or walk a model; this module imports without it.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from senet_cli.attention.foreign import FOREIGN_ATTENTION, OWN_ROLE_BY_SLOT, ROLES, USER_ROLE
from senet_cli.errors import ArgumentError, OptionError, SenetError, UnknownChoiceError, closest_match, first_line
from senet_cli.options import COMMON_OPTION_NAMES, ExternalConfig, parse_int
from senet_cli.zoo.meta import paused_gc, skip_weight_init

PREFIXES = ("torchvision", "timm")


@dataclass(frozen=True)
class FoundAttention:
    """One attention module found in a model: where, its class, what it does to its input (a ROLES
    key), and its gate submodules (paths relative to it; None: named by the zoo's convention, a
    submodule called `gate` or `gate_<axis>`)."""

    path: str
    class_name: str
    role: str
    gates: tuple[str, ...] | None


def is_external(name: object) -> bool:
    """True for a name outside the zoo's grammar: it holds a ':' (`timm:NAME`, `file.py:fn`)."""
    return isinstance(name, str) and ":" in name


def parse_reference(text: str, what: str = "model") -> tuple[str, str, str]:
    """(source, location, target) of `torchvision:NAME`, `timm:NAME`, `file.py:callable` or
    `package.module:callable` (a model's builder, or with what="attention class" a class)."""
    prefix, _, rest = text.partition(":")
    if what == "model" and prefix in PREFIXES:
        if not rest:
            raise SenetError(f"'{text}' names no model: write {prefix}:NAME")
        return prefix, prefix, rest
    location, _, target = text.rpartition(":")
    if not location or not target:
        raise SenetError(f"{what} '{text}' must be written path/to/file.py:Name or package.module:Name")
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    return ("file" if is_file else "module"), location, target


def external_config(model: str | ExternalConfig, options: Mapping[str, Any],
                    attention_classes: Sequence[str] = ()) -> ExternalConfig:
    """`model` checked into an ExternalConfig: the builder exists, the keywords are Python values
    (CLI strings read as literals: "0.2" -> 0.2, "relu" stays "relu"), each attention class imports."""
    if isinstance(model, ExternalConfig):
        if options or attention_classes:
            given = ", ".join([*options, *(["attention_classes"] if attention_classes else [])])
            raise SenetError(f"{model.name} is given as an ExternalConfig, which holds every option; got {given}")
        return model
    source, location, target = parse_reference(model)
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key in COMMON_OPTION_NAMES and key != "num_classes":
            raise OptionError(key, value, "no value for a model outside the zoo",
                              f"'{key}' is a build option of the zoo's models; {model} takes its builder's own "
                              f"keywords")
        if key == "num_classes":
            kwargs[key] = parse_int(value, "num_classes")
            if kwargs[key] < 1:
                raise OptionError("num_classes", value, "at least 1", f"num_classes must be at least 1, got {value}")
        else:
            kwargs[key] = _frozen(_literal(value))
    load_builder(source, location, target)
    classes = tuple(dict.fromkeys(attention_classes))
    for reference in classes:
        load_attention_class(reference)
    return ExternalConfig(model, source, location, target, tuple(kwargs.items()), classes)


def refuse_attention_classes(attention_classes: Sequence[str], model: str) -> None:
    """A zoo model's attention is its own: user classes apply only to models outside the zoo."""
    if attention_classes:
        raise ArgumentError(
            "{attention_classes} names attention classes of models outside the zoo (torchvision:NAME, timm:NAME, "
            "file.py:callable); '{model}' is a zoo model", arguments=("attention_classes",), model=model,
        )


def load_builder(source: str, location: str, target: str) -> Callable[..., Any]:
    """The callable that builds the model (imports torchvision, timm or the caller's code)."""
    if source == "torchvision":
        import torchvision.models

        names = torchvision.models.list_models()
        if target not in names:
            raise UnknownChoiceError("torchvision model", target, names)
        return torchvision.models.get_model_builder(target)
    if source == "timm":
        timm = _import_timm()
        if not timm.is_model(target.partition(".")[0]):
            raise UnknownChoiceError("timm model", target, timm.list_models())
        return lambda **kwargs: timm.create_model(target, pretrained=False, **kwargs)
    builder = _load_attribute(location, target, source)
    if not callable(builder):
        raise SenetError(f"'{target}' in {location} is a {type(builder).__name__}, not a callable that builds a model")
    return builder


def load_attention_class(reference: str) -> type:
    """The class a "PATH_OR_MODULE:Class" reference names; refused unless it is an nn.Module class."""
    source, location, target = parse_reference(reference, "attention class")
    found = _load_attribute(location, target, source)
    from torch import nn

    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise SenetError(f"attention class '{reference}' is not a torch.nn.Module class")
    return found


def build_external(config: ExternalConfig, *, meta: bool = False, init: bool = True) -> Any:
    """The model `config` names, with random weights on the CPU; on the meta device (no weights) with
    `meta`; with `init=False` its weights are left as allocated (they are about to be loaded).

    Builders that compute with tensors while building (torchvision's RegNet widths) cannot run on
    the meta device; those are built on the CPU without weight initialisation, then moved there.
    """
    import torch
    from torch import nn

    builder = load_builder(config.source, config.location, config.target)
    kwargs = dict(config.kwargs)
    model = None
    if meta:
        with contextlib.suppress(Exception), torch.device("meta"), skip_weight_init(), paused_gc():
            model = builder(**kwargs)
    if model is None:
        quiet = skip_weight_init() if (meta or not init) else contextlib.nullcontext()
        try:
            with quiet, paused_gc():
                model = builder(**kwargs)
        except TypeError as error:
            raise SenetError(f"{config.name} refused its keywords: {first_line(error)}") from None
        except Exception as error:  # noqa: BLE001 (the caller's builder may raise anything)
            raise SenetError(f"{config.name} failed to build: {type(error).__name__}: {first_line(error)}") from None
    if not isinstance(model, nn.Module):
        raise SenetError(f"{config.name} returned a {type(model).__name__}, not a torch.nn.Module")
    if meta:
        model = model.to("meta")
    return model


def find_attention(model: Any, attention_classes: Sequence[str] = ()) -> tuple[FoundAttention, ...]:
    """Every outermost attention module of `model`, in module order (see the module doc)."""
    table = _class_table(attention_classes)
    found: list[FoundAttention] = []
    for path, module in model.named_modules():
        if not path or any(path.startswith(f"{outer.path}.") for outer in found):
            continue
        for cls, role, gates in table:
            if isinstance(module, cls):
                present = None if gates is None else tuple(g for g in gates if _has_submodule(module, g))
                found.append(FoundAttention(path, type(module).__name__, role, present))
                break
    return tuple(found)


def without_attention(model: Any, found: Sequence[FoundAttention]) -> bool:
    """Replace each found module by nn.Identity, in place; False (and nothing replaced) when one of
    them is not a pass-through-able gate (role "conv")."""
    from torch import nn

    if any(item.role not in PASS_THROUGH for item in found):
        return False
    for item in found:
        model.set_submodule(item.path, nn.Identity())
    return True


PASS_THROUGH = tuple(role for role in ROLES if role != "conv")


def external_blocks(model: Any, attention_paths: Sequence[str]) -> list[tuple[str, int]]:
    """(path, stage) of each block of `model`, in module order (see the module doc)."""
    structural = _structural_blocks(model)
    if structural and all(any(_within(p, block) for block, _ in structural) for p in attention_paths):
        return _with_stages(structural)
    return _with_stages(_attention_blocks(model, attention_paths))


def output_classes(config: ExternalConfig, model: Any) -> int:
    """Classifier outputs: the num_classes keyword, else the last nn.Linear's width, else 1000."""
    from torch import nn

    given = dict(config.kwargs).get("num_classes")
    if isinstance(given, int):
        return given
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linear[-1].out_features if linear else 1000


def describe(found: Sequence[FoundAttention]) -> str:
    """"16 SqueezeExcitation, 2 CbamModule": how many of each class."""
    counts: dict[str, int] = {}
    for item in found:
        counts[item.class_name] = counts.get(item.class_name, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in counts.items())


def notes(config: ExternalConfig, found: Sequence[FoundAttention], has_baseline: bool) -> tuple[str, ...]:
    """What was found and what the baseline is, for reports."""
    if not found:
        return (f"no attention module recognised in {config.name}: none of the known classes (zoo, timm, "
                f"torchvision) nor those named; see README 'Bring your own model'",)
    lines = [f"attention found by class: {describe(found)}"]
    if has_baseline:
        lines.append(f"baseline: {config.name} with each of them replaced by a pass-through (nn.Identity)")
    else:
        blocking = sorted({item.class_name for item in found if item.role not in PASS_THROUGH})
        lines.append(f"no baseline: {', '.join(blocking)} replaces a convolution rather than gating its input, so "
                     f"no pass-through stands for the model without it")
    return tuple(lines)


def baseline_name(config: ExternalConfig) -> str:
    return f"{config.name} without attention"


def _literal(value: Any) -> Any:
    """A CLI string as the Python literal it spells ("3" -> 3, "(1, 2)" -> (1, 2)); else unchanged."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _frozen(value: Any) -> Any:
    """Lists as tuples, so a configuration compares and hashes by value."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _import_timm() -> Any:
    try:
        import timm
    except ImportError:
        raise SenetError("timm is not installed: pip install timm") from None
    return timm


_FILES: dict[str, Any] = {}
"""Files imported so far, by resolved path: a model and its attention class from one file share it."""


@contextlib.contextmanager
def _on_path(directory: str) -> Iterator[None]:
    """`directory` first on sys.path while importing, as when Python runs a script there."""
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    try:
        yield
    finally:
        if added:
            sys.path.remove(directory)


def _import_file(location: str) -> Any:
    path = Path(location).expanduser()
    if not path.is_file():
        raise SenetError(f"no file '{location}'")
    key = str(path.resolve())
    if key not in _FILES:
        name = f"senet_user_{len(_FILES)}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, key)
        if spec is None or spec.loader is None:
            raise SenetError(f"'{location}' cannot be imported as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            with _on_path(str(path.resolve().parent)):
                spec.loader.exec_module(module)
        except Exception as error:  # noqa: BLE001 (the caller's code may raise anything)
            del sys.modules[name]
            raise SenetError(f"importing {location} failed: {type(error).__name__}: {first_line(error)}") from None
        _FILES[key] = module
    return _FILES[key]


def _import_module(location: str) -> Any:
    try:
        with _on_path(os.getcwd()):
            return importlib.import_module(location)
    except ModuleNotFoundError as error:
        raise SenetError(f"no module named '{error.name or location}' (from '{location}')") from None
    except Exception as error:  # noqa: BLE001
        raise SenetError(f"importing {location} failed: {type(error).__name__}: {first_line(error)}") from None


def _load_attribute(location: str, target: str, source: str) -> Any:
    module = _import_file(location) if source == "file" else _import_module(location)
    found: Any = module
    for part in target.split("."):
        if not hasattr(found, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            match = closest_match(target, names)
            hint = f" (did you mean '{match}'?)" if match else ""
            raise SenetError(f"{location} has no '{target}'{hint}")
        found = getattr(found, part)
    return found


def _class_table(attention_classes: Sequence[str]) -> list[tuple[type, str, tuple[str, ...] | None]]:
    """(class, role, gates) to match, the caller's first, then the zoo's, then other libraries'."""
    from senet_cli.attention import ATTENTION
    from senet_cli.attention.base import AttentionModule

    table: list[tuple[type, str, tuple[str, ...] | None]] = [
        (load_attention_class(reference), USER_ROLE, None) for reference in attention_classes
    ]
    for _, spec in ATTENTION.items():
        if spec.slot in OWN_ROLE_BY_SLOT:
            table.append((spec.module_class(), OWN_ROLE_BY_SLOT[spec.slot], None))
    table.append((AttentionModule, USER_ROLE, None))
    for entry in FOREIGN_ATTENTION:
        module_name, _, class_name = entry.reference.partition(":")
        module = sys.modules.get(module_name)  # not imported: no model of this process holds its classes
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type):
            table.append((cls, entry.role, entry.gates))
    return table


def _has_submodule(module: Any, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def _containers() -> tuple[type, ...]:
    from torch import nn

    return nn.Sequential, nn.ModuleList, nn.ModuleDict


def _structural_blocks(model: Any) -> list[tuple[str, str]]:
    """(path, container path) of each unit reached from the model through containers only: a module
    that is neither a container nor a leaf (layer1.0, features.2.0, features.3)."""
    containers = _containers()
    found: list[tuple[str, str]] = []

    def walk(module: Any, prefix: str, inside: bool) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if isinstance(child, containers):
                walk(child, f"{path}.", True)
            elif inside and next(child.children(), None) is not None:
                found.append((path, prefix[:-1]))

    walk(model, "", isinstance(model, containers))
    return found


def _attention_blocks(model: Any, attention_paths: Sequence[str]) -> list[tuple[str, str]]:
    """(path, parent path) of the module holding each attention module (see the module doc)."""
    containers = _containers()
    chosen: list[str] = []
    for path in attention_paths:
        parts = path.split(".")
        ancestors = [".".join(parts[:depth]) for depth in range(1, len(parts))]
        candidates = [a for a in ancestors if not isinstance(model.get_submodule(a), containers)]
        alone = [a for a in candidates if sum(_within(p, a) for p in attention_paths) == 1]
        block = alone[0] if alone else (candidates[-1] if candidates else path)
        if block not in chosen:
            chosen.append(block)
    outermost = [b for b in chosen if not any(b != other and _within(b, other) for other in chosen)]
    return [(block, block.rpartition(".")[0]) for block in outermost]


def _with_stages(blocks: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """Number the containers holding the blocks 1, 2, ... in order: each block's stage."""
    stage_of: dict[str, int] = {}
    for _, parent in blocks:
        stage_of.setdefault(parent, len(stage_of) + 1)
    return [(path, stage_of[parent]) for path, parent in blocks]
