"""``restora synth``: a resumable planner-training dataset from clean photos.

Layout of ``OUT``::

    images/<hash>.png              every image a row or trace refers to (content-addressed)
    samples/<id>.json              one per degraded sample: its trajectories; written last, atomically
    traces/<id>-<k>.trace.jsonl    each trajectory in the live runs' trace schema
    sft/{train,val}.jsonl          chat rows (system, user with an image, assistant = JSON action)
    grpo/{train,val}.jsonl         prompt rows with what reward functions need
    README.md                      the dataset card

Sample ``i`` is a pure function of (seed, i, the clean photos): a rerun skips the samples whose
``samples/<id>.json`` exists and never rewrites them; the exports and the card are rebuilt from
the samples at the end (atomically). The split is by source photo: a seeded ~15% of the photos
(at least one when there are two or more) are validation, and every sample of a photo goes to its
photo's split.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from restora.cases import COMBOS, CleanImage, clean_images, crop_at, load_clean, split_by_photo, tasks_for
from restora.batch import Done, JobPool
from restora.batch.workers import process_tools
from restora.errors import RestoraError
from restora.imageio import save_image, write_text_atomic
from restora.planners.prompt import chat_messages, system_prompt, user_text
from restora.planners.schema import action_json, parse_action
from restora.store import image_hash
from restora.taxonomy import Degradation
from restora.traces.io import TraceWriter
from restora.traces.schema import ActionRecord, EndRecord, StartRecord, StepRecord
from restora.planners.teacher import (
    SCENARIOS,
    TeacherSearch,
    Trajectory,
    View,
    banned_after,
    sample_seed,
)
from restora.planners.teacher import trajectories as make_trajectories

VERSION = 1
VAL_FRACTION = 0.15
CLEAN_SHARE = 0.1
SINGLE_SHARE = 0.4  # the rest: the benchmark's 16 combinations
MAX_STEPS = 8
MAX_FAILED_IN_A_ROW = 16  # stop instead of looping when every sample fails (a broken tool, a bad folder)


def split_photos(photos: list[CleanImage], seed: int) -> dict[str, str]:
    """photo name -> "train" or "val" (seeded; no photo in both).

    Examples:
        >>> from pathlib import Path
        >>> s = split_photos([CleanImage(f"p{i}.png", Path(".")) for i in range(20)], 0)
        >>> sorted(Counter(s.values()).items())
        [('train', 17), ('val', 3)]
    """
    val = split_by_photo([p.name for p in photos], seed, VAL_FRACTION)
    return {p.name: ("val" if p.name in val else "train") for p in photos}


def sample_spec(photos: list[CleanImage], seed: int, index: int, size: int) -> dict[str, Any]:
    """What sample ``index`` is: photo, crop position, combination (None = clean) and seed."""
    rng = np.random.default_rng(sample_seed(seed, index))
    photo = photos[int(rng.integers(len(photos)))]
    u = float(rng.random())
    if u < CLEAN_SHARE:
        combo = None
    elif u < CLEAN_SHARE + SINGLE_SHARE:
        singles = [d.value for d in Degradation]
        combo = singles[int(rng.integers(len(singles)))]
    else:
        combo = COMBOS[int(rng.integers(len(COMBOS)))]
    return {
        "index": index,
        "id": f"{index:06d}",
        "photo": photo.name,
        "path": str(photo.path),
        "combo": combo,
        "seed": int(rng.integers(2**31)),
        "crop": [float(rng.random()), float(rng.random())],
        "size": size,
        "run_seed": seed,
    }


MIN_CROP_STD = 0.04  # luma std below this is a flat patch (sky, wall): little to learn from


def _informative_crop(photo: np.ndarray, spec: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The spec's crop, or (when it is nearly flat) the first of up to 8 seeded alternatives
    that is not; the spec records the crop used."""
    rng = np.random.default_rng([spec["seed"], 7])
    where = list(spec["crop"])
    best = None
    for _ in range(8):
        crop = crop_at(photo, spec["size"], where)
        std = float((crop @ np.array([0.299, 0.587, 0.114], np.float32)).std())
        if best is None or std > best[0]:
            best = (std, crop, where)
        if std >= MIN_CROP_STD:
            break
        where = [float(rng.random()), float(rng.random())]
    assert best is not None
    return best[1], {**spec, "crop": best[2]}


