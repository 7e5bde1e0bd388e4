"""Which timm or torchvision model a raw state dict (no senet metadata) belongs to, from its keys and
shapes alone: an index of key/shape signatures of every classification model the installed timm and
torchvision build.

The index is built on first use from the installed libraries, each model built on the meta device (no
weights allocated; minutes for the ~1,300 timm models, with a progress bar), and cached per library
version in the user cache dir (`$XDG_CACHE_HOME/senet`, else ~/.cache/senet) as one small JSON file:
written atomically (a temp file renamed), rebuilt when unreadable or from other versions, older
versions' files removed (at most `KEEP_FILES` kept). A look-up then reads that file and hashes the
checkpoint's keys: milliseconds.

A signature is a SHA-1 of the sorted (key, shape) pairs (BN step counters left out: a file may lack
them). Two per model: `exact`, and `near`, with the first dimension of the classifier's weight and
bias (the number of classes) left out, so that a model trained on other classes is still named (with
its num_classes). Models whose keys are identical (timm's efficientnet_b0 and tf_efficientnet_b0 compute
differently on the same weights) all fit: the caller lists them. Torch, timm and torchvision are
imported inside the functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 1
"""The cache file's format; a file of another format is rebuilt."""

KEEP_FILES = 4
"""Index files kept in the cache dir (one per library-version combination and name list)."""

Shapes = Mapping[str, tuple[int, ...]]


@dataclass(frozen=True)
class Signature:
    """One model's entry: its name (`timm:NAME`), its exact and near signatures, its classifier's keys."""

    name: str
    exact: str
    near: str
    classifier: tuple[str, ...]


@dataclass(frozen=True)
class Index:
    """The signatures of the models indexed, those that would not build, and where the index lives."""

    signatures: tuple[Signature, ...]
    failed: tuple[str, ...]
    path: Path
    built_seconds: float | None  # the build's time when this call built it; None: read from the cache


@dataclass(frozen=True)
class OutsideMatch:
    """The models a state dict fits: every name (sorted, timm's first), and the classes its classifier
    has when they differ from the model's default (a near match), else None."""

    names: tuple[str, ...]
    num_classes: int | None

    @property
    def name(self) -> str:
        return self.names[0]


def cache_dir() -> Path:
    """Where the index lives: $XDG_CACHE_HOME/senet, else ~/.cache/senet."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "senet"


def all_names() -> list[str]:
    """Every classification model of the installed timm (when installed) and torchvision."""
    import torchvision

    names = [f"torchvision:{n}" for n in torchvision.models.list_models(module=torchvision.models)]
    try:
        import timm
    except ImportError:
        return names
    return [f"timm:{n}" for n in timm.list_models()] + names


def signature(shapes: Shapes, classifier: Sequence[str] = ()) -> str:
    """SHA-1 of the sorted (key, shape) pairs, BN step counters left out; the first dimension of the
    `classifier` keys written as '*'."""
    from senet_cli.checkpoint.counters import is_step_counter

    lines = []
    for key in sorted(shapes):
        if is_step_counter(key):
            continue
        dims = [str(d) for d in shapes[key]]
        if key in classifier and dims:
            dims[0] = "*"
        lines.append(f"{key}:{','.join(dims)}")
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()


def classifier_keys(shapes: Shapes, num_classes: int = 1000) -> tuple[str, ...]:
    """The keys of the last module whose weight's first dimension is `num_classes` (the classifier)."""
    last = None
    for key, shape in shapes.items():
        if key.endswith(".weight") and shape and shape[0] == num_classes:
            last = key.rpartition(".")[0]
    if last is None:
        return ()
    return tuple(k for k in shapes if k.rpartition(".")[0] == last and shapes[k] and shapes[k][0] == num_classes)


def model_signature(name: str) -> Signature:
    """The signature of the model `name` (`timm:NAME`, `torchvision:NAME`), built on the meta device."""
    from senet_cli.outside.build import build_external
    from senet_cli.outside.names import external_config

    model = build_external(external_config(name, {}), meta=True)
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    classifier = classifier_keys(shapes)
    return Signature(name, signature(shapes), signature(shapes, classifier), classifier)


