"""The ``tlt`` command line: argument parsing and error reporting, no stage logic.

The parser is built from two tables: ``COMMANDS`` (network-independent commands) and
``TASK_COMMANDS`` (``tlt <network> <task>`` for every network of
``tlt_core.networks.NETWORKS``). Each command lives in its own module exposing
``register(subparsers)`` (tasks: ``register(subparsers, network)``); the module adds its parser
and sets ``func`` (a callable taking the parsed ``argparse.Namespace``; task parsers also
carry ``args.network``). Command modules import TensorFlow and other heavy packages inside
``func`` only, so ``tlt --help`` stays fast; ``Command.needs_tensorflow`` says which commands
get TensorFlow imported before they run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tlt_core import __version__
from tlt_core.errors import TltError
from tlt_core.io_utils import user_path_error


@dataclass(frozen=True)
class Command:
    """A command module (exposing ``register``) and whether it needs TensorFlow: those that
    do get it imported (quietly) before they run; the others must never import it."""

    module: str
    needs_tensorflow: bool


# Top-level commands that are not a network's task (name -> command).
COMMANDS: dict[str, Command] = {
    "sample-data": Command("tlt_core.cli.sample_data", needs_tensorflow=False),
    "dataset-convert": Command("tlt_core.cli.dataset_convert", needs_tensorflow=False),
    "evaluate-labels": Command("tlt_core.cli.evaluate_labels", needs_tensorflow=False),
    "pipeline": Command("tlt_core.cli.pipeline", needs_tensorflow=False),
}

# ``tlt <network> <task>``: every network of ``tlt_core.networks.NETWORKS`` gets the tasks
# it lists, each from one shared module (``register(subparsers, network)``).
TASK_COMMANDS: dict[str, Command] = {
    "train": Command("tlt_core.cli.train", needs_tensorflow=True),
    "evaluate": Command("tlt_core.cli.evaluate", needs_tensorflow=True),
    "inference": Command("tlt_core.cli.inference", needs_tensorflow=True),
    "prune": Command("tlt_core.cli.prune", needs_tensorflow=True),
    "export": Command("tlt_core.cli.export", needs_tensorflow=True),
}


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add every top-level command and every ``<network> <task>`` pair to ``subparsers``."""
    from tlt_core.networks import NETWORKS

    for command in COMMANDS.values():
        importlib.import_module(command.module).register(subparsers)
    for network in NETWORKS.values():
        parser = subparsers.add_parser(network.name, help=network.title)
        parser.set_defaults(network=network.name)
        tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
        for task in network.tasks:
            command = TASK_COMMANDS[task]
            importlib.import_module(command.module).register(tasks, network)


def needs_tensorflow(args: argparse.Namespace) -> bool:
    """Whether the parsed command is one that imports TensorFlow."""
    if getattr(args, "task", None) is not None:
        return TASK_COMMANDS[args.task].needs_tensorflow
    return COMMANDS[args.command].needs_tensorflow


def build_parser() -> argparse.ArgumentParser:
    from tlt_core.networks import NETWORKS

    parser = argparse.ArgumentParser(
        prog="tlt",
        description="Transfer Learning Toolkit workflow, open edition. Networks: "
        + ", ".join(NETWORKS)
        + " (tlt <network> <task>).",
    )
    parser.add_argument("--version", action="version", version=f"tlt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_commands(subparsers)
    return parser


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the stream that
    was current at set-up (an embedding program or a test may swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(verbose: bool = False) -> None:
    handler = _CurrentStderrHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )


# Exit status of a command stopped by SIGTERM (128 + 15), as a shell reports it.
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM, like KeyboardInterrupt by SIGINT: every
    ``finally`` and ``with`` on the way out runs, so temporary files, half-written shards
    and PathResolver's ``/tmp/tlt-paths-*`` are removed before the process exits."""


def _raise_terminated(signum, _frame) -> None:
    # A second SIGTERM must not interrupt the clean-up the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(signum)


def _redeliver_swallowed_sigterm(unraisable) -> None:
    """``sys.unraisablehook`` while SIGTERM raises: a Python signal handler runs between any
    two bytecodes, also inside a gc callback, a ``__del__`` or a weakref callback, where the
    interpreter prints and drops the exception ("Exception ignored in"). Seen during export:
    the handler ran in JAX's gc callback, Terminated was lost, SIGTERM was ignored from then
    on and the command finished with status 0. The signal is sent again, from another
    thread a moment later (sent from here, it would be handled here, and dropped again), so
    that it is raised in the code that was running."""
    if isinstance(unraisable.exc_value, Terminated):
        signal.signal(signal.SIGTERM, _raise_terminated)
        resend = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM))
        resend.daemon = True
        resend.start()
        return
    _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the block (Kubernetes evicts pods with
    SIGTERM). Training installs its own handler inside, to checkpoint before stopping."""
    global _previous_unraisablehook
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (an embedding program): leave signals alone
        yield
        return
    _previous_unraisablehook, sys.unraisablehook = sys.unraisablehook, _redeliver_swallowed_sigterm
    try:
        yield
    finally:
        sys.unraisablehook = _previous_unraisablehook
        signal.signal(signal.SIGTERM, previous)


def run_command(func, args: argparse.Namespace, prog: str = "tlt") -> int:
    """Run a command function, turning every error into one line and an exit code."""
    try:
        with sigterm_raises():
            result = func(args)
    except TltError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{prog}: terminated (SIGTERM); partial outputs removed", file=sys.stderr)
        return EXIT_TERMINATED
    except OSError as error:
        if error.filename is None:  # not about a path the user gave: a bug
            return _internal_error(prog, error)
        mapped = user_path_error(error)
        print(f"{prog}: error: {mapped}", file=sys.stderr)
        return mapped.exit_code
    except Exception as error:  # a bug, not bad input: still one line unless asked
        return _internal_error(prog, error)
    return int(result or 0)


def _internal_error(prog: str, error: Exception) -> int:
    if os.environ.get("TLT_DEBUG"):
        raise error
    print(
        f"{prog}: internal error: {type(error).__name__}: {error} "
        "(set TLT_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    # `tlt -v ...`, or a task's own --verbose (TLT's `tlt ssd export --verbose`).
    configure_logging(getattr(args, "verbose", False) or getattr(args, "task_verbose", False))

    def start_and_run(args: argparse.Namespace):
        # Inside run_command, so SIGTERM and errors during TensorFlow's import are handled.
        if needs_tensorflow(args):
            from tlt_core.cli._common import select_gpus
            from tlt_core.tfquiet import import_tensorflow_quietly

            select_gpus(getattr(args, "gpu_index", None))  # before TensorFlow sees the GPUs

            import_tensorflow_quietly()
        return args.func(args)

    return run_command(start_and_run, args)


if __name__ == "__main__":
    sys.exit(main())
