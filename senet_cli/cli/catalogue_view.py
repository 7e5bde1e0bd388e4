"""`senet list`'s tables, and the README's, made from the zoo's catalogue (zoo/catalogue.py)."""

from __future__ import annotations

import json
from typing import Any

from senet_cli.cli.errors import flag
from senet_cli.render.tables import TableData, to_markdown
from senet_cli.zoo import GRAMMAR, catalogue


def catalogue_json() -> str:
    return json.dumps(catalogue(), indent=2) + "\n"


def _option_line(option: dict[str, Any]) -> str:
    accepted = "|".join(option["choices"]) if option["choices"] else option["kind"].replace("_", " ")
    return f"{option['name']}={option['default']} ({accepted})"


def catalogue_tables() -> list[TableData]:
    """Attention modules, backbones, common options and every model name, as `senet list` prints
    them: two or three columns each, so they read at 80 columns (cells hold line breaks)."""
    data = catalogue()
    attention = TableData(
        title="Attention modules: the <attention> part of a model name",
        headers=("name", "paper, where it goes by default, options (-o KEY=VALUE)"),
        rows=tuple(
            (a["name"], "\n".join([
                a["title"], a["paper"],
                "placed: " + a["placement"] + (f"; --ratio default {a['default_ratio']}" if a["uses_ratio"] else ""),
                "options: " + (", ".join(_option_line(o) for o in a["options"]) or "none"),
            ]))
            for a in data["attention"]
        ),
        left_columns=2, wrapped_from=1, multiline=True,
    )
    backbones = TableData(
        title="Backbones: the <backbone> part, or a whole name for the plain model",
        headers=("name", "description", "stages", "classes", "input"),
        rows=tuple(
            (b["name"], b["description"], str(b["stages"]), str(b["num_classes"]),
             f"{b['input']} (min {b['min_input']})")
            for b in data["backbones"]
        ),
        left_columns=2, wrapped_from=1,
    )
    common = TableData(
        title="Options every model takes",
        headers=("option", "default", "meaning"),
        rows=tuple((o["name"], o["default"], o["help"]) for o in data["common_options"]),
        left_columns=3, wrapped_from=1,
    )
    return [attention, backbones, common, models_table(data)]


def models_table(data: dict[str, Any]) -> TableData:
    """Every model name, grouped by its attention module (the plain backbones and aliases last)."""
    models: list[str] = data["models"]
    groups: dict[str, list[str]] = {a["name"]: [] for a in data["attention"]}
    rest: list[str] = []
    for name in models:
        prefix = name.split("_", 1)[0]
        (groups[prefix] if prefix in groups and name.split("_", 1)[1:] else rest).append(name)
    rows = [(prefix, " ".join(names)) for prefix, names in groups.items() if names]
    rows.append(("plain", " ".join(rest)))
    return TableData(
        title=f"Models: {GRAMMAR}",
        headers=("group", "names"),
        rows=tuple(rows), left_columns=2, wrapped_from=1,
        caption=f"{len(models)} models. 'senet list PATTERN' prints the names one per line ('se_*', "
        f"'*cifar'); '--format json' gives all of this as data.",
    )


def readme_tables() -> str:
    """The README's module and option tables (Markdown), regenerated from the registries; a test
    checks that README.md holds exactly this text between its `catalogue` markers."""
    data = catalogue()
    lines = [
        "| attention | paper | where, by default | module options (`-o KEY=VALUE` on the CLI, keywords in Python) |",
        "| --- | --- | --- | --- |",
    ]
    for a in data["attention"]:
        options = [f"`{_option_line(o)}`: {o['help']}" for o in a["options"]]
        if a["uses_ratio"]:
            options.append(f"`--ratio` {a['default_ratio']}")
        cells = (f"`{a['name']}`", f"[{a['title']}]({a['paper']})", a["placement"], "<br>".join(options) or "none")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines += [
        "",
        "Options every model takes:",
        "",
        "| option (CLI flag) | default | meaning |",
        "| --- | --- | --- |",
    ]
    for o in data["common_options"]:
        meaning = o["help"].replace("|", "\\|")
        lines.append(f"| `{o['name']}` (`{flag(o['name'])}`) | {o['default']} | {meaning} |")
    return "\n".join(lines) + "\n"


def markdown() -> str:
    return "\n".join(to_markdown(table) for table in catalogue_tables())
