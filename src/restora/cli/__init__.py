"""The `restora` command line: one module per command group, all thin faces on the library.

``common`` holds the Typer app, the consoles, the one error translator (library errors become
``error: <message>`` and an exit code) and the progress display.

Examples:
    restora run photo.jpg -o out/                # restore, write out/photo.png, .trace.jsonl, .html
    restora chat photo.jpg                       # restore by talking: 'remove the rain', /undo, /save
    restora tools --json                         # the tool catalogue
    restora perceive photo.jpg --json            # what is wrong with an image
    restora bench mio --clean DIR --out OUT      # the benchmark
    restora synth --clean DIR --out OUT --n 500  # planner training data
    restora zoo list                             # model cards
    restora --version
"""

from restora.cli import run, batch, chat, tools, perceive, degrade, bench, synth, train, zoo, web  # noqa: F401, I001 - registers the commands, in help order
from restora.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app()
