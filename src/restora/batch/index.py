"""What a batch leaves at the top of its output folder, made from the ledger alone:
``index.html`` (one row per image: before/after thumbnails linking to its page, what was found,
what was done, tool calls, time; failures with their reason; totals), ``summary.json`` and
``summary.csv``. A dry run writes ``dry-run.csv`` and ``dry-run.json`` instead (what was found in
each image and what would be tried).

Examples:
    >>> from restora.batch.ledger import Ledger
    >>> with Ledger.open(Path("out/restora-ledger.sqlite")) as led:   # doctest: +SKIP
    ...     write_index(Path("out"), list(led.rows()))
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from restora.batch.job import side_path
from restora.imageio import write_text_atomic

COLUMNS = ["source", "state", "output", "found", "kept", "tool_calls", "seconds", "attempts", "error"]
DRY_COLUMNS = ["source", "state", "found", "plan", "seconds", "error"]


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per state, tool calls and seconds over ``rows``.

    Examples:
        >>> totals([{"state": "done", "tool_calls": 2, "seconds": 1.5}, {"state": "failed", "tool_calls": 0, "seconds": 0.5}])
        {'inputs': 2, 'done': 1, 'failed': 1, 'skipped': 0, 'pending': 0, 'running': 0, 'tool_calls': 2, 'seconds': 2.0}
    """
    t: dict[str, Any] = {"inputs": len(rows), **dict.fromkeys(("done", "failed", "skipped", "pending", "running"), 0)}
    for r in rows:
        t[r["state"]] = t.get(r["state"], 0) + 1
    t["tool_calls"] = sum(int(r.get("tool_calls") or 0) for r in rows)
    t["seconds"] = round(sum(float(r.get("seconds") or 0) for r in rows), 3)
    return t


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for r in rows:
        w.writerow(["; ".join(r[c]) if isinstance(r.get(c), list) else ("" if r.get(c) is None else r[c]) for c in columns])
    return buf.getvalue()


def _clean(outdir: Path, names: tuple[str, ...]) -> None:
    for n in names:
        for p in Path(outdir).glob(f".{n}.*.part"):  # left by a run killed while writing it
            p.unlink(missing_ok=True)


def write_dry_run(outdir: Path, rows: list[dict[str, Any]]) -> None:
    _clean(outdir, ("dry-run.csv", "dry-run.json"))
    write_text_atomic(outdir / "dry-run.csv", _csv(rows, DRY_COLUMNS))
    write_text_atomic(outdir / "dry-run.json", json.dumps({"totals": totals(rows), "images": [{c: r.get(c) for c in DRY_COLUMNS} for r in rows]}, indent=1))


def write_index(outdir: Path, rows: list[dict[str, Any]], seconds: float = 0.0) -> None:
    """``index.html``, ``summary.json`` and ``summary.csv`` in ``outdir`` (each written atomically)."""
    outdir = Path(outdir)
    _clean(outdir, ("summary.json", "summary.csv", "index.html"))
    t = totals(rows)
    write_text_atomic(outdir / "summary.json", json.dumps({"totals": t, "images": [{c: r.get(c) for c in [*COLUMNS, "name", "notes"]} for r in rows]}, indent=1))
    write_text_atomic(outdir / "summary.csv", _csv(rows, COLUMNS))
    write_text_atomic(outdir / "index.html", render_index(outdir, rows, t, seconds))


def _rel(outdir: Path, p: Path) -> str:
    return html.escape(Path(os.path.relpath(p, outdir)).as_posix(), quote=True)


def render_index(outdir: Path, rows: list[dict[str, Any]], t: dict[str, Any], seconds: float = 0.0) -> str:
    """The batch's page: totals, failures with their reason, then one row per image."""
    e = html.escape
    body = []
    for r in rows:
        if r["state"] != "done":
            continue
        name = r["name"]
        page = _rel(outdir, side_path(outdir, "pages", name, ".html"))
        thumbs = "".join(
            f'<a href="{page}"><img loading="lazy" alt="{kind}" src="{_rel(outdir, side_path(outdir, "thumbs", name, f".{kind}.jpg"))}"></a>' for kind in ("before", "after")
        )
        out = _rel(outdir, Path(r["output"])) if r.get("output") else ""
        body.append(
            f"<tr><td class=t>{thumbs}</td><td><a href=\"{page}\">{e(r['source'])}</a><br><a class=o href=\"{out}\">{out}</a></td>"
            f"<td>{e(', '.join(r['found']) or 'nothing')}</td><td>{e(', '.join(r['kept']) or 'nothing kept')}</td>"
            f"<td class=n>{int(r['tool_calls'] or 0)}</td><td class=n>{float(r['seconds'] or 0):.1f}s</td></tr>"
        )
    failed = [r for r in rows if r["state"] in ("failed", "skipped")]
    fails = "".join(f"<tr><td>{e(r['source'])}</td><td>{e(r['state'])}</td><td>{e(r.get('error') or '')}</td></tr>" for r in failed)
    left = t["pending"] + t["running"]
    summary = (
        f"{t['inputs']} inputs: {t['done']} done, {t['failed']} failed, {t['skipped']} skipped"
        + (f", {left} not finished (run the same command again to resume)" if left else "")
        + f"; {t['tool_calls']} tool calls, {t['seconds']:.0f}s of restoring"
    )
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>restora batch: {e(str(outdir))}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}} td.n{{text-align:right;white-space:nowrap}}
td.t img{{max-width:160px;max-height:160px;margin-right:4px}} td.t{{white-space:nowrap}} a.o{{color:#666;font-size:90%}}
h2{{margin-top:1.5em}}
</style></head><body>
<h1>restora batch</h1>
<p>{e(summary)}. Written {time.strftime('%Y-%m-%d %H:%M:%S')}{f', this run took {seconds:.0f}s' if seconds else ''}.
The ledger is <code>restora-ledger.sqlite</code>; the same figures are in <a href="summary.json">summary.json</a> and <a href="summary.csv">summary.csv</a>.</p>
{f'<h2>Failed or skipped ({len(failed)})</h2><table><tr><th>input</th><th>state</th><th>reason</th></tr>{fails}</table>' if failed else ''}
<h2>Restored ({t['done']})</h2>
<table><tr><th>before / after</th><th>image</th><th>found</th><th>done</th><th>tool calls</th><th>time</th></tr>
{''.join(body)}
</table></body></html>
"""
