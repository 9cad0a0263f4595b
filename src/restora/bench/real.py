"""Suite ``real``: real degradations (BENCHMARK.md).

Three parts, each optional (a part whose folder is missing is skipped with a note):

* ``real_gt/<set>/``: pairs of a degraded image and its ground truth. PSNR/SSIM of ``none``,
  each single tool of the matching task, and ``agent``. The folder holding the degraded images
  names the task (``noisy`` -> denoise, ``blurred`` -> motion deblur, ``hazy`` -> dehaze,
  ``rainy``/``rain*`` -> derain, ``low*``/``dark`` -> low light, ``jpeg`` -> dejpeg); when it does not
  (``input/``), the set's name does (``rain100l`` -> derain, ...). The ground-truth folder is
  ``gt``, ``target``, ``clean`` or ``groundtruth``. A degraded file is paired with the ground
  truth of the same stem, or with the longest ground-truth stem it starts with followed by
  ``_`` (``im1_kernel1_img`` -> ``im1``).
* ``real_nogt/<set>/``: no-reference scores (NIQE, BRISQUE, PIQE and the agent's own overall
  score) of ``none`` and ``agent``, and the "no harm" rates: the share of images the agent did
  not make worse by its own scorer, and by the plain mean of the NR metrics.
* ``clean/<set>/``: clean photos given as input: the share the agent returns unchanged (zero
  kept steps) and its mean tool calls (it should recognise there is nothing to fix).

Examples:
    >>> from restora.bench.real import run_real
    >>> results = run_real(Path("../shared/data"), Path("out/real"), limit=2)   # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from restora.bench.mio import NR_METRICS, _mean, dumps
from restora.quality.fidelity import psnr, ssim
from restora.batch import Done, run_jobs
from restora.batch.workers import process_tools
from restora.data import image_files
from restora.taxonomy import Task

VERSION = 1
GT_DIRS = ("gt", "target", "clean", "groundtruth", "ground_truth")
_TASK_WORDS: tuple[tuple[str, Task], ...] = (
    (r"nois|nam|polyu|sidd|dnd", Task.DENOISE),
    (r"blur|levin|gopro|shake", Task.MOTION_DEBLUR),
    (r"defocus|dpdd", Task.DEFOCUS_DEBLUR),
    (r"haz|fog|sots|reside", Task.DEHAZE),
    (r"rain", Task.DERAIN),
    (r"low|dark|lol|night", Task.LOW_LIGHT),
    (r"jpeg|jpg|compress", Task.DEJPEG),
    (r"lr|lowres|sr$|bicubic", Task.SUPER_RESOLUTION),
)


def task_for_set(set_dir: Path, degraded_dir: Path) -> Task | None:
    """The task a ``real_gt`` set measures, from its degraded folder's name or the set's name.

    Examples:
        >>> task_for_set(Path("real_gt/cc_nam"), Path("real_gt/cc_nam/noisy"))
        <Task.DENOISE: 'denoise'>
        >>> task_for_set(Path("real_gt/rain100l"), Path("real_gt/rain100l/input"))
        <Task.DERAIN: 'derain'>
    """
    for name in (degraded_dir.name, set_dir.name):
        for pattern, task in _TASK_WORDS:
            if re.search(pattern, name.lower()):
                return task
    return None


def pair_files(degraded: list[Path], gts: list[Path]) -> list[tuple[Path, Path]]:
    """Pair degraded files with ground truths by stem (exact, else longest ``<gt stem>_`` prefix).

    Examples:
        >>> pair_files([Path("b/im1_kernel2_img.png"), Path("b/x.png")], [Path("g/im1.png"), Path("g/im10.png")])
        [(PosixPath('b/im1_kernel2_img.png'), PosixPath('g/im1.png'))]
    """
    by_stem = {g.stem: g for g in gts}
    pairs = []
    for d in degraded:
        g = by_stem.get(d.stem)
        if g is None:
            prefixes = [s for s in by_stem if d.stem.startswith(s + "_")]
            if prefixes:
                g = by_stem[max(prefixes, key=len)]
        if g is not None:
            pairs.append((d, g))
    return pairs


def discover(data: Path, limit: int | None = None) -> dict[str, Any]:
    """What the ``real`` suite will run: {"gt": [...], "nogt": [...], "clean": [...], "notes": [...]}."""
    found: dict[str, Any] = {"gt": [], "nogt": [], "clean": [], "notes": []}
    gt_root = data / "real_gt"
    for set_dir in sorted(p for p in gt_root.iterdir() if p.is_dir()) if gt_root.is_dir() else []:
        subdirs = [p for p in sorted(set_dir.iterdir()) if p.is_dir()]
        gt_dir = next((p for p in subdirs if p.name.lower() in GT_DIRS), None)
        deg_dirs = [p for p in subdirs if p is not gt_dir]
        if gt_dir is None or len(deg_dirs) != 1:
            found["notes"].append(f"real_gt/{set_dir.name}: skipped (needs one ground-truth folder and one degraded folder)")
            continue
        task = task_for_set(set_dir, deg_dirs[0])
        if task is None:
            found["notes"].append(f"real_gt/{set_dir.name}: skipped (cannot tell the task from its folder names)")
            continue
        pairs = pair_files(image_files(deg_dirs[0]), image_files(gt_dir))
        if limit is not None:
            pairs = pairs[:limit]
        found["gt"] += [{"set": set_dir.name, "task": str(task), "input": d, "gt": g} for d, g in pairs]
    for part in ("real_nogt", "clean"):
        root = data / part
        key = "nogt" if part == "real_nogt" else "clean"
        if not root.is_dir():
            found["notes"].append(f"{part}: not found under {data}, skipped")
            continue
        for set_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            files = image_files(set_dir)
            if limit is not None:
                files = files[:limit]
            found[key] += [{"set": set_dir.name, "input": f} for f in files]
    return found


def _align(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre-crop both to their common size (pairs normally match exactly)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])

    def crop(x: np.ndarray) -> np.ndarray:
        y0, x0 = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
        return x[y0 : y0 + h, x0 : x0 + w]

    return crop(a), crop(b)


def run_job(job: dict[str, Any], max_steps: int) -> list[dict[str, Any]]:
    """All strategies for one image of the ``real`` suite; returns its rows."""
    from restora.agent import restore
    from restora.imageio import quantize
    from restora.imageio import load_image
    from restora.perception import backend
    from restora.planners.heuristic import HeuristicPlanner
    from restora.taxonomy import DEGRADATION_FOR

    toolbox, scorer = process_tools()
    kind = job["kind"]
    base = {"suite": kind, "set": job["set"], "image": Path(job["input"]).name}
    loaded = load_image(job["input"])
    image = quantize(loaded.pixels)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    result = restore(image, planner=HeuristicPlanner(), toolbox=toolbox, scorer=scorer, max_steps=max_steps, source=str(job["input"]))
    agent_seconds = time.perf_counter() - t0
    agent = {
        "strategy": "agent",
        "tool_calls": int(result.tool_calls),
        "seconds": round(agent_seconds, 4),
        "plan": list(result.accepted),
        "stop_reason": result.stop_reason,
    }
    if kind == "gt":
        gt = quantize(load_image(job["gt"]).pixels)
        outputs = [({"strategy": "none", "tool_calls": 0, "seconds": 0.0, "plan": []}, image)]
        task = Task(job["task"])
        report = backend()(image)
        finding = report.findings[str(DEGRADATION_FOR[task])]
        for name, cls in toolbox.catalogue().items():
            if task not in cls.handles():
                continue
            params = cls.suggest_params_for(task, finding.severity, finding.evidence)[0]
            t1 = time.perf_counter()
            try:
                out = toolbox.run(name, image, params)
                err = None
            except Exception as e:  # noqa: BLE001 - a tool crash is a result, the suite goes on
                out, err = image, f"{type(e).__name__}: {e}"
            row = {"strategy": name, "tool_calls": 1, "seconds": round(time.perf_counter() - t1 + report.seconds, 4), "plan": [name]}
            if err:
                row["error"] = err
            outputs.append((row, out))
        outputs.append((agent, result.image))
        for row, out in outputs:
            o, g = _align(out if out.shape == image.shape else _fit(out, image.shape), gt)
            rows.append({**base, "task": job["task"], **row, "psnr": round(psnr(o, g), 4), "ssim": round(ssim(o, g), 4)})
        return rows
    # no ground truth: the agent's own scores, and the plain NR metrics, before and after
    s_in, s_out = scorer.score(image), scorer.score(result.image)
    ins = result.state.get("input_scores") or {}
    fin = result.state.get("scores") or {}
    for row, s, own in (({"strategy": "none", "tool_calls": 0, "seconds": 0.0, "plan": []}, s_in, ins), (agent, s_out, fin)):
        rows.append(
            {
                **base,
                **row,
                **{m: (None if s.raw.get(m) is None else round(float(s.raw[m]), 4)) for m in NR_METRICS},
                "nr": None if s.nr is None else round(float(s.nr), 4),
                "overall": None if not own else round(float(_get(own, "overall")), 4),
                "unchanged": bool(np.array_equal(result.image, image)) if row["strategy"] == "agent" else True,
            }
        )
    return rows


def _get(obj: Any, key: str) -> Any:
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def _fit(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    from restora.quality.fidelity import fit_to

    return fit_to(image, shape)


def run_real(
    data: Path,
    out: Path,
    *,
    limit: int | None = None,
    max_steps: int = 8,
    workers: int = 1,
    on_case: Callable[[list[dict[str, Any]]], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the ``real`` suite on ``data``; write ``out/results.json`` and ``out/results.md``."""
    from restora.imageio import write_text_atomic

    data = Path(data)
    if not data.is_dir():
        raise FileNotFoundError(f"data folder not found: {data}")
    found = discover(data, limit)
    jobs = [{"kind": k, **item} for k in ("gt", "nogt", "clean") for item in found[k]]
    if not jobs:
        raise ValueError(f"nothing to run under {data} (expected real_gt/, real_nogt/ or clean/)")
    for j in jobs:
        j["input"], j["gt"] = str(j["input"]), str(j.get("gt", ""))
    if on_start:
        on_start(len(jobs))
    t0 = time.perf_counter()

    def failure(d: Done) -> dict[str, Any]:
        return {"suite": d.job[0]["kind"], "set": d.job[0]["set"], "image": Path(d.job[0]["input"]).name, "error": d.error}

    def finished(d: Done) -> None:
        if on_case is not None:
            on_case(d.value if d.ok else [failure(d)])

    outcome = run_jobs(run_job, [(job, max_steps) for job in jobs], workers=workers, on_done=finished)
    rows = [r for d in outcome if d.ok for r in d.value]
    failures = [failure(d) for d in outcome if not d.ok]
    results = {
        "suite": "real",
        "version": VERSION,
        "data": str(data),
        "limit": limit,
        "max_steps": max_steps,
        "images": len(jobs),
        "workers": workers,
        "seconds": round(time.perf_counter() - t0, 2),
        "notes": found["notes"],
        **summarize(rows),
        "cases": rows,
    }
    if command:
        results["command"] = command
    if failures:  # images that could not run (left out of every mean)
        results["failures"] = failures
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.json", dumps(results))
    write_text_atomic(out / "results.md", markdown(results))
    return results


