"""``python -m restora.cli``: the same as the ``restora`` command."""

from restora.cli import app

app(prog_name="restora")
