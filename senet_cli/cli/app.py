"""The `senet` application: assembles the commands and turns user errors into one line, exit 2.

Only typer and the torch-free parts of the package are imported here; each command imports torch
inside its own function, so `senet --help` starts in a fraction of a second.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from senet_cli._version import __version__
from senet_cli.cli import convert_cmd, count_cmd, inspect_cmd, list_cmd, profile_cmd
from senet_cli.cli.errors import message as error_line
from senet_cli.cli.output import quiet_rank
from senet_cli.errors import SenetError

app = typer.Typer(
    name="senet",
    help="Build, count, profile and inspect attention-augmented CNNs (SENet, ECA-Net, CBAM, ...).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"senet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """senet: attention modules for CNNs, counted, timed and inspected."""


app.command("list")(list_cmd.list_command)
app.command("count")(count_cmd.count_command)
app.command("profile")(profile_cmd.profile_command)
app.command("inspect")(inspect_cmd.inspect_command)
app.command("convert")(convert_cmd.convert_command)


def fail(message: str) -> None:
    """Print one line on stderr and exit with code 2 (a user error, as Click's usage errors); under
    torchrun only rank 0 prints, as every rank meets the same error."""
    if not quiet_rank():
        sys.stderr.write(f"senet: error: {message}\n")
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every user error ends as one line on stderr and exit code 2."""
    try:
        code = app(args=argv, prog_name="senet", standalone_mode=False)
    except SenetError as error:
        fail(error_line(error))
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("senet: interrupted\n")
        raise SystemExit(130) from None
    except Exception as error:
        # Click's errors (typer >= 0.20 vendors its own Click, so match by shape, not by class).
        message = getattr(error, "format_message", None)
        if not callable(message) or not hasattr(error, "exit_code"):
            raise
        context = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError" and context is not None:
            sys.stdout.write(context.get_help() + "\n")
            raise SystemExit(0) from None
        where = f" (see '{context.command_path} --help')" if context is not None else ""
        fail(" ".join(message().split()) + where)
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
