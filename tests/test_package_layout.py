"""The package's shape: no import cycles, a library that names no CLI flag, a torch-free import,
one source for every choice (option defaults, CLI choices, README tables)."""

from __future__ import annotations

import ast
import inspect as pyinspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import senet_cli
from senet_cli import vocabulary
from senet_cli.attention import ATTENTION
from senet_cli.cli import flags
from senet_cli.cli.catalogue_view import readme_tables
from senet_cli.cli.errors import message
from senet_cli.cli.profile_cmd import Dtype, Mode
from senet_cli.count.references import COUNTERS
from senet_cli.errors import ArgumentError
from senet_cli.options import PLACEMENTS, VARIANTS
from senet_cli.profile.timing import MODES
from senet_cli.vocabulary import DEVICES, DTYPES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "senet_cli"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """module -> the senet_cli modules it imports, at module level or inside functions (lazily)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_cycles_anywhere_in_the_package():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
    assert len(graph) > 40  # the walk saw the whole package


def test_backbones_only_build_and_the_library_never_imports_the_cli():
    graph = import_graph()
    for module, targets in graph.items():
        if not module.startswith(("senet_cli.cli", "senet_cli.__main__")):
            assert not any(t.startswith("senet_cli.cli") for t in targets), module
        if module.startswith("senet_cli.backbones"):
            assert not any(t.startswith(("senet_cli.inspect", "senet_cli.count", "senet_cli.profile"))
                           for t in targets), module
    backbone_code = " ".join(path.read_text() for path in (PACKAGE / "backbones").glob("*.py"))
    assert "_fits" not in backbone_code  # detection-only code lives in checkpoint/fits.py


JOBS = ("count", "profile", "inspect")
ALLOWED_BETWEEN_JOBS = {("profile", "count")}
"""profile computes count's roofline bound beside its timings; no other job imports another."""


