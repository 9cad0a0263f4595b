"""The page a person reads after a run: what was found, done and declined, in words; a
before/after slider at full resolution with zoom and pan; every step's image, scores and the
reason it was kept or rolled back; the candidates tried for each task side by side; what
perception saw after each kept step; the raw evidence in a collapsed details section.

One self-contained HTML file (inline CSS and JS from ``restora/report_assets``, no network).
Each distinct image is embedded once as a data URL: lossless PNG up to
:data:`LOSSLESS_MEGAPIXELS`, above that a full-resolution JPEG at quality 95 with no chroma
subsampling, and above :data:`EMBED_MEGAPIXELS` a JPEG downscaled to that size (the page says
so and links the full-resolution output file beside it). Past :data:`PAGE_BUDGET_MB` of images
(input and output first, then the kept steps, then the rolled-back tries) the rest are JPEG too.
Each picture's caption says how it was embedded.

The words come from the trace records alone (:func:`summarize`, :func:`step_verdict`,
:func:`stop_text`), so a trace read back from disk says the same as the live run.

Examples:
    >>> html = render_report(result, title="photo.jpg")        # doctest: +SKIP
    >>> write_text_atomic("out/photo.html", html)               # doctest: +SKIP
    >>> summarize(result.records)                                # doctest: +SKIP
    ['Found moderate JPEG blocking.', 'Removed the JPEG blocking with waifu2x.']
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from restora.imageio import to_uint8
from restora.taxonomy import DEGRADATION_FOR, TASK_FOR, Degradation, Task

LOSSLESS_MEGAPIXELS = 2.0
"""Images up to this size are embedded as lossless PNG (while the page is within :data:`PAGE_BUDGET_MB`)."""
PAGE_BUDGET_MB = 40.0
"""Once the embedded images pass this size, the remaining ones (rolled-back tries come last) are JPEG."""
EMBED_MEGAPIXELS = 16.0
"""Images above this size are embedded downscaled to it (the output file keeps full resolution)."""
JPEG_QUALITY = 95

# -- words ---------------------------------------------------------------------------------------
DEGRADATION_WORDS: dict[str, str] = {
    "noise": "noise",
    "motion_blur": "motion blur",
    "defocus": "out-of-focus blur",
    "haze": "haze",
    "rain": "rain streaks",
    "dark": "underexposure",
    "jpeg": "JPEG blocking",
    "low_res": "low resolution",
}
"""How the page names each :class:`~restora.taxonomy.Degradation`."""

_DONE: dict[str, str] = {
    "denoise": "reduced the noise",
    "motion_deblur": "sharpened the motion blur",
    "defocus_deblur": "sharpened the out-of-focus blur",
    "dehaze": "cleared the haze",
    "derain": "removed the rain streaks",
    "low_light": "brightened the exposure",
    "dejpeg": "removed the JPEG blocking",
    "super_resolution": "raised the resolution",
}
_LEFT: dict[str, str] = {
    "low_light": "left the image dark",
    "super_resolution": "left the resolution as it was",
}

TOOL_WORDS: dict[str, str] = {
    "deblur_defocus": "defocus deconvolution",
    "deblur_motion": "motion deconvolution",
    "dehaze_clahe": "veil subtraction",
    "dehaze_dcp": "the dark channel prior",
    "dejpeg_deblock": "DCT deblocking",
    "dejpeg_waifu2x": "waifu2x",
    "dejpeg_fbcnn": "FBCNN",
    "denoise_bm3d": "BM3D",
    "denoise_nlm": "non-local means",
    "denoise_srmd": "SRMD",
    "denoise_scunet": "SCUNet",
    "derain_guided": "the rain filter",
    "lowlight_gamma": "an adaptive gamma curve",
    "lowlight_lime": "LIME",
    "sr_realesrgan": "Real-ESRGAN",
    "sr_srmd": "SRMD",
    "sr_swinir": "SwinIR",
    "dit_restore": "the DiT restorer",
}
"""Short names for tools in sentences; an unknown tool is named by its id."""

_METRIC_WORDS = {"niqe": "NIQE", "brisque": "BRISQUE", "piqe": "PIQE"}


def tool_words(tool: str | None) -> str:
    """How a sentence names a tool: ``tool_words("dejpeg_waifu2x") == "waifu2x"``."""
    return TOOL_WORDS.get(tool or "", tool or "the tool")


def severity_words(severity: float) -> str:
    """mild (< 0.34), moderate (< 0.67) or strong."""
    return "mild" if severity < 0.34 else "moderate" if severity < 0.67 else "strong"


def _join(items: list[str]) -> str:
    items = list(dict.fromkeys(i for i in items if i))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _task_noun(task: str | None) -> str:
    try:
        return DEGRADATION_WORDS[DEGRADATION_FOR[Task(task)].value]
    except ValueError:
        return str(task)


def _metric(name: str) -> str:
    return _METRIC_WORDS.get(name, name.upper() if len(name) <= 6 else name)


# -- reading a run's records -----------------------------------------------------------------------
@dataclass
class _Run:
    start: Any
    steps: list
    end: Any
    config: dict[str, Any]

    @classmethod
    def of(cls, records: list) -> _Run:
        start = next((r for r in records if r.event == "start"), None)
        steps = [r for r in records if r.event == "step"]
        end = next((r for r in reversed(records) if r.event == "end"), None)
        return cls(start, steps, end, dict(start.config) if start is not None else {})

    @property
    def min_gain(self) -> float:
        return float(self.config.get("min_gain", 0.002))

    @property
    def min_consistency(self) -> float:
        return float(self.config.get("min_consistency", 0.25))

    @property
    def tool_steps(self) -> list:
        return [s for s in self.steps if s.action.kind == "tool"]

    @property
    def kept(self) -> list:
        """Tool steps that were accepted and not undone later."""
        kept: list = []
        for s in self.steps:
            if s.action.kind == "tool" and s.decision == "accept":
                kept.append(s)
            elif s.action.kind == "rollback" and kept:
                kept.pop()
        return kept

    @property
    def input_findings(self) -> dict[str, dict[str, Any]]:
        return (self.steps[0].observation or {}).get("findings") or {} if self.steps else {}

    @property
    def stop_reason(self) -> str:
        if self.end is not None:
            return self.end.stop_reason
        stops = [s for s in self.steps if s.action.kind == "stop"]
        return stops[-1].action.reason if stops else ""

    def observation_of(self, image: str | None) -> dict[str, Any] | None:
        """Perception's report of an image, when a later planner step looked at it."""
        for s in self.steps:
            if s.image_before == image and s.observation:
                return s.observation
        return None


