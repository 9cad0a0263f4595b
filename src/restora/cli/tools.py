"""``restora tools``: the tool catalogue.

Examples:
    restora tools            # a table
    restora tools --json     # every tool's description, parameters schema and availability
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from restora.cli.common import app, out


@app.command()
def tools(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """List the tool catalogue."""
    from rich.markup import escape as rich_escape

    from restora.tools import list_tools

    catalogue = [cls.describe() for cls in list_tools().values()]
    if as_json:
        sys.stdout.write(json.dumps(catalogue, indent=2) + "\n")
        return
    table = Table(title="restora tools")
    for col in ("tool", "task", "kind", "cost", "available", "summary"):
        table.add_column(col)
    for d in catalogue:
        table.add_row(
            d["name"],
            d["task"] if len(d["tasks"]) == 1 else f"any of {len(d['tasks'])} (task param)",
            "learned" if d["learned"] else "classical",
            f"{d['cost']:g}",
            "yes" if d["available"] else f"no: {rich_escape(str(d['unavailable_reason']))}",
            rich_escape(d["summary"]),
        )
    out.print(table)
