"""A trainer's small report: curves and example images a person looks at, and a markdown page.

Examples:
    >>> png = plot_curves({"loss": [(1, 0.9), (2, 0.7)]}, "loss")     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from restora.imageio import save_image, write_text_atomic

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def plot_curves(series: dict[str, list[tuple[float, float]]], title: str, size: tuple[int, int] = (640, 300)) -> np.ndarray:
    """Lines of (x, y) points on shared axes, labelled; float32 RGB in [0, 1]."""
    w, h = size
    canvas = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 56, 12, 26, 28
    pts = [p for s in series.values() for p in s]
    cv2.putText(canvas, title, (left, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if not pts:
        return canvas.astype(np.float32) / 255.0
    xs, ys = np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)
    x0, x1 = float(xs.min()), float(max(xs.max(), xs.min() + 1))
    y0, y1 = float(ys.min()), float(ys.max())
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def px(x: float, y: float) -> tuple[int, int]:
        return (
            int(left + (x - x0) / (x1 - x0) * (w - left - right)),
            int(top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom)),
        )

    cv2.rectangle(canvas, (left, top), (w - right, h - bottom), (180, 180, 180), 1)
    for frac in (0.0, 0.5, 1.0):
        y = y0 + frac * (y1 - y0)
        cv2.putText(canvas, f"{y:.3g}", (4, px(x0, y)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (80, 80, 80), 1, cv2.LINE_AA)
    for frac in (0.0, 0.5, 1.0):
        x = x0 + frac * (x1 - x0)
        cv2.putText(canvas, f"{x:.0f}", (px(x, y0)[0] - 10, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (80, 80, 80), 1, cv2.LINE_AA)
    for k, (name, s) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        line = np.array([px(x, y) for x, y in s], np.int32)
        if len(line) > 1:
            cv2.polylines(canvas, [line], False, colour, 1, cv2.LINE_AA)
        elif len(line) == 1:
            cv2.circle(canvas, tuple(int(v) for v in line[0]), 3, colour, -1)
        cv2.putText(canvas, name, (w - right - 150, top + 14 + 14 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing mean over ``window`` values."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def labelled_grid(tiles: list[tuple[np.ndarray, list[str]]], columns: int = 4) -> np.ndarray:
    """Images with a few caption lines under each, in a grid; float32 RGB in [0, 1]."""
    import textwrap

    h, w = tiles[0][0].shape[:2]
    width = max(8, w // 6)  # characters per caption line at this font size
    tiles = [(img, [part for line in caption for part in textwrap.wrap(line, width)]) for img, caption in tiles]
    lines = max(len(c) for _, c in tiles)
    bar = 13 * lines + 4
    cells = []
    for img, caption in tiles:
        cell = np.full((h + bar, w, 3), 255, np.uint8)
        cell[:h] = np.round(np.clip(cv2.resize(img, (w, h)), 0, 1) * 255).astype(np.uint8)
        for i, text in enumerate(caption):
            cv2.putText(cell, text, (2, h + 12 + 13 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
        cells.append(cell)
    while len(cells) % columns:
        cells.append(np.full_like(cells[0], 255))
    rows = [np.concatenate(cells[i : i + columns], axis=1) for i in range(0, len(cells), columns)]
    return np.concatenate(rows, axis=0).astype(np.float32) / 255.0


def perception_report(out: Path, result: dict[str, Any], history: list[dict[str, Any]], examples: list[tuple[np.ndarray, list[str]]]) -> None:
    """``curves.png``, ``validation.png`` and ``report.md`` of a perception run."""
    steps = [r["step"] for r in history]
    window = max(1, len(history) // 50)
    loss = smooth([r["loss"] for r in history], window)
    bce = smooth([r["bce"] for r in history], window)
    curves = plot_curves({"loss": list(zip(steps, loss, strict=True)), "presence BCE": list(zip(steps, bce, strict=True))}, f"training loss (mean of {window} steps)")
    evals = result.get("evals", [])
    auc = plot_curves({"val mean AUC": [(e["step"], e["mean_auc"]) for e in evals if e["mean_auc"] is not None], "val mean F1": [(e["step"], e["mean_f1"]) for e in evals]}, "validation")
    save_image(out / "curves.png", np.concatenate([curves, auc], axis=0))
    if examples:
        save_image(out / "validation.png", labelled_grid(examples))
    val = result["val"]
    cfg = result["config"]
    lines = [
        "# restora perception training run",
        "",
        f"`{cfg['arch']}`, {cfg['crop']} px crops, batch {cfg['batch_size']}, {result['steps']} steps (this run: from step "
        f"{result['resumed_from']}, {result['seconds_this_run']:.0f} s), seed {cfg['seed']}.",
        f"Training photos: {len(result['photos']['train'])}; validation photos (never trained on): {len(result['photos']['val'])}; "
        f"{val['samples']} synthesized validation samples.",
        "",
        f"Mean AUC **{val['mean_auc']}**, mean F1 at the calibrated thresholds **{val['mean_f1']}**, clean samples read clean: "
        f"**{val['clean_read_clean']}**.",
        "",
        f"Thresholds: the best F1 among those flagging at most {val.get('max_false_alarm', 1.0):g} of the samples without the degradation.",
        "",
        "| degradation | AUC | F1 at 0.5 | threshold | F1 at threshold | false alarms at threshold | severity MAE | positives |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d, v in val["degradations"].items():
        lines.append(
            f"| {d} | {v['auc']} | {v['f1']} | {v['threshold']} | {v['f1_at_threshold']} | {v.get('false_alarm_at_threshold', '-')} "
            f"| {v['severity_mae']} | {v['positives']} |"
        )
    lines += ["", "| measure | MAE | samples |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['mae']} | {v['n']} |" for k, v in val["measures"].items()]
    lines += ["", "![curves](curves.png)", "", "![validation samples: truth / prediction](validation.png)", ""]
    write_text_atomic(out / "report.md", "\n".join(lines))