def _present(findings: dict[str, dict[str, Any]]) -> list[tuple[str, float]]:
    found = [(k, float(f.get("severity") or 0.0)) for k, f in findings.items() if f.get("present")]
    return sorted(found, key=lambda kv: -kv[1])


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[list[str], list[str], int]:
    """Which parts of the score got better and worse from ``before`` to ``after``: NR metric names,
    and +1 / -1 / 0 for the perception term (less / more / the same degradation found)."""
    if not before or not after:
        return [], [], 0
    better, worse = [], []
    nb, na = before.get("normalized") or {}, after.get("normalized") or {}
    for m in nb:
        if nb.get(m) is None or na.get(m) is None:
            continue
        if na[m] > nb[m] + 1e-4:
            better.append(_metric(m))
        elif na[m] < nb[m] - 1e-4:
            worse.append(_metric(m))
    db, da = before.get("degradation"), after.get("degradation")
    perception = 0
    if db is not None and da is not None:
        perception = 1 if da > db + 1e-4 else -1 if da < db - 1e-4 else 0
    return better, worse, perception


def _worse_parts(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """What got worse from ``before`` to ``after`` scores, in words (the NR metrics, perception)."""
    _, worse, perception = _changes(before, after)
    parts = [f"{_join(worse)} got worse"] if worse else []
    if perception < 0:
        parts.append("perception found more degradation")
    return parts


def _mixed_gain(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """For a kept step whose NR metrics partly fell: what carried the gain, in words."""
    better, worse, perception = _changes(before, after)
    if not worse:
        return ""
    up = ([f"{_join(better)}"] if better else []) + (["perception found less degradation"] if perception > 0 else [])
    if not up:
        return ""
    rose = " and ".join(f"{u} improved" if not u.startswith("perception") else u for u in up)
    return f"; {rose}, while {_join(worse)} got worse"


def rollback_causes(step, min_gain: float = 0.002, min_consistency: float = 0.25) -> list[str]:
    """Why a rolled-back tool step was rolled back, most decisive first: ``guard``, ``structure``,
    ``worse`` (quality fell) or ``small`` (rose by no more than ``min_gain``)."""
    causes = []
    if step.guard and step.guard.get("checked") and step.guard.get("ok") is False:
        causes.append("guard")
    if step.consistency is not None and step.consistency < min_consistency:
        causes.append("structure")
    vouched = bool((step.tool_info or {}).get("vouched"))  # the guard stood in for the NR gain
    if step.gain is not None and step.gain <= min_gain and not vouched:
        causes.append("worse" if step.gain < 0 else "small")
    return causes


def step_verdict(step, min_gain: float = 0.002, min_consistency: float = 0.25) -> str:
    """One line in words on why a step was kept, rolled back or stopped.

    Examples:
        >>> step_verdict(accepted_step)          # doctest: +SKIP
        'kept: quality rose 0.040 (more than the 0.002 needed), the structure held and the no-harm guard passed it'
        >>> step_verdict(guarded_step)           # doctest: +SKIP
        'rolled back by the no-harm guard: likely harm (0.72 > 0.54): what it removed is ...'
    """
    a = step.action
    if a.kind == "stop":
        return f"stopped: {a.reason}" if a.reason else "stopped"
    if a.kind == "rollback":
        return f"undid the last kept step: {a.reason}" if a.reason else "undid the last kept step"
    if step.decision == "error":
        return f"failed: {step.error or 'the tool did not return an image'}"
    gain = step.gain
    revealed = (step.tool_info or {}).get("revealed") or {}
    credit = ""
    if revealed:
        names = _join([DEGRADATION_WORDS.get(d, d) for d in revealed.get("degradations", [])])
        credit = f", counting {float(revealed.get('credit', 0.0)):+.3f} for the {names} it made visible"
    guard = step.guard or {}
    if step.decision == "accept" and (step.tool_info or {}).get("vouched"):
        gain = gain or 0.0
        if gain < 0:
            why = _worse_parts(step.scores_before, step.scores_after)
            fell = f"the NR score fell {abs(gain):.3f}" + (f" ({' and '.join(why)})" if why else "")
        else:
            fell = f"quality rose only {gain:.3f}"
        held = ", the structure held" if step.consistency is not None else ""
        return f"kept: the no-harm guard vouches for it ({guard.get('reason', 'sure it helped')}){held}; {fell}, which it overrules"
    if step.decision == "accept":
        held = " and the structure held" if step.consistency is not None else ""
        if guard.get("checked"):
            held = (", the structure held" if step.consistency is not None else "") + " and the no-harm guard passed it"
        mixed = _mixed_gain(step.scores_before, step.scores_after)
        return f"kept: quality rose {gain or 0.0:.3f} (more than the {min_gain:g} needed{credit}{mixed}){held}"
    causes = rollback_causes(step, min_gain, min_consistency)
    parts = []
    for c in causes:
        if c == "guard":
            parts.append(f"rolled back by the no-harm guard: {guard.get('reason', 'likely harm')}")
        elif c == "structure":
            parts.append(
                f"the output lost the input's structure (consistency {step.consistency:.2f}, needs {min_consistency:g})"
            )
        elif c == "worse":
            why = _worse_parts(step.scores_before, step.scores_after)
            parts.append(f"quality fell {abs(gain):.3f}{credit}" + (f": {' and '.join(why)}" if why else ""))
        elif c == "small":
            parts.append(f"quality rose only {gain:.3f}{credit}, not more than the {min_gain:g} needed")
    if not parts:
        return "rolled back"
    first = parts[0] if parts[0].startswith("rolled back") else "rolled back: " + parts[0]
    return first + "".join(f"; also {p}" for p in parts[1:])


def stop_text(records: list) -> str:
    """Why the run ended, true to what happened: an image restored until perception found nothing
    is "nothing left to fix", not "looks clean"."""
    run = _Run.of(records)
    raw = run.stop_reason
    kept = run.kept
    if raw.startswith("no degradation found"):
        if kept:
            return "nothing left to fix: perception finds no degradation in the restored image"
        if run.tool_steps:
            return "nothing left to try: perception finds no degradation it has a tool for"
        return "the input looks clean: perception found no degradation"
    if raw.startswith("every detected degradation"):
        open_tasks = {s.action.task for s in run.tool_steps} - {s.action.task for s in kept}
        if not open_tasks:
            return "every degradation found was handled"
        return f"every degradation found was handled or has no untried tool left ({_join([_task_noun(t) for t in sorted(open_tasks)])} not fixed)"
    return raw or "the run has not finished"


def summarize(records: list) -> list[str]:
    """Two sentences: what perception found in the input, then what was done and declined.

    Examples:
        >>> summarize(records)      # doctest: +SKIP
        ['Found strong JPEG blocking and mild noise.',
         'Removed the JPEG blocking with waifu2x; left the noise because non-local means and BM3D made it worse.']
    """
    run = _Run.of(records)
    found = _present(run.input_findings)
    if found:
        first = "Found " + _join([f"{severity_words(s)} {DEGRADATION_WORDS.get(d, d)}" for d, s in found]) + "."
    else:
        first = "Found no degradation: the input looks clean to perception."

    kept = run.kept
    kept_ids = {id(s) for s in kept}
    tasks: dict[str, list] = {}
    for s in run.tool_steps:
        tasks.setdefault(str(s.action.task), []).append(s)
    done, left = [], []
    for task, steps in tasks.items():
        mine = [s for s in steps if id(s) in kept_ids]
        if mine:
            done.append(f"{_DONE.get(task, f'ran {task}')} with {_join([tool_words(s.action.tool) for s in mine])}")
            continue
        by_cause: dict[str, list[str]] = {}
        for s in steps:
            if s.decision == "error":
                cause = "error"
            elif s.decision == "accept":  # kept, then undone
                cause = "undone"
            else:
                causes = rollback_causes(s, run.min_gain, run.min_consistency)
                cause = causes[0] if causes else "worse"
            by_cause.setdefault(cause, []).append(tool_words(s.action.tool))
        why = []
        for cause in ("guard", "structure", "worse", "small", "error", "undone"):
            if cause not in by_cause:
                continue
            tools = _join(by_cause[cause])
            why.append(
                {
                    "guard": f"the no-harm guard found that {tools} removed picture content, not only {_task_noun(task)}",
                    "structure": f"{tools} changed the picture's structure",
                    "worse": f"{tools} made it worse",
                    "small": f"{tools} improved it too little",
                    "error": f"{tools} failed",
                    "undone": f"the step with {tools} was undone",
                }[cause]
            )
        left.append(f"{_LEFT.get(task, 'left the ' + _task_noun(task))} because {_join(why[:2])}")
    tried = set(tasks)
    untried = []
    for d, _ in found:
        try:
            task = TASK_FOR[Degradation(d)]
        except ValueError:
            continue
        if str(task) not in tried:
            untried.append(DEGRADATION_WORDS.get(d, d))
    parts = done + left
    if untried:
        reason = run.stop_reason
        budget = "budget" in reason
        parts.append(f"did not get to the {_join(untried)}" + (f": {reason}" if budget else ": no tool was tried for it"))
    if not parts:
        second = "Nothing was changed: the output is the input." if not found else "Nothing was tried: " + stop_text(records) + "."
    else:
        second = _cap("; ".join(parts)) + "."
        if not kept:
            second = "Changed nothing: " + second[0].lower() + second[1:]
    return [first, second]


# -- images -------------------------------------------------------------------------------------------
def image_data_url(image: np.ndarray, lossless: bool = True) -> tuple[str, str]:
    """``(data URL, how it was encoded)`` for one image, by the size policy in the module docstring.

    Examples:
        >>> url, how = image_data_url(np.zeros((48, 64, 3), np.float32))
        >>> url[:22], how
        ('data:image/png;base64,', '64x48, lossless PNG')
    """
    u8 = to_uint8(image)
    if u8.ndim == 2:
        u8 = np.repeat(u8[..., None], 3, axis=2)
    h, w = u8.shape[:2]
    mp = h * w / 1e6
    bgr = cv2.cvtColor(np.ascontiguousarray(u8[..., :3]), cv2.COLOR_RGB2BGR)
    if lossless and mp <= LOSSLESS_MEGAPIXELS:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
        how, mime = f"{w}x{h}, lossless PNG", "image/png"
    else:
        how = f"{w}x{h}, JPEG quality {JPEG_QUALITY}"
        if mp > EMBED_MEGAPIXELS:
            s = (EMBED_MEGAPIXELS / mp) ** 0.5
            bgr = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            how = f"{w}x{h} shown at {bgr.shape[1]}x{bgr.shape[0]}, JPEG quality {JPEG_QUALITY} (open the output file for every pixel)"
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
        ok, buf = cv2.imencode(".jpg", bgr, params)
        mime = "image/jpeg"
    if not ok:
        raise OSError("image encoding for the report failed")
    return f"data:{mime};base64," + base64.b64encode(buf.tobytes()).decode("ascii"), how


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


def _asset(name: str) -> str:
    return (resources.files("restora") / "report_assets" / name).read_text(encoding="utf-8")


# -- html pieces --------------------------------------------------------------------------------------
def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if v is None:
        return "&ndash;"
    return _e(v)


def _params(params: dict[str, Any]) -> str:
    def one(v: Any) -> str:
        return "auto" if v is None else f"{v:g}" if isinstance(v, float) else _e(v)

    return ", ".join(f"{_e(k)}={one(v)}" for k, v in params.items()) or "defaults"


def _plain_evidence(name: str, ev: dict[str, float]) -> str:
    """The one or two evidence values a person can read, in words."""
    out = []
    if name == "noise" and "noise_sigma" in ev:
        out.append(f"noise level about {ev['noise_sigma']:.1f} (0-255 scale)")
    if name == "motion_blur" and "blur_length" in ev:
        out.append(f"smear about {ev['blur_length']:.0f} px at {ev.get('blur_angle', 0):.0f}&deg;")
    if name == "defocus" and "defocus_radius" in ev:
        out.append(f"blur radius about {ev['defocus_radius']:.1f} px")
    if name == "rain" and "rain_angle" in ev:
        out.append(f"streaks at about {ev['rain_angle']:.0f}&deg;")
    if name == "dark" and "mean_luma" in ev:
        out.append(f"mean brightness {100 * ev['mean_luma']:.0f}%")
    if name == "jpeg" and "jpeg_quality" in ev:
        out.append(f"estimated JPEG quality {ev['jpeg_quality']:.0f}")
    if name == "low_res" and "lowres_factor" in ev:
        out.append(f"looks upscaled about {ev['lowres_factor']:.1f}x")
    if name == "haze" and "contrast" in ev:
        out.append(f"contrast {ev['contrast']:.2f}")
    if "probability" in ev:
        out.append(f"network's confidence {100 * ev['probability']:.0f}%")
    if ev.get("whole_image"):
        out.append("decided on the whole frame by the classical measures")
    if ev.get("found_by_network"):
        out.append("found by the network alone")
    if ev.get("found_by_classical"):
        out.append("found by the classical measures, which the network missed")
    return "; ".join(out)


def _finding_cell(f: dict[str, Any] | None, name: str, plain: bool) -> str:
    if f is None:
        return "<td class='no'>not measured</td>"
    if not f.get("present"):
        return "<td class='no'>not found</td>"
    s = float(f.get("severity") or 0.0)
    ev = _plain_evidence(name, f.get("evidence") or {}) if plain else ""
    return (
        f"<td><span class='sev' title='severity {s:.2f} of 1'><span style='width:{100 * s:.0f}%'></span></span>"
        f"<span class='found'>{severity_words(s)}</span> <span class='muted'>{s:.2f}</span>"
        + (f"<br><span class='muted'>{ev}</span>" if ev else "")
        + "</td>"
    )


def _score_rows(before: dict[str, Any] | None, after: dict[str, Any] | None, gain: float | None) -> str:
    if not before:
        return ""
    rows = []
    ob, oa = before.get("overall"), (after or {}).get("overall")
    if oa is not None:
        d = oa - ob
        cls = "better" if d > 1e-4 else "worse" if d < -1e-4 else "same"
        extra = ""
        if gain is not None and abs(gain - d) > 1e-4:
            extra = f" <span class='muted'>(judged {gain:+.3f})</span>"
        rows.append(f"<tr><th>quality (overall)</th><td>{ob:.3f} &rarr; {oa:.3f} <span class='{cls}'>{d:+.3f}</span>{extra}</td></tr>")
    else:
        rows.append(f"<tr><th>quality (overall)</th><td>{ob:.3f}</td></tr>")
    rb, ra = before.get("raw") or {}, (after or {}).get("raw") or {}
    nb, na = before.get("normalized") or {}, (after or {}).get("normalized") or {}
    for m in rb:
        if rb.get(m) is None:
            continue
        if ra.get(m) is None:
            rows.append(f"<tr><th>{_e(_metric(m))}</th><td>{rb[m]:.2f}</td></tr>")
            continue
        d = (na.get(m) or 0.0) - (nb.get(m) or 0.0)
        cls, word = ("better", "better") if d > 1e-4 else ("worse", "worse") if d < -1e-4 else ("same", "same")
        rows.append(
            f"<tr><th>{_e(_metric(m))} <span class='muted'>(lower is better)</span></th>"
            f"<td>{rb[m]:.2f} &rarr; {ra[m]:.2f} <span class='{cls}'>{word}</span></td></tr>"
        )
    db, da = before.get("degradation"), (after or {}).get("degradation")
    if db is not None and da is not None:
        d = da - db
        cls, word = ("better", "less found") if d > 1e-4 else ("worse", "more found") if d < -1e-4 else ("same", "same")
        rows.append(
            f"<tr><th>perception term <span class='muted'>(1 = nothing found)</span></th>"
            f"<td>{db:.2f} &rarr; {da:.2f} <span class='{cls}'>{word}</span></td></tr>"
        )
    return "<table class='scores'>" + "".join(rows) + "</table>"


_CSS_CLASS = {"accept": "accept", "rollback": "rollback", "error": "error", "stop": "stop"}
_BADGE = {"accept": "kept", "rollback": "rolled back", "error": "failed", "stop": "stop"}


def render_report(
    result,
    title: str,
    notes: list[str] | None = None,
    output_name: str | None = None,
    trace_name: str | None = None,
) -> str:
    """HTML for a :class:`restora.agent.RestoreResult` (its ``store`` must hold the step images).

    ``output_name`` and ``trace_name`` are the links to the restored image and the trace, relative
    to the page; by default ``<stem of title>.png`` and ``<stem>.trace.jsonl``, the names
    ``restora run`` writes beside the page.
    """
    store = result.store
    records = list(result.records)
    run = _Run.of(records)
    start = run.start
    end = run.end
    stem = Path(title).stem
    output_name = output_name or f"{stem}.png"
    trace_name = trace_name or f"{stem}.trace.jsonl"

    images: dict[str, str] = {}
    labels: dict[str, dict[str, str]] = {}

    def embed(key: str, image: np.ndarray, short: str, caption: str) -> str:
        if key not in images:
            within = sum(len(u) for u in images.values()) < PAGE_BUDGET_MB * 1e6
            images[key], how = image_data_url(image, lossless=within)
            labels[key] = {"short": short, "caption": f"{caption} ({how})"}
        return key

    in_scores = (end.scores_input if end else None) or (run.steps[0].scores_before if run.steps else None) or {}
    out_scores = (end.scores_final if end else None) or {}
    in_q = f", quality {in_scores['overall']:.3f}" if in_scores.get("overall") is not None else ""
    out_q = f", quality {out_scores['overall']:.3f}" if out_scores.get("overall") is not None else ""
    kept = run.kept
    kept_words = " &rarr; ".join(_e(s.action.tool) for s in kept) or "no step kept"
    in_key = embed("input", store.get(start.image), "input", f"input{in_q}")
    same = bool(end is not None and end.image == start.image) or not kept
    out_key = in_key if same else embed("output", result.image, "output", f"output after {', '.join(s.action.tool for s in kept)}{out_q}")

    def step_key(ref: str | None, n: int, what: str, tool: str | None, suffix: str = "") -> str | None:
        if ref is None or ref not in store:
            return None
        if ref == start.image:
            return in_key
        key = f"s{n}-{what}"
        for k, lab in labels.items():  # the same picture under another name
            if lab.get("ref") == ref:
                return k
        embed(key, store.get(ref), f"step {n} {what}{suffix}", f"step {n} {what}{suffix}: {tool or ''}")
        labels[key]["ref"] = ref
        return key

    if not same and end is not None:
        labels[out_key]["ref"] = end.image  # a kept step's result that is the output is embedded once

    # ---- head, summary
    found, done = summarize(records)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>restora: {_e(title)}</title><style>{_asset('page.css')}</style></head><body><main>",
        f"<h1>restora: {_e(title)}</h1>",
        f"<div class='meta'>{start.width}x{start.height} &middot; planner {_e(start.config.get('planner'))}"
        f" &middot; {result.tool_calls} tool calls &middot; {result.seconds:.1f} s &middot; kept: {kept_words}</div>",
        f"<div class='links meta'><a href='{_e(output_name)}'>output image ({_e(output_name)})</a>"
        f"<a href='{_e(trace_name)}'>trace ({_e(trace_name)})</a></div>",
        f"<section class='summary' id='summary'><p class='lead'>{_e(found)} {_e(done)}</p>"
        f"<p class='meta'>Stopped: {_e(stop_text(records))}.</p></section>",
    ]
    all_notes = list(notes or []) + list(start.notes)
    if all_notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{_e(n)}</li>" for n in dict.fromkeys(all_notes)) + "</ul>")
    crops = start.config.get("plan_crops") or []
    if crops:
        listed = "; ".join(f"{c['role']} at x={c['x']}, y={c['y']} ({c['w']}x{c['h']})" for c in crops)
        preview, _ = image_data_url(_outline_crops(store.get(start.image), crops))
        parts.append(
            f"<div class='crops'><p class='meta'>Planned at native resolution on {len(crops)} crops (outlined in the input): "
            f"{_e(listed)}. Each step ran on those crops side by side; the kept steps were then rendered once on the whole image. "
            f"The step images below are the crops.</p><img src='{preview}' alt='input with the planning crops outlined' "
            "style='max-width:480px'></div>"
        )

    # ---- step images (before building the viewer's menus)
    step_keys: dict[int, tuple[str | None, str | None]] = {}
    for s in sorted(run.tool_steps, key=lambda s: s.decision != "accept"):  # kept ones first, for the budget
        b = step_key(s.image_before, s.step, "input", s.action.tool)
        a = step_key(s.image_after, s.step, "result", s.action.tool, f" ({_BADGE.get(s.decision, s.decision)})")
        step_keys[s.step] = (b, a)

    # ---- viewer: input against the output; with nothing kept, against the best-scoring try
    right = out_key
    tries = [s for s in run.tool_steps if step_keys.get(s.step, (None, None))[1] and s.scores_after]
    if same and tries:
        best = max(tries, key=lambda s: float(s.scores_after.get("overall") or 0.0))
        right = step_keys[best.step][1]
    options = "".join(f"<option value='{_e(k)}'>{_e(labels[k]['short'])}</option>" for k in images)
    parts.append(
        "<h2>Before / after</h2>"
        f"<div class='viewer' id='viewer' data-before='{in_key}' data-after='{right}'>"
        "<div class='toolbar'>"
        f"<label>left <select id='sel-before' aria-label='left image'>{options}</select></label>"
        f"<label>right <select id='sel-after' aria-label='right image'>{options}</select></label>"
        "<span><button data-zoom='out' title='zoom out'>&minus;</button> <span class='zoom'>100%</span> "
        "<button data-zoom='in' title='zoom in'>+</button> <button data-zoom='fit'>fit</button> "
        "<button data-zoom='1'>1:1</button> <button data-zoom='4'>4x</button></span>"
        "<button data-open title='the right image, full size, in a new tab'>open full size</button>"
        "</div>"
        "<div class='vp' tabindex='-1'>"
        "<div class='layer after'><img class='after' alt='right image'></div>"
        "<div class='layer before'><img class='before' alt='left image'></div>"
        "<span class='tag l'></span><span class='tag r'></span>"
        "<div class='handle' role='slider' tabindex='0' aria-label='compare: drag left or right' "
        "aria-valuemin='0' aria-valuemax='100' aria-valuenow='50'></div>"
        "</div><div class='vcap'></div></div>"
        "<p class='meta'>Drag the white bar to compare; scroll (or pinch, or the buttons) to zoom, drag the picture to pan, "
        "double-click for 2x. Pixels show as squares above 2x, so noise and JPEG blocks stay visible."
        + (
            (" No step was kept, so the output is the input; on the right is the best-scoring try, which was rolled back. "
             "The step cards below open each try here.")
            if same and right != out_key
            else " No step was kept: the output is the input." if same else ""
        )
        + "</p>"
    )

    # ---- steps, by task, side by side
    parts.append(_steps_section(run, step_keys, labels))
    # ---- perception over the run
    parts.append(_perception_section(run))
    # ---- how it is judged
    parts.append(_judging_section(run))
    # ---- details
    parts.append(_details_section(run, records, result))
    parts.append(
        f"<p class='meta'>Files beside this page: <a href='{_e(output_name)}'>{_e(output_name)}</a> (the restored image) and "
        f"<a href='{_e(trace_name)}'>{_e(trace_name)}</a> (the trace: schema version 1, one JSON record per line).</p>"
    )
    parts.append(f"<script type='application/json' id='restora-images'>{json.dumps(images)}</script>")
    public_labels = {k: {"short": v["short"], "caption": v["caption"]} for k, v in labels.items()}
    parts.append(f"<script type='application/json' id='restora-labels'>{_json_script(public_labels)}</script>")
    parts.append(f"<script>{_asset('viewer.js')}</script>")
    parts.append("<noscript><p>The images need JavaScript (inline, no network).</p></noscript>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _json_script(obj: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj).replace("</", "<\\/")


def _steps_section(run: _Run, step_keys: dict[int, tuple[str | None, str | None]], labels: dict) -> str:
    tool_steps = run.tool_steps
    out = ["<h2>What was tried</h2>"]
    if not tool_steps:
        out.append("<p>No tool ran.</p>")
        return "".join(out)
    out.append(
        "<p class='meta'>Each card is one try; the tries for one problem stand side by side. Click a picture to compare it "
        "with its input above.</p>"
    )
    kept_ids = {id(s) for s in run.kept}
    groups: dict[str, list] = {}
    for s in tool_steps:
        groups.setdefault(str(s.action.task), []).append(s)
    for task, steps in groups.items():
        outcome = "kept " + _join([tool_words(s.action.tool) for s in steps if id(s) in kept_ids]) if any(
            id(s) in kept_ids for s in steps
        ) else "nothing kept"
        out.append(
            f"<div class='task'><h3>{_e(_cap(_task_noun(task)))} <span class='muted'>({_e(task)}: {len(steps)} "
            f"{'try' if len(steps) == 1 else 'tries'}, {_e(outcome)})</span></h3><div class='cards'>"
        )
        for s in steps:
            out.append(_card(run, s, step_keys.get(s.step, (None, None))))
        out.append("</div></div>")
    others = [s for s in run.steps if s.action.kind == "rollback"]
    for s in others:
        out.append(f"<p>Step {s.step}: {_e(step_verdict(s))}</p>")
    return "".join(out)


def _card(run: _Run, s, keys: tuple[str | None, str | None]) -> str:
    a = s.action
    dec = s.decision
    verdict = step_verdict(s, run.min_gain, run.min_consistency)
    before, after = keys
    img = "<div class='thumb muted' style='padding:8px'>no image: the tool failed</div>"
    if after is not None:
        img = (
            f"<button class='thumb' data-compare='{_e(before or 'input')} {_e(after)}' "
            f"title='compare with its input, full size'><img data-img='{_e(after)}' alt='step {s.step} result'></button>"
        )
    perc = ""
    if dec == "accept":
        obs = run.observation_of(s.image_after)
        if obs is not None:
            found = _present(obs.get("findings") or {})
            perc = "After this step perception finds " + (
                _join([f"{severity_words(v)} {DEGRADATION_WORDS.get(d, d)} ({v:.2f})" for d, v in found]) or "nothing"
            ) + "."
        else:
            perc = "Perception of this result is not in the trace."
    trials = (s.tool_info or {}).get("trials") or []
    trial_text = ""
    if trials:
        trial_text = "<p class='muted'>Settings tried on the same input: " + "; ".join(
            f"{_params(t.get('params') or {})}: quality {float(t.get('overall', float('nan'))):.3f}"
            + ("" if t.get("guard_ok", True) else ", guard said harm")
            + (" <b>(chosen)</b>" if t.get("chosen") else "")
            for t in trials
        ) + "</p>"
    fallback = f"<p class='why error'>planner fell back: {_e(a.fallback)}</p>" if a.fallback else ""
    return (
        f"<article class='card {_CSS_CLASS.get(dec, '')}' id='step-{s.step}'>"
        f"<div class='head'><span class='badge {_CSS_CLASS.get(dec, '')}'>{_BADGE.get(dec, dec)}</span>"
        f"<span>step {s.step}</span> <b>{_e(tool_words(a.tool))}</b> <code>{_e(a.tool)}</code></div>"
        f"{img}<p class='why {_CSS_CLASS.get(dec, '')}'>{_e(verdict)}</p>"
        f"{_score_rows(s.scores_before, s.scores_after, s.gain)}"
        + (f"<p>{_e(perc)}</p>" if perc else "")
        + f"<p class='muted'>settings: {_params(a.params)}</p>{trial_text}{fallback}"
        "</article>"
    )


def _perception_section(run: _Run) -> str:
    if not run.steps:
        return ""
    cols: list[tuple[str, dict[str, Any] | None]] = [("input", run.input_findings)]
    for s in run.kept:
        obs = run.observation_of(s.image_after)
        cols.append((f"after step {s.step} ({tool_words(s.action.tool)})", (obs or {}).get("findings") if obs else None))
    head = "".join(f"<th>{_e(c)}</th>" for c, _ in cols)
    rows = []
    for d in Degradation:
        name = d.value
        cells = []
        for i, (_, f) in enumerate(cols):
            cells.append(_finding_cell(None if f is None else f.get(name, {"present": False}), name, plain=i == 0))
        rows.append(f"<tr><th>{_e(DEGRADATION_WORDS.get(name, name))}</th>{''.join(cells)}</tr>")
    missing = any(f is None for _, f in cols)
    return (
        "<h2>What perception saw</h2>"
        "<p class='meta'>Strength (0 to 1) is shown only for what perception calls present; the raw scores of the rest, "
        "and every measurement, are in the details below."
        + (" A column marked \"not measured\": no later step looked at that image." if missing else "")
        + f"</p><div class='tablewrap'><table><tr><th>problem</th>{head}</tr>{''.join(rows)}</table></div>"
    )


def _judging_section(run: _Run) -> str:
    metrics = ", ".join(_metric(m) for m in run.config.get("metrics") or ["niqe", "brisque", "piqe"])
    guard = run.config.get("guard", True)
    return (
        "<h2>How a step is judged</h2><p>Every result gets a <b>quality</b> score from 0 to 1 (<i>overall</i> in the trace): "
        f"half of it is the mean of three no-reference quality measures ({_e(metrics)}; each mapped to 0-1, higher is better), "
        "half is a perception term that is 1 when perception finds no degradation and falls with what it finds. "
        f"A step is <b>kept</b> when quality rises by more than <b>{run.min_gain:g}</b>, the result keeps the input's coarse "
        f"structure (consistency at least {run.min_consistency:g}, so a tool cannot replace the picture with a cleaner-looking "
        "different one)"
        + (
            ", and the <b>no-harm guard</b> finds that what the step removed looks like the degradation it targets, not "
            "picture content (edges, text, texture)"
            if guard
            else " (the no-harm guard was off for this run)"
        )
        + ". Otherwise it is <b>rolled back</b>: the image returns to what it was and that tool with those settings is not "
        "tried again.</p>"
    )


def _details_section(run: _Run, records: list, result) -> str:
    out = ["<details id='details'><summary>Details for experts: raw evidence, scores, settings, timings</summary>"]
    out.append(f"<p class='meta'>Stop reason as the planner gave it: <code>{_e(run.stop_reason)}</code></p>")
    # raw evidence of the input
    rows = []
    for name, f in run.input_findings.items():
        ev = ", ".join(f"{_e(k)}={_fmt(v)}" for k, v in (f.get("evidence") or {}).items())
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{'yes' if f.get('present') else 'no'}</td>"
            f"<td>{float(f.get('severity') or 0.0):.2f}</td><td><code>{ev}</code></td></tr>"
        )
    out.append(
        "<h3>Perception of the input, raw</h3><p class='meta'>severity is the detector's raw strength score; "
        "for a finding not called present it is not a measure of that degradation.</p><div class='tablewrap'>"
        "<table><tr><th>degradation</th><th>present</th><th>severity</th><th>evidence</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )
    # every step, raw
    rows = []
    for r in run.steps:
        a = r.action
        guard = r.guard or {}
        g = ""
        if guard.get("checked"):
            g = f"guard: {_e(guard.get('reason', ''))} (p_harm {_fmt(guard.get('p_harm'))}, threshold {_fmt(guard.get('threshold'))})"
            feats = guard.get("features") or guard.get("measures") or {}
            if feats:
                g += "<br><code>" + ", ".join(f"{_e(k)}={_fmt(v)}" for k, v in feats.items()) + "</code>"
        elif guard:
            g = f"guard: {_e(guard.get('reason', ''))}"
        raw_scores = []
        for label, sc in (("before", r.scores_before), ("after", r.scores_after)):
            if sc:
                raw = ", ".join(f"{_e(k)}={_fmt(v)}" for k, v in (sc.get("raw") or {}).items())
                raw_scores.append(
                    f"{label}: overall={_fmt(sc.get('overall'))} nr={_fmt(sc.get('nr'))} "
                    f"degradation={_fmt(sc.get('degradation'))} {raw}"
                )
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in r.timings.items() if v)
        info = ", ".join(f"{_e(k)}={_e(json.dumps(v)[:200])}" for k, v in (r.tool_info or {}).items())
        rows.append(
            f"<tr><td>{r.step}</td><td>{_e(a.kind)} <b>{_e(a.tool or '')}</b> {_e(a.task or '')}<br><code>{_params(a.params)}</code>"
            f"<br><span class='muted'>planner: {_e(a.reason)}</span></td><td>{_e(r.decision)}"
            f"{'' if r.gain is None else f'<br>gain {r.gain:+.4f}'}"
            f"{'' if r.consistency is None else f'<br>consistency {r.consistency:.3f}'}"
            f"{'' if not r.error else '<br>' + _e(r.error)}</td>"
            f"<td><code>{'<br>'.join(raw_scores)}</code></td><td>{g}"
            f"{'<br>banned: <code>' + _e(', '.join(r.banned)) + '</code>' if r.banned else ''}"
            f"{'<br>tool: <code>' + info + '</code>' if info else ''}"
            f"{'<br><span class=muted>' + timing + '</span>' if timing else ''}</td></tr>"
        )
    out.append(
        "<h3>Every step, raw</h3><div class='tablewrap'><table><tr><th>#</th><th>action</th><th>decision</th>"
        "<th>scores</th><th>checks</th></tr>" + "".join(rows) + "</table></div>"
    )
    cfg = {k: v for k, v in run.config.items() if k != "plan_crops"}
    out.append(f"<h3>Run settings</h3><p><code>{_e(json.dumps(cfg))}</code></p>")
    if run.end is not None and run.end.scores_final:
        notes = run.end.scores_final.get("notes") or []
        if notes:
            out.append("<p class='meta'>Scoring: " + _e("; ".join(notes)) + "</p>")
    out.append("</details>")
    return "".join(out)
