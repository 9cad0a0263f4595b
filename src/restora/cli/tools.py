"""``restora tools``: the tool catalogue.

Examples:
    restora tools            # a table on a terminal; one line per tool otherwise
    restora tools --json     # every tool's description, parameters schema and availability
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from restora.cli.common import app, print_rows, short_reason


@app.command()
def tools(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """List the tool catalogue: on a terminal a table, otherwise one line per tool (name, task,
    kind, cost, available: yes, or no and why)."""
    from restora.tools import list_tools

    catalogue = [cls.describe() for cls in list_tools().values()]
    if as_json:
        sys.stdout.write(json.dumps(catalogue, indent=2) + "\n")
        return
    rows = [
        [
            d["name"],
            d["task"] if len(d["tasks"]) == 1 else "multi-task",
            "learned" if d["learned"] else "classical",
            f"{d['cost']:g}",
            _available(d),
            d["summary"],
        ]
        for d in catalogue
    ]
    header = ["tool", "task", "kind", "cost", "available", "summary"]
    print_rows("restora tools", header, rows, wrap=["available", "summary"], plain=["tool", "task", "kind", "cost", "available"])


def _available(d: dict) -> str:
    if d["available"]:
        return "yes (needs a GPU)" if d.get("needs_device") else "yes"
    return f"no: {short_reason(str(d['unavailable_reason']))}"
