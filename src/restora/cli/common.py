"""What every command shares: the Typer app, the two consoles, the one place that turns library
errors into messages and exit codes, the progress display, tables (or plain lines when stdout is
not a terminal) and the expansion of input files and folders.

Exit codes: 0 done; 1 some inputs failed (each is named on stderr); 2 the command could not start
(a bad argument, a missing folder, a bad environment variable); 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from restora.batch import Input

app = typer.Typer(
    help="restora: agentic image restoration (perceive, plan, restore, score, roll back).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from restora import __version__

        out.print(f"restora {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")] = False,
) -> None:
    """restora: agentic image restoration (perceive, plan, restore, score, roll back)."""

USAGE_ERRORS: tuple[type[BaseException], ...] = (RestoraError, ValueError, KeyError, TypeError, FileNotFoundError, FileExistsError)
"""Errors that mean "this command cannot run as asked": a message and exit code 2."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr; return the Exit to raise (``raise fail(...)``)."""
    err.print(f"[red]error:[/] {escape_markup(message)}", highlight=False, soft_wrap=True)
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


def print_rows(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    wrap: Sequence[str] = (),
    plain: Sequence[str] | None = None,
) -> None:
    """Print ``rows`` on stdout: on a terminal, a table that fits its width (the ``wrap`` columns
    wrap and share what the others leave; without room for them, the table keeps only the
    ``plain`` columns, then falls back to plain lines); otherwise plain lines: a header and one
    line per row with the ``plain`` columns (default: all) padded two spaces apart and never
    wrapped, for ``grep``, ``cut`` and logs.

    Examples:
        >>> print_rows("tools", ["tool", "available"], [["denoise_nlm", "yes"]])   # doctest: +SKIP
        TOOL         AVAILABLE
        denoise_nlm  yes
    """
    plain = list(plain if plain is not None else header)
    widths = {name: max([len(name), *(len(str(r[i])) for r in rows)]) for i, name in enumerate(header)}

    def fits(columns: Sequence[str]) -> bool:
        need = sum(widths[c] if c not in wrap else min(widths[c], MIN_WRAP_WIDTH) for c in columns) + 3 * len(columns) + 1
        return need <= out.width

    columns = next((c for c in (list(header), plain) if out.is_terminal and fits(c)), None)
    if columns is not None:
        from rich.table import Table

        natural = sum(widths[c] for c in columns) + 3 * len(columns) + 1
        table = Table(title=title, expand=natural > out.width)  # expanded, the ratios share the room
        for name in columns:
            if name in wrap:  # they share what is left, in proportion to their longest text
                table.add_column(name, overflow="fold", ratio=widths[name], min_width=min(widths[name], MIN_WRAP_WIDTH))
            else:
                table.add_column(name, no_wrap=True, min_width=widths[name])
        for r in rows:
            table.add_row(*(escape_markup(str(r[header.index(c)])) for c in columns))
        out.print(table)
        return
    keep = [header.index(c) for c in plain]
    lines = [[header[i].upper() for i in keep], *([str(r[i]) for i in keep] for r in rows)]
    pads = [max(len(line[j]) for line in lines) for j in range(len(keep))]
    for line in lines:
        text = "  ".join([*(c.ljust(w) for c, w in zip(line[:-1], pads[:-1], strict=True)), line[-1]])
        out.print(text, markup=False, highlight=False, soft_wrap=True)


# -- the model planner's options: one declaration for run, chat, bench and eval --------------------
PlannerURL = Annotated[str | None, typer.Option(help="vlm: the server's base URL, e.g. http://127.0.0.1:8000/v1")]
PlannerModel = Annotated[str | None, typer.Option(help="hf: a local checkpoint folder; vlm: the served model (or LoRA module) name")]
PlannerKey = Annotated[str | None, typer.Option(help="vlm: API key (default: $RESTORA_PLANNER_KEY, else none)")]
PlannerAdapter = Annotated[str | None, typer.Option(help="hf: a LoRA adapter from `restora train planner` (its run folder, adapter/ or planner card id)")]
PlannerTimeout = Annotated[float, typer.Option(min=1, help="vlm: seconds per request")]
PlannerDecoding = Annotated[
    str, typer.Option(help="hf: auto (replies constrained to the JSON schema by xgrammar when it is installed), constrained (require xgrammar) or free (the raw model)")
]


MIN_WRAP_WIDTH = 24
"""A wrapping table column narrower than this reads badly: :func:`print_rows` drops it instead."""


def escape_markup(text: str) -> str:
    """``text`` with rich markup characters escaped (file names, reasons)."""
    from rich.markup import escape

    return escape(text)


def short_reason(reason: str) -> str:
    """The gist of an "unavailable" reason, for a table cell or a plain line.

    Examples:
        >>> short_reason("model card 'scunet-x': weights not found (no local copy); run `restora zoo fetch scunet-x` on ...")
        'weights not found: restora zoo fetch scunet-x'
    """
    head = re.sub(r"\s*\([^)]*\)", "", reason.split(";")[0])
    head = re.sub(r"^model card '[^']+': ", "", head).strip()
    fix = re.search(r"`(restora [^`]+)`", reason)  # the first command that makes it available
    return f"{head}: {fix.group(1)}" if fix else head


def gather_inputs(paths: Sequence[Path], unique: bool = True) -> list[Input]:
    """Files and folders -> the inputs (:func:`restora.batch.expand_inputs`; ``unique``: two
    inputs may not share an output name); a folder holding no image is an error naming it.

    Examples:
        >>> gather_inputs([Path("photos/"), Path("cat.jpg")])   # doctest: +SKIP
        [Input(path=PosixPath('photos/a.png'), name=PosixPath('a')), Input(path=PosixPath('cat.jpg'), ...)]
    """
    from restora.batch import expand_inputs
    from restora.data import IMAGE_SUFFIXES

    for p in map(Path, paths):
        if p.is_dir() and not any(f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() for f in p.rglob("*")):
            raise RestoraError(f"no images in folder {p} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, in subfolders too)")
    return expand_inputs(list(paths), unique=unique)


class StopOnCtrlC:
    """Ctrl-C (SIGINT) while a command works through images: the first press prints ``message``,
    is noted (``pressed``) and calls ``on_first``; a second raises ``KeyboardInterrupt`` at once;
    later ones are ignored while that is cleaned up. Outside the main thread, or where SIGINT is
    ignored (a background job), it changes nothing.

    Examples:
        >>> with StopOnCtrlC("Ctrl-C: stopping after this image") as ctrl_c:   # doctest: +SKIP
        ...     for image in images:
        ...         if ctrl_c.pressed:
        ...             break
        ...         work(image)
    """

    def __init__(self, message: str, on_first: Callable[[], None] | None = None) -> None:
        self.message, self.on_first = message, on_first
        self.presses = 0
        self._previous: Any = None

    @property
    def pressed(self) -> bool:
        return self.presses > 0

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.presses += 1
        if self.presses == 1:
            if self.on_first is not None:
                self.on_first()
            err.print(self.message, highlight=False, soft_wrap=True)
        elif self.presses == 2:
            raise KeyboardInterrupt
