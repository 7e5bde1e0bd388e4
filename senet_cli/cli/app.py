"""The `senet` application: assembles the commands and turns user errors into one line, exit 2.

Only typer and the torch-free parts of the package are imported here; each command imports torch
inside its own function, so `senet --help` starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from senet_cli._version import __version__
from senet_cli.atomic import committed_together, remove_pending
from senet_cli.cli import calibrate_cmd, convert_cmd, count_cmd, inspect_cmd, list_cmd, profile_cmd, prune_cmd
from senet_cli.cli.errors import MAKE_A_CHECKPOINT, resource_message
from senet_cli.cli.errors import message as error_line
from senet_cli.cli.output import PLOT_HERE, quiet_rank
from senet_cli.errors import SenetError, closest_match
from senet_cli.render.tables import printable

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


def _help(command: Callable[..., Any]) -> str:
    """A command's docstring as typer's help: each paragraph on one line, so the help wraps at the
    terminal's width instead of breaking where the source line happened to end."""
    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


app.command("list", help=_help(list_cmd.list_command))(list_cmd.list_command)
app.command("count", help=_help(count_cmd.count_command))(count_cmd.count_command)
app.command("profile", help=_help(profile_cmd.profile_command))(profile_cmd.profile_command)
app.command("inspect", help=_help(inspect_cmd.inspect_command))(inspect_cmd.inspect_command)
app.command("prune", help=_help(prune_cmd.prune_command))(prune_cmd.prune_command)
app.command("convert", help=_help(convert_cmd.convert_command))(convert_cmd.convert_command)
app.command("calibrate", help=_help(calibrate_cmd.calibrate_command))(calibrate_cmd.calibrate_command)


_TYPE_COLUMNS = {kind: kind.display_type_rich for kind in (typer.core.TyperOption, typer.core.TyperArgument)}


def _type_column(param: Any, ctx: Any) -> str | None:
    """What typer's rich help prints in a parameter's type column, less two things that mislead: a
    flag (--force, --amp, --help) takes no `<bool>` value, and a list argument (the model names,
    whose name already ends in '...') is not typed `<list[str]>`; `<int range> [x>=1]` is `<int> [x>=1]`."""
    if getattr(param, "is_flag", False) or (param.param_type_name == "argument" and param.nargs != 1):
        return None
    shown = _TYPE_COLUMNS[type(param)](param, ctx)
    return shown.replace(" range>", ">") if shown else shown  # '<int> [x>=1]': the bound says it is a range


typer.core.TyperOption.display_type_rich = _type_column  # type: ignore[method-assign,assignment]
typer.core.TyperArgument.display_type_rich = _type_column  # type: ignore[method-assign,assignment]


def fail(message: str) -> None:
    """Print one line on stderr and exit with code 2 (a user error, as Click's usage errors); under
    torchrun only rank 0 prints, as every rank meets the same error. The message is escaped
    (`printable`): it may quote a name or path read from a file."""
    if not quiet_rank():
        sys.stderr.write(f"senet: error: {printable(message)}\n")
    raise SystemExit(2)


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived. A BaseException, so no `except Exception` in the work
    swallows it; typer turns KeyboardInterrupt into a silent exit code, so SIGINT raises this too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def _on_signal(signum: int, frame: object) -> None:
    remove_pending()  # even if the exception below is caught and lost somewhere, no temporary file stays
    for name in _SIGNALS:  # a second signal must not interrupt the cleanup the first one started
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is _on_signal:
            signal.signal(number, _after_interrupt)
    raise Interrupted(signum)


def _after_interrupt(signum: int, frame: object) -> None:
    remove_pending()