def _package_of(module: str) -> str:
    """The top-level part of senet_cli a module belongs to: "senet_cli.count.api" -> "count"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_jobs_import_the_shared_vocabulary_and_never_each_other():
    graph = import_graph()
    between = {(_package_of(module), _package_of(target)): f"{module} -> {target}"
               for module, targets in graph.items() for target in targets
               if _package_of(module) in JOBS and _package_of(target) in JOBS
               and _package_of(module) != _package_of(target)}
    assert {edge: why for edge, why in between.items() if edge not in ALLOWED_BETWEEN_JOBS} == {}
    # the vocabulary sits below every job: it imports nothing of ours but the exceptions it raises
    assert graph["senet_cli.vocabulary"] <= {"senet_cli.errors"}
    for job in ("count", "profile"):  # each takes a dtype name and checks it against the vocabulary
        assert any(target == "senet_cli.vocabulary" for module, targets in graph.items()
                   if _package_of(module) == job for target in targets), job


VOCABULARY = {"DEVICES": vocabulary.DEVICES, "DTYPES": vocabulary.DTYPES, "PLOT_FORMATS": vocabulary.PLOT_FORMATS}


def test_devices_dtypes_and_plot_formats_are_spelt_in_one_module():
    """No other module defines these names or writes one of these sets out again (a tuple, list,
    set or dict literal holding exactly its strings), so adding a dtype or a format is one edit."""
    spelt = {frozenset(values): name for name, values in VOCABULARY.items()}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "vocabulary.py":
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            found += [f"{path.name}: defines {t.id}" for t in targets
                      if isinstance(t, ast.Name) and t.id in VOCABULARY]
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
                items = node.keys if isinstance(node, ast.Dict) else node.elts
                strings = frozenset(i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str))
                if strings in spelt and len(strings) == len(items):
                    found.append(f"{path.name}:{node.lineno}: spells {spelt[strings]} again")
    assert found == []


def test_a_dtype_name_becomes_torchs_dtype_in_one_helper():
    import torch

    assert {name: vocabulary.torch_dtype(name) for name in vocabulary.DTYPES} == {
        "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    for name in ("float64", "nn", "__name__"):  # real attributes of torch, none of them a dtype we take
        with pytest.raises(senet_cli.SenetError, match=f"unknown dtype '{name}'.*accepted: float32"):
            vocabulary.torch_dtype(name)
    assert vocabulary.plot_suffixes() == ".png, .svg or .pdf"
    code = "import sys\nimport senet_cli.vocabulary\nprint('torch' in sys.modules)"
    assert _run_python(code) == "False"


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def test_no_string_outside_the_cli_names_a_flag():
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and FLAG.search(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {FLAG.search(node.value).group()}")
    assert found == []


def test_errors_name_keywords_in_python_and_flags_on_the_command_line():
    error = ArgumentError("{file} needs unpickling; pass {trust} only if you trust it; {bad} {n}",
                          arguments={"trust": ("trust", True), "bad": "input_size", "n": ("num_classes", 7)},
                          file="a{b}.pth")
    assert str(error) == "a{b}.pth needs unpickling; pass trust=True only if you trust it; input_size num_classes=7"
    assert message(error) == "a{b}.pth needs unpickling; pass --trust only if you trust it; --input --num-classes 7"
    assert error.file == "a{b}.pth"  # the data behind the message
    with pytest.raises(senet_cli.SenetError) as unknown:
        senet_cli.make_config("sse_resnet50")
    assert unknown.value.suggestion and str(unknown.value).endswith("(see list_models())")
    assert message(unknown.value).endswith("(run 'senet list')")


def _run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return done.stdout.strip()


def test_the_api_imports_without_torch_and_its_job_names_stay_functions():
    out = _run_python(
        "import sys\nimport senet_cli\n"
        "from senet_cli.count import results\nfrom senet_cli.profile import timing\n"
        "from senet_cli.inspect import results as inspect_results\nfrom senet_cli.checkpoint import loading\n"
        "import senet_cli.zoo, senet_cli.cli.app\n"
        "print('torch' in sys.modules, callable(senet_cli.count), callable(senet_cli.profile),"
        " callable(senet_cli.inspect))"
    )
    assert out == "False True True True"
    out = _run_python("import senet_cli.count.dispatch, senet_cli\nprint(callable(senet_cli.count))")
    assert out == "True"  # a submodule imported first does not shadow the function


def test_every_option_default_is_its_constructors_default():
    checked = 0
    for name, spec in ATTENTION.items():
        signature = pyinspect.signature(spec.module_class())
        for option in spec.options:
            if option.name in spec.zoo_options:
                continue  # read by the zoo (which blocks), not passed to the module
            assert signature.parameters[option.name].default == option.default, (name, option.name)
            checked += 1
        if spec.uses_ratio:
            assert signature.parameters["ratio"].default == spec.default_ratio, name
        else:
            assert "ratio" not in signature.parameters, name
    assert checked >= 20


@pytest.mark.parametrize("name", [n for n, s in ATTENTION.items() if s.uses_ratio and n != "sk" and n != "coord"])
def test_a_ratio_that_leaves_no_channels_is_refused_by_every_reducing_module(name):
    options = {"mlp": True} if name == "ge" else {}
    with pytest.raises(senet_cli.SenetError, match="ratio 4096 is larger than the .* channels of stage"):
        senet_cli.count(f"{name}_resnet18_cifar", ratio=4096, **options)


def test_cli_choices_are_the_librarys_tuples():
    def values(enum) -> tuple[str, ...]:
        return tuple(member.value for member in enum)

    assert values(flags.Variant) == VARIANTS and values(flags.Placement) == PLACEMENTS
    assert values(flags.Device) == DEVICES and values(Dtype) == DTYPES and values(Mode) == MODES
    from senet_cli.cli.count_cmd import Counter

    assert values(Counter) == ("native", *COUNTERS, "all")


def test_readme_tables_are_generated_from_the_registry():
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- catalogue: start -->\n", "<!-- catalogue: end -->"
    assert start in readme and end in readme
    block = readme[readme.index(start) + len(start):readme.index(end)]
    assert block.strip() == readme_tables().strip(), (
        "README's tables are stale: regenerate them with "
        "python -c 'from senet_cli.cli.catalogue_view import readme_tables; print(readme_tables())'"
    )
