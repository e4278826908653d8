"""The ``python -m cli`` application: sub-command registry and error-to-exit-status mapping.

Sub-command modules each expose ``command`` (a ``click.Command`` or ``click.Group``); they import
their heavy dependencies inside the command body so start-up stays fast.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import NoReturn

import click

from weltklassebot import __version__
from weltklassebot.errors import WeltklasseError

_COMMAND_MODULES: tuple[str, ...] = (
    "weltklassebot.cli.backtest",
    "weltklassebot.cli.replay",
    "weltklassebot.cli.report",
    "weltklassebot.cli.compare",
    "weltklassebot.cli.snapshot",
    "weltklassebot.cli.risk",
    "weltklassebot.cli.state",
    "weltklassebot.cli.live",
    "weltklassebot.cli.bundle",
    "weltklassebot.cli.service",
    "weltklassebot.cli.doctor",
    "weltklassebot.cli.sweep",
    "weltklassebot.cli.walkforward",
    "weltklassebot.cli.montecarlo",
)


def build_app() -> click.Group:
    @click.group(
        name="python -m cli",
        help="Weltklassebot: deterministic backtests, live simulation and forensic replay.",
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    @click.version_option(__version__, prog_name="weltklassebot")
    def app() -> None:
        pass

    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # sub-command not shipped in this build
            raise
        app.add_command(module.command)
    return app


def fail(message: str, exit_code: int) -> NoReturn:
    """Print one paragraph to stderr and exit with the given status."""
    sys.stderr.write(f"error: {message.rstrip()}\n")
    sys.stderr.flush()
    raise SystemExit(exit_code)


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C so partial outputs are removed, then exit 143."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Terminated


def _user_traceback(exc: BaseException) -> str:
    """The frames of ``exc`` outside weltklassebot (a strategy's own code), as Python prints
    them: what a user needs to debug a strategy, without the engine's frames."""
    import traceback
    from pathlib import Path

    package = str(Path(__file__).resolve().parents[1])
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not str(Path(f.filename).resolve()).startswith(package)]
    if not frames:
        frames = traceback.extract_tb(exc.__traceback__)
    lines = ["Traceback (the strategy's own frames; most recent call last):\n",
             *traceback.format_list(frames), *traceback.format_exception_only(exc)]
    return "".join(lines)


def run(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI and exit with the DESIGN section 3 status."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["live"]:
        # The service stops cleanly whenever the signal comes: noted now, acted on once it runs.
        from weltklassebot.service import shutdown

        signal.signal(signal.SIGTERM, shutdown.request)
        signal.signal(signal.SIGINT, shutdown.request)
    else:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app = build_app()
    except Terminated:  # SIGTERM while the commands are still being imported
        sys.stderr.write("terminated (SIGTERM) before the command started: nothing was done\n")
        raise SystemExit(0 if args[:1] == ["live"] else 143) from None
    if not args:
        # No command: show what there is (stdout, success), like `--help`.
        with click.Context(app, info_name="python -m cli") as ctx:
            click.echo(app.get_help(ctx))
        raise SystemExit(0)
    try:
        result = app.main(args=args, prog_name="python -m cli", standalone_mode=False)
    except WeltklasseError as exc:
        if os.environ.get("WELTKLASSE_DEBUG") and exc.__cause__ is not None:
            sys.stderr.write(_user_traceback(exc.__cause__))
        fail(exc.message, exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        sys.stderr.write("interrupted: nothing was left half-written\n")
        raise SystemExit(130) from None
    except Terminated:
        sys.stderr.write("terminated (SIGTERM): nothing was left half-written\n")
        # The service counts SIGTERM as a clean stop whenever it comes (systemd expects 0).
        raise SystemExit(0 if args[:1] == ["live"] else 143) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.ClickException as exc:
        hint = ""
        if isinstance(exc, click.exceptions.UsageError) and exc.ctx is not None:
            hint = f" Try '{exc.ctx.command_path} --help'."
        fail(exc.format_message() + hint, 2)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
    except MemoryError:
        fail("out of memory. Nothing was left half-written; free memory or use a smaller "
             "snapshot and run again.", 3)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        fail(f"I/O error{where}: {exc.strerror or exc}. Nothing already on disk was changed; "
             "check disk space and permissions and run again.", 3)
    except Exception as exc:
        if os.environ.get("WELTKLASSE_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc}. This is a bug in weltklassebot; "
             "run again with WELTKLASSE_DEBUG=1 for a traceback and report it with the run's "
             "command line.", 3)
    raise SystemExit(result if isinstance(result, int) else 0)
