"""The `ewaste` command: thin commands over the public Python API, one-line errors with exit codes.

Heavy libraries (xarray, scipy, dask) are imported inside the commands, so `ewaste --help` starts fast.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import click

from ..errors import EwasteError
from ..version import __version__
from .commands import grid, info, run, scenarios, sensitivity, summary, validate
from .diff import diff
from .disclose import disclose
from .report import plot, report


@click.group()
@click.version_option(__version__, prog_name="ewaste")
def cli() -> None:
    """E-waste, materials, recycling and energy of AI hardware, with a cohort stock-flow model."""


for command in (run, summary, sensitivity, report, plot, disclose, diff, grid, validate, scenarios, info):
    cli.add_command(command)


class Stopped(BaseException):
    """SIGTERM or SIGHUP, raised where the program is so that it unwinds like Ctrl-C: every `finally`
    runs (temporary files removed, claims released). A BaseException, as KeyboardInterrupt is, so
    that no `except Exception` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _stop(signum: int, frame: object) -> None:
    for sig in STOP_SIGNALS:  # one is enough: a second must not interrupt the clean-up
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


def _log_to_stderr() -> None:
    """ewaste's INFO lines (such as building the compiled engine on first use) on standard error."""
    log = logging.getLogger("ewaste")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("ewaste: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def main() -> None:
    """Entry point: bad input -> one line on stderr and exit code 2, never a traceback; SIGTERM and
    SIGHUP -> temporary files removed, one line, exit code 128 + the signal's number."""
    _log_to_stderr()
    before = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    try:
        _main()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _main() -> None:
    try:
        cli.main(standalone_mode=False)
    except Stopped as exc:
        _say(f"ewaste: stopped by {signal.Signals(exc.signum).name}")
        sys.exit(128 + exc.signum)
    except EwasteError as exc:
        click.echo(f"ewaste: error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except click.exceptions.Abort:
        click.echo("ewaste: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors: one line too, exit 2
        click.echo(f"ewaste: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: say so in one line, traceback on request
        if os.environ.get("EWASTE_DEBUG"):
            raise
        click.echo(
            f"ewaste: internal error: {exc.__class__.__name__}: {exc} (set EWASTE_DEBUG=1 for a traceback)", err=True
        )
        sys.exit(1)


def _say(line: str) -> None:
    """A last line on stderr, if there is still somewhere to write it (SIGHUP: the terminal is gone)."""
    try:
        click.echo(line, err=True)
    except OSError:
        pass