@contextlib.contextmanager
def _signals_interrupt(ending: bool = False) -> Iterator[None]:
    """While a command runs, SIGINT, SIGTERM and SIGHUP raise `Interrupted` (a signal the process
    inherited as ignored, as nohup's SIGHUP, stays ignored); the previous handlers come back after,
    unless a signal arrived: then later ones only remove temporary files, and are ignored once the
    command's cleanup is done, until the process has ended, so Ctrl-C held down during a write gives
    one line and exit 130, not KeyboardInterrupt tracebacks from atexit handlers and death by SIGINT.
    With `ending` (the console script: the process ends with the command) they are ignored after the
    command in any case: a Ctrl-C between a finished command and the exit changes nothing any more."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in _SIGNALS:
        number = getattr(signal, name, None)
        if number is None or signal.getsignal(number) is signal.SIG_IGN:
            continue
        previous[number] = signal.signal(number, _on_signal)
    try:
        yield
    finally:
        for number, handler in previous.items():
            if ending or signal.getsignal(number) is _after_interrupt:
                # interrupted, cleanup done, the process is ending: ignored, not restored, since Python's
                # finalization resets a Python handler (not SIG_IGN) to SIG_DFL, where one more Ctrl-C
                # of a held-down key kills the process by SIGINT after its one line
                signal.signal(number, signal.SIG_IGN)
                continue
            signal.signal(number, handler)


OPTIONAL_VALUES = {("inspect", "--plot"): PLOT_HERE, ("count", "--plot"): PLOT_HERE, ("profile", "--plot"): PLOT_HERE}
"""Options whose value may be left out, and what they then get. typer's Click has no options with
optional values, so `_fill_optional_values` writes the value in before parsing."""


FIGURE_SUFFIXES = frozenset({".png", ".svg", ".pdf", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp",
                             ".gif", ".bmp"})
"""What a word after `--plot` ends in to be read as the figure's path: any image format, so that
`--plot fig.jpg` is refused as a format (check_plot_path) rather than taken for a checkpoint."""


def _fill_optional_values(argv: list[str]) -> list[str]:
    """`inspect ckpt.pth --plot` (last, or followed by another option, or by a word that is not a
    figure's path: `inspect --plot ckpt.pth`, `count --plot se_resnet50`) -> `--plot=<its value
    when left out>`; a following figure path (g.png) is the option's value, as before."""
    command = next((word for word in argv if not word.startswith("-")), None)
    filled: list[str] = []
    for index, word in enumerate(argv):
        if word == "--":
            return filled + argv[index:]
        value = OPTIONAL_VALUES.get((command, word)) if command else None
        following = argv[index + 1] if index + 1 < len(argv) else None
        takes_following = following is not None and not following.startswith("-") and (
            os.path.splitext(following)[1].lower() in FIGURE_SUFFIXES)
        filled.append(f"{word}={value}" if value is not None and not takes_following else word)
    return filled


def available_memory() -> int | None:
    """Bytes this process could still get: MemAvailable + SwapFree (Linux), None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in stream if line.split()[1:2]}
    except (OSError, ValueError):
        return None
    if "MemAvailable" not in fields:
        return None
    return fields["MemAvailable"] + fields.get("SwapFree", 0)


@contextlib.contextmanager
def _host_memory_capped(args: list[str]) -> Iterator[None]:
    """Lower the soft RLIMIT_DATA to what the machine can still give, for a command that stays on
    the CPU: an allocation beyond it then fails at once (a one-line 'out of memory'), where Linux
    would let it through and the OOM killer end the run (or a neighbour) later. Not with CUDA,
    whose driver maps host memory of its own."""
    if any("cuda" in word for word in args):
        yield
        return
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        with open("/proc/self/status", encoding="ascii") as stream:
            used = next(int(line.split()[1]) * 1024 for line in stream if line.startswith("VmData:"))
    except (ImportError, OSError, StopIteration, ValueError):
        yield
        return
    free = available_memory()
    cap = None if free is None else used + free
    if cap is None or (soft != resource.RLIM_INFINITY and soft <= cap) or (
            hard != resource.RLIM_INFINITY and hard < cap):
        yield
        return
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


_NOT_ONE_OF = re.compile(r"'(?P<value>[^']*)' is not one of (?P<choices>(?:'[^']*'(?:, )?)+)\.")
"""Click's refusal of a value outside an option's choices (its words, matched by shape)."""


def _with_close_match(text: str) -> str:
    """Click's "'V1' is not one of 'v1.5', 'v1', ..." with the closest choice added, as our own
    choice errors have it (case ignored)."""
    found = _NOT_ONE_OF.search(text)
    if found is None:
        return text
    choices = re.findall(r"'([^']*)'", found.group("choices"))
    match = closest_match(found.group("value"), choices)
    return text if match is None else f"{text[:found.end() - 1]} (did you mean '{match}'?){text[found.end() - 1:]}"


def _invoke(argv: list[str] | None) -> int:
    """Run the command; Click's usage errors end here as one line (`fail`)."""
    try:
        args = _fill_optional_values(sys.argv[1:] if argv is None else list(argv))
        with _host_memory_capped(args):
            code = app(args=args, prog_name="senet", standalone_mode=False)
    except Exception as error:
        # Click's errors (typer >= 0.20 vendors its own Click, so match by shape, not by class).
        message = getattr(error, "format_message", None)
        if not callable(message) or not hasattr(error, "exit_code"):
            raise
        context = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError":
            text = message()  # building it printed the help already when rich formats it
            if text.strip():
                sys.stdout.write(text + "\n")
            raise SystemExit(0) from None
        where = f" (see '{context.command_path} --help')" if context is not None else ""
        text = " ".join(message().replace("Value error, ", "").split())  # typer validates with pydantic
        if "Missing argument 'checkpoint'" in text:
            text, where = "senet inspect needs a checkpoint file: senet inspect ckpt.pth [--plot [PATH]]", (
                f"; {MAKE_A_CHECKPOINT}")
        fail(_with_close_match(_not_a_number(text, args)) + where)
    return code if isinstance(code, int) else 0


def _not_a_number(text: str, args: list[str]) -> str:
    """Click's range message for nan or inf ("should be less than or equal to 3600", nan being no
    less) said as what it is: the value given is not a finite number."""
    found = re.match(r"Invalid value for '(--[\w-]+)': Input should be (?:less|greater) than", text)
    if not found:
        return text
    values = [b for a, b in zip(args, args[1:], strict=False) if a == found.group(1)]
    values += [a.split("=", 1)[1] for a in args if a.startswith(found.group(1) + "=")]
    for value in values:
        try:
            number = float(value)
        except ValueError:
            continue
        if not math.isfinite(number):
            rule = text[found.end(1) + 3:].replace("Input should", "it should", 1)
            return f"Invalid value for '{found.group(1)}': {value!r} is not a finite number; {rule}"
    return text


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every user error ends as one line on stderr and exit code 2.

    The command's output files (`--output`, `--plot`) are written as temporary files and renamed
    into place together when it succeeds (senet_cli/atomic.py), then listed as "wrote PATH"; an
    error or a signal leaves none of them, and no temporary file. A signal ends the run with one
    line and exit code 128 + its number (130 for Ctrl-C).
    """
    code = 0
    try:
        with _signals_interrupt(ending=argv is None), committed_together() as outputs:
            code = _invoke(argv)
            if code:
                outputs.abandon()
    except SenetError as error:
        fail(error_line(error))
    except Interrupted as interrupt:
        name = signal.Signals(interrupt.signum).name
        sys.stderr.write("senet: interrupted\n" if name == "SIGINT" else f"senet: interrupted by {name}\n")
        raise SystemExit(128 + interrupt.signum) from None
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("senet: interrupted\n")
        raise SystemExit(130) from None
    except (MemoryError, RuntimeError, OverflowError) as error:
        line = resource_message(error)
        if line is None:
            raise
        fail(line)
    if not quiet_rank():
        for path in outputs.written:
            sys.stderr.write(f"wrote {printable(path)}\n")
    raise SystemExit(code)


if __name__ == "__main__":
    main()