def _stats(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {k: _mean([r.get(k) for r in rows]) for k in keys}
    out["cases"] = len(rows)
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-set means: ``gt`` (PSNR/SSIM per strategy), ``nogt`` (NR and no-harm), ``clean``."""
    gt: dict[str, Any] = {}
    for r in (r for r in rows if r["suite"] == "gt"):
        gt.setdefault(r["set"], {"task": r["task"], "strategies": {}})["strategies"].setdefault(r["strategy"], []).append(r)
    for body in gt.values():
        body["pairs"] = len(body["strategies"]["none"])
        body["strategies"] = {s: _stats(rs, ("psnr", "ssim", "tool_calls", "seconds")) for s, rs in body["strategies"].items()}
    nogt: dict[str, Any] = {}
    sets = sorted({r["set"] for r in rows if r["suite"] == "nogt"})
    for name in sets:
        mine = [r for r in rows if r["suite"] == "nogt" and r["set"] == name]
        before = {r["image"]: r for r in mine if r["strategy"] == "none"}
        after = {r["image"]: r for r in mine if r["strategy"] == "agent"}
        keys = (*NR_METRICS, "nr", "overall", "tool_calls", "seconds")
        pairs = [(before[k], after[k]) for k in before if k in after]
        own = [a["overall"] >= b["overall"] - 1e-9 for b, a in pairs if a["overall"] is not None and b["overall"] is not None]
        plain = [a["nr"] >= b["nr"] - 1e-9 for b, a in pairs if a["nr"] is not None and b["nr"] is not None]
        nogt[name] = {
            "images": len(pairs),
            "strategies": {
                "none": _stats([b for b, _ in pairs], keys),
                "agent": _stats([a for _, a in pairs], keys),
            },
            "no_harm_pct": _pct(own),
            "nr_no_harm_pct": _pct(plain),
            "changed_pct": _pct([not a["unchanged"] for _, a in pairs]),
        }
    clean: dict[str, Any] = {}
    for name in sorted({r["set"] for r in rows if r["suite"] == "clean"}):
        agent = [r for r in rows if r["suite"] == "clean" and r["set"] == name and r["strategy"] == "agent"]
        clean[name] = {
            "images": len(agent),
            "unchanged_pct": _pct([r["unchanged"] for r in agent]),
            "zero_calls_pct": _pct([r["tool_calls"] == 0 for r in agent]),
            "tool_calls": _mean([r["tool_calls"] for r in agent]),
            "seconds": _mean([r["seconds"] for r in agent]),
        }
    return {"gt": gt, "nogt": nogt, "clean": clean}


def _pct(flags: list[bool]) -> float | None:
    return round(100.0 * sum(flags) / len(flags), 2) if flags else None


def _f(v: Any, d: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{d}f}" if isinstance(v, float) else str(v)


def markdown(results: dict[str, Any]) -> str:
    """A readable report of the ``real`` suite."""
    lines = [
        "# restora bench real",
        "",
        f"{results['images']} images from `{results['data']}`; {results['seconds']:.0f} s wall with {results['workers']} worker(s).",
        "",
    ]
    if results.get("gt"):
        lines += [
            "## With ground truth: PSNR / SSIM",
            "",
            "| set | task | pairs | strategy | PSNR | SSIM | tool calls | seconds |",
            "|---|---|---:|---|---:|---:|---:|---:|",
        ]
        for name, body in results["gt"].items():
            for s, st in body["strategies"].items():
                lines.append(
                    f"| {name} | {body['task']} | {body['pairs']} | {s} | {_f(st['psnr'])} | {_f(st['ssim'], 3)} "
                    f"| {_f(st['tool_calls'], 1)} | {_f(st['seconds'])} |"
                )
    if results.get("nogt"):
        lines += [
            "",
            "## Without ground truth: no-reference scores (lower NIQE/BRISQUE/PIQE is better)",
            "",
            "| set | images | NIQE in -> out | BRISQUE in -> out | PIQE in -> out | own score in -> out | no harm (own) | no harm (NR) | changed | tool calls |",
            "|---|---:|---|---|---|---|---:|---:|---:|---:|",
        ]
        for name, body in results["nogt"].items():
            n, a = body["strategies"]["none"], body["strategies"]["agent"]
            cells = [f"{_f(n.get(m))} -> {_f(a.get(m))}" for m in (*NR_METRICS, "overall")]
            lines.append(
                f"| {name} | {body['images']} | " + " | ".join(cells)
                + f" | {_f(body['no_harm_pct'], 0)}% | {_f(body['nr_no_harm_pct'], 0)}% | {_f(body['changed_pct'], 0)}% | {_f(a['tool_calls'], 2)} |"
            )
    if results.get("clean"):
        lines += [
            "",
            "## Clean photos as input (nothing to fix)",
            "",
            "| set | images | returned unchanged | zero tool calls | mean tool calls |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, body in results["clean"].items():
            lines.append(
                f"| {name} | {body['images']} | {_f(body['unchanged_pct'], 0)}% | {_f(body['zero_calls_pct'], 0)}% | {_f(body['tool_calls'])} |"
            )
    if results.get("failures"):
        lines += ["", "Images that failed (left out of every mean):", ""]
        lines += [f"- {f['suite']}/{f['set']}/{f['image']}: {f['error']}" for f in results["failures"]]
    if results.get("notes"):
        lines += ["", "Notes:", "", *[f"- {n}" for n in results["notes"]]]
    lines.append("")
    return "\n".join(lines)
