"""The ``edgeirst`` command. Subcommands live one per module and load lazily, so
``edgeirst --help`` imports neither torch nor tensorrt.

Errors a user can cause end as one ``error: ...`` line on stderr and exit status 2 (OS errors
such as a full disk or an unwritable folder too, naming the path; a missing optional dependency
names the extra that installs it); warnings are one
``warning: ...`` line each. After SIGINT the exit status is 130, after SIGTERM 143, in every
command (as a shell reports a process killed by the signal).
"""

from __future__ import annotations

import importlib
import signal
import sys
import warnings

import click
from tqdm import tqdm

from edgeirst import __version__
from edgeirst.errors import EdgeirstError, EdgeirstWarning, missing_module
from edgeirst.io import command_scope, os_error

# click >= 8.2 raises this for a bare `edgeirst` in non-standalone mode; older versions print help.
_NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())

# name -> (module, one-line help). Each module defines `command`.
COMMANDS = {
    "zoo": ("edgeirst.cli.zoo", "List the model zoo with params and FLOPs."),
    "data": ("edgeirst.cli.data", "Inspect datasets, write COCO annotations, generate synthetic IR data."),
    "train": ("edgeirst.cli.train", "Train a model from the zoo on a SIRST-style dataset."),
    "eval": ("edgeirst.cli.eval", "Evaluate a model or saved predictions: IoU, nIoU, Pd, Fa, AP50, AP."),
    "export": ("edgeirst.cli.export", "Export a checkpoint to ONNX with its metadata inside."),
    "calibrate": ("edgeirst.cli.calibrate", "Calibrated target confidences and a threshold for a false-alarm budget."),
    "prune": ("edgeirst.cli.prune", "Structured pruning of a checkpoint, fine-tuned, with a before/after table."),
    "quantize": ("edgeirst.cli.quantize", "INT8/FP16 quantization of an ONNX model, checked against FP32."),
    "run": ("edgeirst.cli.run", "Detect targets on a live or recorded stream."),
    "demo": ("edgeirst.cli.demo", "Run the shipped default model on a synthetic stream and save a video."),
    "bench": ("edgeirst.cli.bench", "Compare models by params, GMACs, latency, FPS, memory and accuracy."),
    "deploy": ("edgeirst.cli.deploy", "Bundle a model for a Jetson profile; push, install and start it over SSH."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        ctx.meta["edgeirst.command"] = name
        return importlib.import_module(COMMANDS[name][0]).command

    def invoke(self, ctx: click.Context):
        # One place for every command: an optional dependency that is not installed (a core
        # `pip install edgeirst` has no torch or onnx) ends as one line naming the extra.
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as e:
            error = missing_module(e, ctx.meta.get("edgeirst.command"))
            if error is None:
                raise
            raise error from e

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so listing commands imports nothing.
        with formatter.section("Commands"):
            formatter.write_dl([(n, h) for n, (_, h) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeirst")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Infrared small-target detection, from training to a camera stream on a Jetson."""
    # Every write of the command checks its output against the inputs the command names
    # (edgeirst.io.protect_inputs); the scope ends with the command.
    ctx.with_resource(command_scope())


class Terminated(Exception):
    """SIGTERM, raised in the main thread like KeyboardInterrupt is for SIGINT."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, EdgeirstWarning):
        tqdm.write(f"warning: {message}", file=sys.stderr)  # on its own line, above any progress bar
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one `error:` line and exit status 2."""

    # warnings shown as `warning:` lines and SIGTERM as an exception while a command runs; an
    # in-process caller (tests, a notebook) gets its own warning display and SIGTERM handler back
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        warnings.simplefilter("default", EdgeirstWarning)  # once per distinct message
        sigterm = signal.getsignal(signal.SIGTERM)
        if sigterm == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            _run(argv)
        finally:
            if sigterm == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, sigterm)


def _nul_argument(argv: list[str]) -> EdgeirstError | None:
    """The error for an argument with a NUL byte (no file name, URL or value can hold one; the OS
    would refuse it deep inside a command with "embedded null byte"), naming its option."""
    for i, arg in enumerate(argv):
        if "\0" in arg:
            if arg.startswith("--") and "=" in arg:
                name, _, arg = arg.partition("=")
            else:
                name = argv[i - 1] if i and argv[i - 1].startswith("-") else "argument"
            return EdgeirstError(f"{name} {arg!r} contains a NUL byte; no file name or value can")
    return None


def _run(argv: list[str] | None) -> None:
    try:
        error = _nul_argument(list(sys.argv[1:] if argv is None else argv))
        if error:
            raise error
        cli.main(args=argv, prog_name="edgeirst", standalone_mode=False)
    except EdgeirstError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except Terminated:
        click.echo("error: terminated", err=True)
        sys.exit(143)
    except ValueError as e:  # a NUL byte from a config or list file reaches the OS: one line, the rest are bugs
        if "null byte" not in str(e) and "null character" not in str(e):
            raise
        click.echo(f"error: a file name read from a configuration or list contains a NUL byte ({e})", err=True)
        sys.exit(2)
    except OSError as e:  # a full disk, an unwritable folder, a folder where a file was expected...
        if isinstance(e, BrokenPipeError):
            sys.exit(0)
        click.echo(f"error: {os_error(e, action='access')}", err=True)
        sys.exit(2)
    except _NO_ARGS as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(0)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