def load_index(names: Sequence[str] | None = None, directory: Path | None = None,
               progress: bool = True) -> Index:
    """The index of `names` (default: every timm and torchvision classification model), read from the
    cache or built and cached (see the module doc)."""
    path = index_path(names, directory)
    cached = _read(path)
    if cached is not None:
        return cached
    import time

    started = time.perf_counter()
    chosen = list(names) if names is not None else all_names()
    signatures, failed = _build(chosen, progress)
    index = Index(tuple(signatures), tuple(failed), path, time.perf_counter() - started)
    save_index(index)
    return index


def index_path(names: Sequence[str] | None = None, directory: Path | None = None) -> Path:
    """Where the index of `names` (None: every model) for the installed library versions lives."""
    return (directory or cache_dir()) / _file_name(names)


def recognise(shapes: Shapes, index: Index) -> OutsideMatch | None:
    """The models of `index` whose keys and shapes are the state dict's (exactly, else with another
    number of classes), or None."""
    wanted = signature(shapes)
    exact = sorted({s.name for s in index.signatures if s.exact == wanted}, key=_order)
    if exact:
        return OutsideMatch(tuple(exact), None)
    for classifier in dict.fromkeys(s.classifier for s in index.signatures if s.classifier):
        if not all(key in shapes and shapes[key] for key in classifier):
            continue
        classes = {shapes[key][0] for key in classifier}
        if len(classes) != 1:
            continue
        near = signature(shapes, classifier)
        names = sorted({s.name for s in index.signatures if s.classifier == classifier and s.near == near},
                       key=_order)
        if names:
            return OutsideMatch(tuple(names), classes.pop())
    return None


def _order(name: str) -> tuple[int, str]:
    return (0 if name.startswith("timm:") else 1, name)


def _file_name(names: Sequence[str] | None) -> str:
    versions = "-".join(f"{lib}{version}" for lib, version in _versions().items())
    chosen = "all" if names is None else hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]
    return f"outside-index-v{FORMAT}-{versions}-{chosen}.json"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for library in ("torch", "torchvision", "timm"):
        try:
            found[library] = version(library)
        except PackageNotFoundError:
            found[library] = "none"
    return found


def _build(names: Sequence[str], progress: bool) -> tuple[list[Signature], list[str]]:
    """Each model's signature, and the names that would not build on meta."""
    signatures: list[Signature] = []
    failed: list[str] = []
    with _progress(len(names), progress) as advance:
        for name in names:
            try:
                signatures.append(model_signature(name))
            except Exception:  # noqa: BLE001 (any builder may fail; such a model is left out of the index)
                failed.append(name)
            advance(name)
    return signatures, failed


@contextlib.contextmanager
def _progress(total: int, shown: bool) -> Any:
    """A rich progress bar on stderr (only where stderr is a terminal); yields advance(name)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not shown or not console.is_terminal:
        yield lambda _name: None
        return
    columns = (TextColumn("indexing timm/torchvision models (once per library version)"), BarColumn(),
               MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("", total=total)
        advance: Callable[[str], None] = lambda name: bar.update(task, advance=1, description=name)  # noqa: E731
        yield advance


def _read(path: Path) -> Index | None:
    """The index cached at `path`, or None: absent, unreadable or corrupt (then it is rebuilt)."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            return None
        signatures = tuple(Signature(e["name"], e["exact"], e["near"], tuple(e["classifier"])) for e in data["models"])
        return Index(signatures, tuple(data["failed"]), path, None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save_index(index: Index) -> None:
    """Write `index` atomically (temp file, then rename), and drop the oldest index files beyond KEEP_FILES.
    A cache dir that cannot be written leaves the index in memory only."""
    data = {"format": FORMAT, "versions": _versions(), "failed": list(index.failed),
            "models": [{"name": s.name, "exact": s.exact, "near": s.near, "classifier": list(s.classifier)}
                       for s in index.signatures]}
    directory = index.path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=directory, prefix=".index-", suffix=".tmp")
        with os.fdopen(handle, "w") as file:
            json.dump(data, file, separators=(",", ":"))
        os.replace(temp, index.path)
        _prune(directory, keep=index.path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(temp)


def _prune(directory: Path, keep: Path) -> None:
    files = sorted(directory.glob("outside-index-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [f for f in files if f != keep][KEEP_FILES - 1:]:
        with contextlib.suppress(OSError):
            old.unlink()


def names_of(matches: Iterable[str]) -> str:
    """Names as a short list for a message: the first three, then how many more."""
    chosen = list(matches)
    shown = ", ".join(chosen[:3])
    return shown + (f" and {len(chosen) - 3} more" if len(chosen) > 3 else "")
