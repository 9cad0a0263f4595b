"""What every command shares: the Typer app, the two consoles, the one place that turns library
errors into messages and exit codes, and the progress display.

Exit codes: 0 done; 1 some inputs failed (each is named on stderr); 2 the command could not start
(a bad argument, a missing folder, a bad environment variable).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on a model hub from the CLI

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from restora.errors import RestoraError

app = typer.Typer(
    help="restora: agentic image restoration (perceive, plan, restore, score, roll back).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

USAGE_ERRORS: tuple[type[BaseException], ...] = (RestoraError, ValueError, KeyError, TypeError, FileNotFoundError, FileExistsError)
"""Errors that mean "this command cannot run as asked": a message and exit code 2."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr; return the Exit to raise (``raise fail(...)``)."""
    err.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def user_errors(code: int = 2, catch: tuple[type[BaseException], ...] = USAGE_ERRORS) -> Iterator[None]:
    """The one error translator: a library error inside becomes ``error: <message>`` and exit
    ``code``; anything else is a bug and keeps its traceback.

    Examples:
        >>> with user_errors():                 # doctest: +SKIP
        ...     ToolBox(allow=["denoise_nlmm"])  # -> "error: unknown tool 'denoise_nlmm'; did you mean ..."
    """
    try:
        yield
    except catch as e:
        message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        raise fail(message, code) from None


def report_failure(what: object, reason: str) -> None:
    """One line on stderr for an input that failed (the run goes on)."""
    reason = reason.removeprefix(f"{what}: ")
    err.print(f"FAILED {what}: {reason}", highlight=False, soft_wrap=True)


def split_csv(value: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None stays None."""
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def command_line() -> str | None:
    """The restora command as typed (for results and dataset cards); None outside the console script."""
    return " ".join(["restora", *sys.argv[1:]]) if sys.argv and "restora" in sys.argv[0] else None


def progress_bar(quiet: bool) -> Progress:
    """A bar for a batch of items (bench, synth): description, count, elapsed, the last item."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err,
        disable=quiet,
    )


def advance(progress: Progress, task: Any, line: str, quiet: bool, step: int = 1) -> None:
    """Advance the bar showing ``line``; without a terminal (CI logs, nohup) the live bar does not
    draw, so print one line per item instead."""
    progress.update(task, advance=step, last=line)
    if quiet or err.is_terminal:
        return
    t = progress.tasks[task]
    err.print(f"[{t.completed:.0f}/{t.total or 0:.0f} {t.elapsed or 0:.0f}s] {line}", highlight=False, markup=False)


def advance_to(progress: Progress, task: Any, done: int, line: str, quiet: bool, log_every: int) -> None:
    """Move the bar to ``done`` showing ``line``; without a terminal, a log line every
    ``log_every`` items and at the end (one per item would flood a log)."""
    if done % log_every == 0 or done == progress.tasks[task].total:
        advance(progress, task, line, quiet, step=done - int(progress.tasks[task].completed))
    else:
        progress.update(task, completed=done, last=line)
