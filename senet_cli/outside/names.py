"""Names of models from outside the zoo -> checked configurations -> the callables that build them.

`torchvision:NAME`, `timm:NAME` (timm stays optional: without it, one line says to install it),
`path/to/file.py:callable` and `package.module:callable`, with keyword options; and the caller's
own attention classes, "PATH_OR_MODULE:Class". senet_cli/outside/build.py builds the models and
finds their attention and blocks.

A file or module is imported as Python imports any code: whatever it runs at import and in the
callable runs in this process. That is what naming it asks for; name only code you trust. A file
is imported once per process (a model and an attention class from one file share its classes),
with its own folder first on sys.path while it imports; a module is looked for on sys.path and in
the current folder. Torch is imported inside the functions that need it.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from senet_cli.errors import ArgumentError, OptionError, SenetError, UnknownChoiceError, closest_match, first_line
from senet_cli.options import COMMON_OPTION_NAMES, ExternalConfig, parse_int
from senet_cli.paths import path_kind

PREFIXES = ("torchvision", "timm")


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
            raise _unknown("torchvision", target, names, "torchvision.models.list_models()")
        return torchvision.models.get_model_builder(target)
    if source == "timm":
        timm = _import_timm()
        if not timm.is_model(target.partition(".")[0]):
            raise _unknown("timm", target, timm.list_models(), "timm.list_models()")
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


def _unknown(library: str, name: str, names: Sequence[str], lister: str) -> UnknownChoiceError:
    """An unknown model of a library, with the closest name; its names are too many to list."""
    error = UnknownChoiceError(f"{library} model", name, names)
    hint = f" (did you mean '{error.suggestion}'?)" if error.suggestion else ""
    error.args = (f"unknown {library} model '{name}'{hint}; its names: {lister}",)
    return error


def _literal(value: Any) -> Any:
    """A CLI string as the Python literal it spells ("3" -> 3, "(1, 2)" -> (1, 2)); else unchanged.
    A value that nests past what the parser can hold is one SenetError, never a RecursionError."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    except (RecursionError, MemoryError):  # CPython's parser: "1+1+...+1" recurses, "(1,(1,..." overflows its stack
        start = value[:24] + "..." if len(value) > 24 else value
        raise SenetError(f"option value {start!r} ({len(value):,} characters) nests too deeply to read as a Python "
                         f"literal; write a flat value (a number, a string, a short list)") from None


def _frozen(value: Any) -> Any:
    """Lists as tuples: a configuration holds immutable values where it can."""
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
    if path_kind(path, "model file") != "file":
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
        except (Exception, SystemExit) as error:  # noqa: BLE001 (the caller's code may raise anything, or exit)
            del sys.modules[name]
            raise SenetError(f"importing {location} failed: {_failure(error)}") from None
        _FILES[key] = module
    return _FILES[key]


def _import_module(location: str) -> Any:
    try:
        with _on_path(os.getcwd()):
            return importlib.import_module(location)
    except ModuleNotFoundError as error:
        raise SenetError(f"no module named '{error.name or location}' (from '{location}')") from None
    except (Exception, SystemExit) as error:  # noqa: BLE001
        raise SenetError(f"importing {location} failed: {_failure(error)}") from None


def _failure(error: BaseException) -> str:
    """What the caller's code did instead of importing: an exception, or a sys.exit() that would
    otherwise end senet silently with the code's own status (0 for sys.exit(0))."""
    if isinstance(error, SystemExit):
        return f"it called sys.exit({error.code!r}) while being imported"
    return f"{type(error).__name__}: {first_line(error)}"


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