# -- one sample (runs in a worker) ----------------------------------------------------------------
def _image_ref(out: Path, image: np.ndarray) -> str:
    ref = "img:" + image_hash(image)[:16]
    path = out / "images" / f"{ref[4:]}.png"
    if not path.exists():
        save_image(path, image)
    return ref


def _image_path(ref: str) -> str:
    return f"images/{ref[4:]}.png"


def run_sample(spec: dict[str, Any], out: Path, split: str) -> dict[str, Any]:
    """Degrade, search, write the trajectories' traces; return (and write) the sample record."""
    from restora import degrade

    t0 = time.perf_counter()
    box, scorer = process_tools()
    photo = load_clean(Path(spec["path"]), 10**6)
    clean, spec = _informative_crop(photo, spec)
    labels: dict[str, Any] = {}
    degraded = clean
    if spec["combo"]:
        degraded, labels = degrade.compose(clean, spec["combo"], seed=spec["seed"])
        degraded = (np.round(np.clip(degraded, 0, 1) * 255) / 255).astype(np.float32)
    rng = np.random.default_rng(spec["seed"])
    search = TeacherSearch(clean, degraded, tasks_for(spec["combo"]) if spec["combo"] else [], box, scorer, rng).run()
    trajs = make_trajectories(search, rng)
    catalogue = {n: t.describe() for n, t in box.catalogue().items()}
    clean_ref, input_ref = _image_ref(out, clean), _image_ref(out, degraded)
    records = []
    for k, traj in enumerate(trajs):
        name = f"{spec['id']}-{k}"
        _write_trace(out / "traces" / f"{name}.trace.jsonl", name, spec, traj, labels, catalogue, out)
        target = traj.target
        answer = action_json(target.action)
        parse_action(answer, catalogue)  # every target must be a valid planner reply
        records.append(
            {
                "trajectory": name,
                "scenario": traj.scenario,
                "image": _image_ref(out, target.before.node.image),
                "steps_left": MAX_STEPS - len(traj.history),
                "history": [_history_item(i, s) for i, s in enumerate(traj.history)],
                "scores": target.before.scores,
                "answer": answer,
                "best_plan": traj.best_plan,
            }
        )
    best = search.best
    assert best is not None
    record = {
        **spec,
        "split": split,
        "labels": labels,
        "clean": clean_ref,
        "input": input_ref,
        "teacher": {
            "input_score": round(search.path()[0].teacher, 4),
            "best_score": round(best.teacher, 4),
            "best_plan": list(best.node.key),
            "best_psnr": round(best.psnr, 4),
            "input_psnr": round(search.path()[0].psnr, 4),
            "pipelines": len(search.pipelines),
            "tool_runs": search.cache.executions,
        },
        "timing": {
            "tools": round(search.cache.work_seconds - search.cache.perception_seconds, 3),
            "perception": round(search.cache.perception_seconds, 3),
            "scoring": round(search.score_seconds, 3),
        },
        "trajectories": records,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    write_text_atomic(out / "samples" / f"{spec['id']}.json", json.dumps(record, indent=1) + "\n")
    return record


def _gain(step) -> float | None:
    """The agent's own quality gain of a step (None for a stop), as live traces record it."""
    if step.after is None:
        return None
    return float(step.after.scores["overall"]) - float(step.before.scores["overall"])


def _history_item(i: int, step) -> dict[str, Any]:
    return {
        "step": i,
        "tool": step.action.tool,
        "task": step.action.task,
        "params": step.action.params,
        "decision": step.decision,
        "gain": _gain(step),
    }


def _write_trace(path: Path, run_id: str, spec: dict[str, Any], traj: Trajectory, labels: dict[str, Any], catalogue, out: Path) -> None:
    first: View = traj.steps[0].before
    writer = TraceWriter(path)
    ok = False
    try:
        writer.write(
            StartRecord(
                run_id=run_id,
                source=f"synth:{spec['id']}:{spec['photo']}",
                width=first.node.image.shape[1],
                height=first.node.image.shape[0],
                image=_image_ref(out, first.node.image),
                config={"planner": "teacher", "scenario": traj.scenario, "combo": spec["combo"], "tools": sorted(catalogue)},
                labels=labels or None,
                started_at="1970-01-01T00:00:00+00:00",
            )
        )
        for i, step in enumerate(traj.steps):
            writer.write(
                StepRecord(
                    run_id=run_id,
                    step=i,
                    observation=step.before.report,
                    action=ActionRecord(**step.action.model_dump(), planner="teacher"),
                    decision=step.decision,
                    image_before=_image_ref(out, step.before.node.image),
                    image_after=None if step.after is None else _image_ref(out, step.after.node.image),
                    scores_before=step.before.scores,
                    scores_after=None if step.after is None else step.after.scores,
                    gain=_gain(step),
                    banned=banned_after([step]),
                )
            )
        final = traj.steps[-1].after or traj.steps[-1].before
        kept = [s.action.tool for s in traj.steps if s.decision == "accept" and s.action.tool]
        writer.write(
            EndRecord(
                run_id=run_id,
                image=_image_ref(out, final.node.image),
                stop_reason=traj.target.action.reason or traj.scenario,
                tool_calls=sum(1 for s in traj.steps if s.action.kind == "tool"),
                accepted=kept,
                seconds=0.0,
                scores_input=traj.steps[0].before.scores,
                scores_final=final.scores,
            )
        )
        ok = True
    finally:
        writer.close(commit=ok)


# -- the whole run ----------------------------------------------------------------------------
def load_samples(out: Path) -> dict[int, dict[str, Any]]:
    found = {}
    for p in sorted((out / "samples").glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # an unreadable record is redone (records are written atomically, so rare)
        found[int(rec["index"])] = rec
    return found


def run_synth(
    clean_dirs: list[Path],
    out: Path,
    *,
    n: int,
    seed: int = 0,
    size: int = 256,
    workers: int = 1,
    on_sample: Callable[[dict[str, Any]], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Make samples until at least ``n`` trajectories exist; export rows and the card."""
    out = Path(out)
    for sub in ("images", "samples", "traces"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    photos = clean_images([Path(d) for d in clean_dirs])
    splits = split_photos(photos, seed)
    done = load_samples(out)
    for rec in done.values():
        if rec.get("run_seed") != seed or rec.get("size") != size:
            raise ValueError(
                f"{out} holds samples made with other settings (seed {rec.get('run_seed')}, size {rec.get('size')}); "
                "use another --out or the same settings"
            )
    t0 = time.perf_counter()
    made = 0

    def total() -> int:
        return sum(len(r["trajectories"]) for r in done.values())

    index = 0
    failures: list[dict[str, Any]] = []
    failed_in_a_row = 0

    def finished(d: Done) -> None:
        nonlocal made, failed_in_a_row
        if not d.ok:  # this sample is skipped (a rerun tries it again); the run goes on
            failures.append({"id": d.job[0]["id"], "photo": d.job[0]["photo"], "combo": d.job[0]["combo"], "error": d.error})
            failed_in_a_row += 1
            return
        failed_in_a_row = 0
        done[int(d.value["index"])] = d.value
        made += 1
        if on_sample:
            on_sample(d.value)

    with JobPool(workers) as pool:
        while total() < n:
            batch = []
            while len(batch) < max(1, workers):
                if index not in done:
                    batch.append(sample_spec(photos, seed, index, size))
                index += 1
            pool.run(run_sample, [(spec, out, splits[spec["photo"]]) for spec in batch], on_done=finished)
            if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                raise RestoraError(f"{failed_in_a_row} samples in a row failed; the last: {failures[-1]['error']}")
    seconds = time.perf_counter() - t0
    summary = export(out, done, n, seed=seed, size=size, command=command, photos=photos, splits=splits)
    summary["seconds_this_run"] = round(seconds, 2)
    summary["samples_this_run"] = made
    if failures:
        summary["failures_this_run"] = failures
    return summary


def export(
    out: Path,
    samples: dict[int, dict[str, Any]],
    n: int,
    *,
    seed: int,
    size: int,
    command: str | None,
    photos: list[CleanImage],
    splits: dict[str, str],
) -> dict[str, Any]:
    """Write sft/ and grpo/ rows for the first ``n`` trajectories (sample order) and the card."""
    catalogue = {name: t.describe() for name, t in process_tools()[0].catalogue().items()}
    system = system_prompt(catalogue)
    rows: dict[str, dict[str, list[str]]] = {"sft": {"train": [], "val": []}, "grpo": {"train": [], "val": []}}
    counts: Counter = Counter()
    combos: Counter = Counter()
    seconds = 0.0
    timing: Counter = Counter()
    taken = 0
    for index in sorted(samples):
        rec = samples[index]
        seconds += float(rec.get("seconds", 0.0))
        timing.update(rec.get("timing", {}))
        for t in rec["trajectories"]:
            if taken >= n:
                break
            taken += 1
            split = rec["split"]
            counts[(t["scenario"], split)] += 1
            combos[rec["combo"] or "clean"] += 1
            user = user_text(step=len(t["history"]), steps_left=t["steps_left"], scores=t["scores"], history=t["history"])
            base = {"id": t["trajectory"], "scenario": t["scenario"], "images": [_image_path(t["image"])]}
            rows["sft"][split].append(json.dumps({**base, "messages": chat_messages(system, user, t["answer"])}))
            rows["grpo"][split].append(
                json.dumps(
                    {
                        **base,
                        "prompt": chat_messages(system, user),
                        "clean": _image_path(rec["clean"]),
                        "degraded": _image_path(rec["input"]),
                        "current": _image_path(t["image"]),
                        "labels": rec["labels"],
                        "combo": rec["combo"],
                        "target": t["answer"],
                        "teacher": rec["teacher"],
                        "trace": f"traces/{t['trajectory']}.trace.jsonl",
                    }
                )
            )
    for kind, parts in rows.items():
        for split, lines in parts.items():
            write_text_atomic(out / kind / f"{split}.jsonl", "".join(line + "\n" for line in lines))
    summary = {
        "version": VERSION,
        "trajectories": taken,
        "samples": len(samples),
        "scenarios": {s: {sp: counts[(s, sp)] for sp in ("train", "val")} for s in SCENARIOS},
        "combos": dict(sorted(combos.items())),
        "photos": {sp: sorted(p for p, v in splits.items() if v == sp) for sp in ("train", "val")},
        "size": size,
        "seed": seed,
        "sample_seconds": round(seconds, 2),
        "sample_seconds_by_part": {k: round(v, 2) for k, v in sorted(timing.items())},
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    write_text_atomic(out / "README.md", card(summary, command))
    return summary


def card(summary: dict[str, Any], command: str | None) -> str:
    """The dataset card (README.md of the output)."""
    sc = summary["scenarios"]
    lines = [
        "# restora planner trajectories",
        "",
        (
            f"{summary['trajectories']} trajectories from {summary['samples']} degraded samples of "
            f"{len(summary['photos']['train']) + len(summary['photos']['val'])} clean photos, "
            f"{summary['size']} px crops, seed {summary['seed']}."
        ),
        "Made by `restora synth` (teacher search over every order x tool of the true tasks, scored against the clean crop:",
        "0.7 fidelity (PSNR, SSIM) + 0.3 no-reference quality).",
        "",
    ]
    if command:
        lines += ["Command:", "", f"    {command}", ""]
    lines += [
        "## Scenarios (RestoreAgent)",
        "",
        "| scenario | what the target is | train | val |",
        "|---|---|---:|---:|",
    ]
    what = {
        "plan": "first step of the best pipeline, from the input",
        "adjust": "next step after kept steps",
        "rollback": "undo a kept step that made things worse",
        "avoid_repeat": "best next step after a rolled-back (banned) one",
        "stop": "stop: the image is done (clean inputs too)",
    }
    for s in SCENARIOS:
        lines.append(f"| {s} | {what[s]} | {sc[s]['train']} | {sc[s]['val']} |")
    lines += ["", "## Degradations", "", "| combination | trajectories |", "|---|---:|"]
    lines += [f"| {c} | {k} |" for c, k in summary["combos"].items()]
    lines += [
        "",
        "## Split",
        "",
        (
            f"By source photo, no photo in both: train {', '.join(summary['photos']['train'])}; "
            f"val {', '.join(summary['photos']['val']) or '(none)'}."
        ),
        "",
        "## Files",
        "",
        "- `sft/{train,val}.jsonl`: `messages` (system, user = image + state, assistant = the JSON action) and `images`",
        "  (paths relative to this folder), the conversational format TRL's SFTTrainer takes for vision-language models.",
        "- `grpo/{train,val}.jsonl`: `prompt` (system, user) and `images`, plus what a reward needs: `clean` and `degraded`",
        "  image paths, the true `labels`, the `target` action and the `teacher`'s best score and plan.",
        "- `traces/*.trace.jsonl`: every trajectory in the live runs' trace schema; `images/`: content-addressed PNGs.",
        "",
        (
            f"Sample time summed over workers: {summary['sample_seconds']:.0f} s "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in summary['sample_seconds_by_part'].items())}; "
            "the rest: degrading, writing images and traces)."
        ),
        "",
    ]
    return "\n".join(lines)
