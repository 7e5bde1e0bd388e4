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
    """Attention modules, backbones and common options, as `senet list` prints them."""
    data = catalogue()
    attention = TableData(
        title="Attention modules (prefix of the model name)",
        headers=("name", "paper", "placed at", "options (-o KEY=VALUE)"),
        rows=tuple(
            (a["name"], f"{a['title']}\n{a['paper']}",
             a["placement"].replace("; ", "\n")
             + (f"\n--ratio default {a['default_ratio']}" if a["uses_ratio"] else ""),
             "\n".join(_option_line(o) for o in a["options"]) or "none")
            for a in data["attention"]
        ),
        left_columns=4,
        wrapped_from=1,
    )
    backbones = TableData(
        title="Backbones",
        headers=("name", "description", "stages", "classes", "input", "min input"),
        rows=tuple(
            (b["name"], b["description"], str(b["stages"]), str(b["num_classes"]), str(b["input"]), str(b["min_input"]))
            for b in data["backbones"]
        ),
        left_columns=2,
    )
    common = TableData(
        title=f"Names: {GRAMMAR}. Options every model takes",
        headers=("option", "default", "meaning"),
        rows=tuple((o["name"], o["default"], o["help"]) for o in data["common_options"]),
        left_columns=3,
        caption=f"{len(data['models'])} models; 'senet list --format json' lists them all.",
    )
    return [attention, backbones, common]


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
