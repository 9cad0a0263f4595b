"""The HTML page a person reads after a run: before/after, each step's image, tool, params,
scores and the accept/rollback decision, and what perception saw. One self-contained file
(images embedded as JPEG data URLs).

Examples:
    >>> html = render_report(result, title="photo.jpg")        # doctest: +SKIP
    >>> write_text_atomic("out/photo.html", html)               # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
from typing import Any

import cv2
import numpy as np

from restora.imageio import to_uint8

THUMB = 360

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5b6475;font-size:13px}
.pair{display:flex;gap:16px;flex-wrap:wrap} .pair figure{margin:0}
figcaption{font-size:13px;color:#5b6475;margin-top:4px}
img{border:1px solid #d6dae1;border-radius:4px;max-width:100%}
table{border-collapse:collapse;font-size:13px;background:#fff}
th,td{border:1px solid #e1e4ea;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}
.accept{color:#0a7d32;font-weight:600} .rollback{color:#b3261e;font-weight:600}
.error{color:#8a5a00;font-weight:600} .stop{color:#3b4a6b;font-weight:600}
.notes li{font-size:13px}
code{font-size:12px;background:#f0f2f5;padding:1px 4px;border-radius:3px}
.bar{display:inline-block;height:8px;background:#4a78d0;border-radius:2px;vertical-align:middle}
"""


def thumbnail_data_url(image: np.ndarray, size: int = THUMB) -> str:
    h, w = image.shape[:2]
    scale = min(1.0, size / max(h, w))
    small = image
    if scale < 1.0:
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(to_uint8(small), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise OSError("thumbnail encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _outline_crops(image: np.ndarray, crops: list[dict[str, Any]]) -> np.ndarray:
    """A downscaled copy of ``image`` with the planning crops outlined (yellow)."""
    h, w = image.shape[:2]
    scale = min(1.0, 960 / max(h, w))
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(small, dtype=np.float32)
    for c in crops:
        p0 = (int(c["x"] * scale), int(c["y"] * scale))
        p1 = (int((c["x"] + c["w"]) * scale), int((c["y"] + c["h"]) * scale))
        cv2.rectangle(small, p0, p1, (1.0, 0.85, 0.0), max(1, round(2 * max(small.shape[:2]) / 480)))
    return small


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def _scores_cell(scores: dict[str, Any] | None) -> str:
    if not scores:
        return "&ndash;"
    parts = [f"<b>overall {scores.get('overall', float('nan')):.3f}</b>"]
    if "nr" in scores and "degradation" in scores:
        parts.append(f"NR {_fmt(scores['nr'])} &middot; degradation {_fmt(scores['degradation'])}")
    raw = scores.get("raw") or scores.get("metrics") or {}
    for k, v in raw.items():
        parts.append(f"{html.escape(k)} {_fmt(v)}")
    return "<br>".join(parts)


def _findings_table(report: dict[str, Any]) -> str:
    rows = []
    for name, f in (report.get("findings") or {}).items():
        sev = float(f.get("severity", 0.0))
        ev = ", ".join(f"{html.escape(k)}={_fmt(v)}" for k, v in (f.get("evidence") or {}).items())
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{'yes' if f.get('present') else 'no'}</td>"
            f"<td><span class='bar' style='width:{int(60 * sev)}px'></span> {sev:.2f}</td>"
            f"<td><code>{ev}</code></td></tr>"
        )
    return (
        "<table><tr><th>degradation</th><th>present</th><th>severity</th><th>evidence</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def render_report(result, title: str, notes: list[str] | None = None) -> str:
    """HTML for a :class:`restora.agent.RestoreResult` (its ``store`` must hold the step images)."""
    store = result.store
    start = result.records[0]
    steps = [r for r in result.records if r.event == "step"]
    end = result.records[-1] if result.records and result.records[-1].event == "end" else None
    before = store.get(start.image)
    after = result.image
    input_report = steps[0].observation if steps else {}
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>restora: {html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>restora: {html.escape(title)}</h1>",
        f"<div class='meta'>{start.width}x{start.height} &middot; planner {html.escape(str(start.config.get('planner')))}"
        f" &middot; {result.tool_calls} tool calls &middot; {result.seconds:.1f} s &middot; stopped: "
        f"{html.escape(result.stop_reason)}</div>",
    ]
    all_notes = list(notes or []) + list(start.notes)
    if all_notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in dict.fromkeys(all_notes)) + "</ul>")
    in_overall = (end.scores_input or {}).get("overall") if end else None
    out_overall = (end.scores_final or {}).get("overall") if end else None
    crops = start.config.get("plan_crops") or []
    shown_before = before
    if crops:
        shown_before = _outline_crops(before, crops)
        listed = "; ".join(f"{c['role']} at x={c['x']}, y={c['y']} ({c['w']}x{c['h']})" for c in crops)
        parts.append(
            f"<p class='meta'>Planned at native resolution on {len(crops)} crops (outlined in the input): "
            f"{html.escape(listed)}. Step images below are those crops side by side.</p>"
        )
    parts.append("<h2>Before / after</h2><div class='pair'>")
    parts.append(
        f"<figure><img src='{thumbnail_data_url(shown_before, 480)}'><figcaption>input"
        f"{'' if in_overall is None else f' &middot; overall {in_overall:.3f}'}</figcaption></figure>"
    )
    kept = " &rarr; ".join(html.escape(t) for t in result.accepted) or "no step kept"
    parts.append(
        f"<figure><img src='{thumbnail_data_url(after, 480)}'><figcaption>output ({kept})"
        f"{'' if out_overall is None else f' &middot; overall {out_overall:.3f}'}</figcaption></figure></div>"
    )
    parts.append("<h2>What perception saw in the input</h2>" + _findings_table(input_report))
    parts.append(
        "<h2>Steps</h2><table><tr><th>#</th><th>image</th><th>action</th><th>scores before</th>"
        "<th>scores after</th><th>decision</th></tr>"
    )
    for r in steps:
        img_cell = "&ndash;"
        if r.image_after and r.image_after in store:
            img_cell = f"<img src='{thumbnail_data_url(store.get(r.image_after), 220)}'>"
        a = r.action
        if a.kind == "stop":
            action_cell = f"<b>stop</b><br>{html.escape(a.reason)}"
        else:
            params = ", ".join(f"{html.escape(k)}={_fmt(v)}" for k, v in a.params.items())
            action_cell = (
                f"<b>{html.escape(a.tool or '')}</b> <span class='meta'>({html.escape(a.task or '')})</span>"
                f"<br><code>{params or 'defaults'}</code><br><span class='meta'>{html.escape(a.reason)}</span>"
            )
            if a.fallback:
                action_cell += f"<br><span class='error'>fallback: {html.escape(a.fallback)}</span>"
        decision = f"<span class='{r.decision}'>{r.decision}</span>"
        if r.gain is not None:
            decision += f"<br>gain {r.gain:+.3f}"
        if r.error:
            decision += f"<br><span class='meta'>{html.escape(r.error)}</span>"
        if r.guard and r.guard.get("checked"):
            decision += f"<br><span class='meta'>guard: {html.escape(str(r.guard.get('reason', '')))}</span>"
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in r.timings.items() if v)
        if timing:
            decision += f"<br><span class='meta'>{timing}</span>"
        parts.append(
            f"<tr><td>{r.step}</td><td>{img_cell}</td><td>{action_cell}</td>"
            f"<td>{_scores_cell(r.scores_before)}</td><td>{_scores_cell(r.scores_after)}</td><td>{decision}</td></tr>"
        )
    parts.append("</table>")
    parts.append("<p class='meta'>Trace: schema version 1, one JSON record per line in the .trace.jsonl beside this page.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
