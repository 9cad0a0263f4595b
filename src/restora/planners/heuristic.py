"""The default planner on a CPU: degradation report -> next task -> tool by expected gain and cost.

Rules, in order:
1. Nothing present in the perception report, nor left over from the input's (below): stop (a
   clean image comes back unchanged). Haze or dark that the input did not show does not count
   once a step was kept (:func:`tone_look`: the frame's tone is read on the input).
2. The last ``patience`` steps all failed or were rolled back and every present task has had a
   try: stop (quality stopped improving), unless a task is owed its stronger step (rule 4).
3. Take the present degradations in restoration order (the reverse of how they form: compression,
   then imaging, then scene; :data:`restora.taxonomy.RESTORATION_ORDER`), the untried ones first
   (breadth first: a task whose first step was rolled back is retried only after the others had
   their first try). Skip a task once a step for it was accepted, or after ``max_tries_per_task``
   attempts.
4. For the first remaining task, rank its tools by expected gain over estimated time (learned tools
   are expected to gain more than classical ones; tools that would not fit the time left are
   skipped), and interleave their suggested params (each tool's first suggestion, then each
   tool's second, ...). Return the first choice that is not banned, nor the same kernel of a motion
   deblur the no-harm guard rejected with another solver (:func:`rejected_hypotheses`). A deblur
   of a picture whose input read as JPEG gets a noise floor for its regularisation
   (:func:`jpeg_noise_floor`).
   Before all that: when the no-harm guard rejected the task's last step as too faint to judge
   (:attr:`restora.quality.guard.GuardVerdict.faint`), the same tool once more, one step stronger
   (:func:`escalation`).
5. Nothing left to try: stop.

A degradation present in the input's report (``Observation.input_report``) whose task has not
been tried yet stays on the list with the input's severity and evidence, even when the current
report no longer shows it: a step aimed at something else rarely removes it, and perception
misses it more often after one (rain streaks after super-resolution, blur under a brightened
image). Trying it costs a tool call; the accept rule keeps it only if it helps.

Examples:
    >>> from restora.planners import HeuristicPlanner
    >>> planner = HeuristicPlanner(patience=3)
    >>> action = planner.next_action(observation)      # doctest: +SKIP
    >>> action.tool, action.params                      # doctest: +SKIP
    ('denoise_srmd', {'sigma': 18.0})
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest
from typing import Any

from restora.planners.base import Action, Observation, brightening_declined, brighteners, choice_key, reads
from restora.taxonomy import (
    DEGRADATION_FOR,
    RESTORATION_ORDER,
    TASK_FOR,
    TONE_TASKS,
    Degradation,
    Task,
)
from restora.errors import UnknownToolError
from restora.tools._classical import jpeg_deconv_sigma
from restora.tools.registry import get_tool

LEARNED_GAIN = 1.0
CLASSICAL_GAIN = 0.6
TIME_SCALE = 30.0
"""Seconds at which a tool's expected gain counts half: ranking uses gain / (1 + seconds / this),
so a few seconds barely matter and a tool that would take minutes goes behind faster ones."""


class HeuristicPlanner:
    name = "heuristic"

    def __init__(self, patience: int = 3, max_tries_per_task: int = 3, time_scale: float = TIME_SCALE) -> None:
        self.patience = patience
        self.time_scale = time_scale
        self.max_tries_per_task = max_tries_per_task

    def next_action(self, obs: Observation) -> Action:
        done: set[str] = {h.task for h in obs.history if h.decision == "accept" and h.task}
        tries: dict[str, int] = {}
        for h in obs.history:
            if h.task:
                tries[h.task] = tries.get(h.task, 0) + 1
        found = [f for f in obs.report.get("findings", {}).values() if f.get("present")]
        present = [f for f in found if not tone_look(f["degradation"], obs)]
        looks = [f["degradation"] for f in found if f not in present]
        present += left_over(obs.input_report, {f["degradation"] for f in present}, set(tries))
        present = [f for f in present if not dim_noise_deferred(f, obs)]
        if any(h.kept_dim for h in obs.history):
            # a step was kept on the dim picture as it is, its brightening declined: it stays dim
            tone = {str(DEGRADATION_FOR[Task(t)]) for t in TONE_TASKS}
            kept_dim = [f["degradation"] for f in present if f["degradation"] in tone]
            present = [f for f in present if f["degradation"] not in tone]
            if kept_dim and not present:
                return Action.stop(f"the picture stays dim: its brightening was not kept, and a step was kept on it as it is (the {' and '.join(kept_dim)} it reads is left)")
        if not present:
            if looks:
                return Action.stop(f"nothing left to fix: the {' and '.join(looks)} it reads now was not in the input (the look of the steps kept)")
            return Action.stop("no degradation found: the image looks clean")
        # breadth first: every present task gets its first try (in restoration order) before
        # any task gets a second one, so one stubborn task cannot spend the budget of the rest
        order = {t: i for i, t in enumerate(RESTORATION_ORDER)}
        tasks = sorted(
            ((TASK_FOR[Degradation(f["degradation"])], f) for f in present),
            key=lambda tf: (tries.get(str(tf[0]), 0) > 0, order[tf[0]]),
        )
        untried = any(tries.get(str(t), 0) == 0 for t, _ in tasks)
        recent = obs.history[-self.patience :]
        owed = any(t not in done and tries.get(t, 0) < self.max_tries_per_task and escalation(obs, t) is not None for t, _ in tasks)
        if not untried and not owed and len(recent) == self.patience and all(h.decision != "accept" for h in recent):
            return Action.stop(f"quality stopped improving: the last {self.patience} steps were not kept")

        megapixels = obs.report.get("width", 512) * obs.report.get("height", 512) / 1e6
        for task, finding in tasks:
            if task in done or tries.get(task, 0) >= self.max_tries_per_task:
                continue
            action = self._choose(task, finding, obs, megapixels)
            if action is not None:
                return action
        return Action.stop("every detected degradation was handled or has no untried tool left")

    def _choose(
        self, task: Task, finding: dict[str, Any], obs: Observation, megapixels: float
    ) -> Action | None:
        stronger = escalation(obs, task)
        if stronger is not None:
            return stronger
        tools = rank_tools(task, obs.catalogue, megapixels, obs.seconds_left, self.time_scale)
        severity = float(finding.get("severity", 0.5))
        evidence = blur_extent(finding, obs)
        if task in (Task.MOTION_DEBLUR, Task.DEFOCUS_DEBLUR):
            floor = jpeg_noise_floor(obs)
            if floor is not None:
                evidence = {**evidence, "deconv_noise_floor": floor}
        suggestions = [
            [(name, p.model_dump(mode="json")) for p in get_tool(name).suggest_params_for(task, severity, evidence)]
            for name in tools
        ]
        banned = set(obs.banned)
        blamed = rejected_hypotheses(obs)
        for row in zip_longest(*suggestions):
            for item in row:
                if item is None:
                    continue
                name, params = item
                if choice_key(name, params) in banned:
                    continue
                hypothesis = get_tool(name).hypothesis(params)
                if hypothesis is not None and (name, hypothesis) in blamed:
                    continue
                return Action(
                    kind="tool",
                    tool=name,
                    task=str(task),
                    params=params,
                    reason=_reason(finding, severity, evidence, name),
                )
        return None


STRONGER_FACTOR = 2.0
"""How much stronger the step after a faint rejection is (:meth:`restora.tools.base.Tool.stronger`).
``scripts/denoise_sigma.py`` (synthesized validation pictures): SRMD on camera noise gains most at
1.4-2x the network's sigma (+3.2 dB at 2x against +2.6 at 1x); on white noise 2x loses 2 dB to 1x,
which is why it comes only after the 1x step was too faint to judge."""


def escalation(obs: Observation, task: Task | str) -> Action | None:
    """The same tool one step stronger, when the no-harm guard rejected the last step for ``task``
    as too faint to judge (``HistoryItem.guard_faint``), once per tool and task: what a faint step
    removed is below the level where the guard tells a degradation from content, and its fit saw
    few such steps, so the rejection does not show that the tool is wrong. On real camera noise
    (cc_nam) SRMD at the network's sigma leaves nothing above that level; at twice it, it does
    and the guard passes it. None otherwise (a stronger setting tried or banned, none possible).

    Examples:
        >>> from restora.planners.base import HistoryItem
        >>> faint = HistoryItem(step=0, tool="denoise_srmd", task="denoise", params={"sigma": 3.2, "rotations": 1},
        ...                     decision="rollback", guard_rejected=True, guard_faint=True)
        >>> obs = Observation(step=1, report={}, scores={}, history=[faint], steps_left=3, seconds_left=60.0)
        >>> escalation(obs, "denoise").params
        {'sigma': 6.4, 'rotations': 1}
        >>> escalation(obs.model_copy(update={"history": [faint.model_copy(update={"guard_faint": False})]}), "denoise") is None
        True
    """
    mine = [h for h in obs.history if h.task == str(task)]
    if not mine or not mine[-1].guard_faint:
        return None
    last = mine[-1]
    if sum(1 for h in mine if h.guard_faint and h.tool == last.tool) > 1:
        return None  # once: the stronger step was faint too
    try:
        params = get_tool(last.tool).stronger(last.params, STRONGER_FACTOR)
    except UnknownToolError:
        return None
    if params is None or choice_key(last.tool, params) in set(obs.banned):
        return None
    if any(h.tool == last.tool and h.params == params for h in obs.history):
        return None
    return Action(
        kind="tool",
        tool=last.tool,
        task=str(task),
        params=params,
        reason=f"{last.tool} again, {STRONGER_FACTOR:g}x stronger: the no-harm guard could not judge the last step, too faint",
    )


def rejected_hypotheses(obs: Observation) -> set[tuple[str, tuple[Any, ...]]]:
    """``(tool, hypothesis)`` of every step the no-harm guard rejected, for tools whose params
    state a hypothesis about the degradation (:meth:`restora.tools.base.Tool.hypothesis`): the
    planner does not retry one with another solver.

    Examples:
        >>> from restora.planners.base import HistoryItem
        >>> cg = HistoryItem(step=0, tool="deblur_motion", task="motion_deblur", params={"length": 9.0, "angle": 30.0, "method": "cg"},
        ...                  decision="rollback", guard_rejected=True)
        >>> obs = Observation(step=1, report={}, scores={}, history=[cg], steps_left=3, seconds_left=60.0)
        >>> rejected_hypotheses(obs)
        {('deblur_motion', (9.0, 30.0))}
    """
    out: set[tuple[str, tuple[Any, ...]]] = set()
    for h in obs.history:
        if not h.guard_rejected:
            continue
        try:
            hypothesis = get_tool(h.tool).hypothesis(h.params)
        except UnknownToolError:  # a tool this install lacks (a session resumed elsewhere)
            continue
        if hypothesis is not None:
            out.add((h.tool, hypothesis))
    return out


def dim_noise_deferred(finding: dict[str, Any], obs: Observation) -> bool:
    """Whether ``finding`` is noise that perception found on a dim picture's brightened view alone
    (evidence ``only_viewed``; :mod:`restora.perception.learned`, ``view_noise``) while the frame
    reads dark and a brightening is still to be tried: it waits until every low-light tool was
    tried and none kept (the picture stays dim, and its noise is the step left; see
    :func:`restora.agent.nodes.vouch_withheld`). A brightening kept first changes what the noise
    looks like, and perception reads it again on the brightened picture. On bench mio's rain+dark
    (4 tool calls) two denoise tries of such noise left no call for LIME (kodim02: 18.7 -> 9.4 dB).

    Examples:
        >>> from restora.planners.base import HistoryItem
        >>> noise = {"degradation": "noise", "present": True, "evidence": {"only_viewed": 1.0}}
        >>> dark = {"findings": {"dark": {"present": True}}}
        >>> cat = {n: {"name": n, "task": "low_light", "tasks": ["low_light"]} for n in ("lowlight_gamma", "lowlight_lime")}
        >>> obs = Observation(step=0, report=dark, scores={}, history=[], steps_left=4, seconds_left=60.0, catalogue=cat)
        >>> dim_noise_deferred(noise, obs)
        True
        >>> tried = [HistoryItem(step=i, tool=t, task="low_light", params={}, decision="rollback") for i, t in enumerate(cat)]
        >>> dim_noise_deferred(noise, obs.model_copy(update={"history": tried}))
        False
    """
    if finding.get("degradation") != "noise" or not (finding.get("evidence") or {}).get("only_viewed"):
        return False
    if not reads(obs.report, "dark"):
        return False
    return not brightening_declined([h.model_dump() for h in obs.history], brighteners(obs.catalogue) or None)


def tone_look(degradation: str, obs: Observation) -> bool:
    """Whether a tone finding (haze, dark) is the look of the steps already kept rather than the
    scene's: it was not in the input's report and a step was kept since. The frame's tone is read
    on the input: on a processed picture the readings are out of their depth. Brightening lifts
    the shadows, which is what haze looks like (a dehaze after LIME cost 2.4 dB on a dark, blurred
    crop), and the network read a deblurred, de-blocked crop as hazy (the dehaze that followed cost
    7 dB). A haze the input showed stays on the list (:func:`left_over`).

    Examples:
        >>> from restora.planners.base import HistoryItem
        >>> lime = HistoryItem(step=0, tool="lowlight_lime", task="low_light", params={}, decision="accept")
        >>> obs = Observation(step=1, report={}, scores={}, input_report={"findings": {"dark": {"present": True}}},
        ...                   history=[lime], steps_left=3, seconds_left=60.0)
        >>> tone_look("haze", obs), tone_look("rain", obs), tone_look("haze", obs.model_copy(update={"history": []}))
        (True, False, False)
    """
    tone = {str(DEGRADATION_FOR[Task(t)]) for t in TONE_TASKS}
    if degradation not in tone or not any(h.decision == "accept" for h in obs.history):
        return False
    found = (obs.input_report or {}).get("findings", {}).get(degradation) or {}
    return not found.get("present")


BLUR_EXTENT = ("defocus_radius", "blur_length")
"""Evidence keys of a blur's extent: the deblurs' kernel sizes."""


def blur_extent(finding: dict[str, Any], obs: Observation) -> dict[str, Any]:
    """The ``finding``'s evidence with each blur extent no larger than the input's reading of the
    same finding, once a step was kept. A de-blocking or denoise smooths the picture, which reads
    as more blur, and too large a kernel rings where too small a one leaves some blur: after
    waifu2x the defocus radius of a kodak crop read 4.49 where the input read 3.64 (true 3.8), and
    the deblur at 4.49 ended 2.8 dB below the input.

    Examples:
        >>> from restora.planners.base import HistoryItem
        >>> kept = HistoryItem(step=0, tool="dejpeg_waifu2x", task="dejpeg", params={}, decision="accept")
        >>> inp = {"findings": {"defocus": {"evidence": {"defocus_radius": 3.6}}}}
        >>> obs = Observation(step=1, report={}, scores={}, input_report=inp, history=[kept], steps_left=3, seconds_left=60.0)
        >>> blur_extent({"degradation": "defocus", "evidence": {"defocus_radius": 4.5, "noise_sigma": 2.0}}, obs)
        {'defocus_radius': 3.6, 'noise_sigma': 2.0}
        >>> blur_extent({"degradation": "defocus", "evidence": {"defocus_radius": 3.0}}, obs)
        {'defocus_radius': 3.0}
    """
    evidence = finding.get("evidence", {})
    if not any(h.decision == "accept" for h in obs.history):
        return evidence
    found = ((obs.input_report or {}).get("findings") or {}).get(finding.get("degradation")) or {}
    read = found.get("evidence") or {}
    out = dict(evidence)
    for key in BLUR_EXTENT:
        now, then = out.get(key), read.get(key)
        if isinstance(now, (int, float)) and isinstance(then, (int, float)) and 0 < then < now:
            out[key] = float(then)
    return out


def jpeg_noise_floor(obs: Observation) -> float | None:
    """The deconvolution noise floor (0-255) for a deblur of a picture whose input read as JPEG
    (:func:`restora.tools._classical.jpeg_deconv_sigma` at the input's JPEG quality, lower once a
    de-blocking step was kept); None when the input showed no JPEG. The noise estimate reads the
    JPEG error (and a de-blocker's smooth output) as almost no noise, and the deconvolution then
    turns it into ripples: a defocus+JPEG kodak crop ended 3.2 dB below its input after waifu2x
    and a deblur at the balance of that estimate (the minimum), 1.1 dB above it with the floor.

    Examples:
        >>> from restora.planners.base import HistoryItem
        >>> inp = {"findings": {"jpeg": {"present": True, "evidence": {"jpeg_quality": 45}}}}
        >>> obs = Observation(step=0, report={}, scores={}, input_report=inp, steps_left=4, seconds_left=60.0)
        >>> round(jpeg_noise_floor(obs), 2)
        5.87
        >>> kept = HistoryItem(step=0, tool="dejpeg_waifu2x", task="dejpeg", params={}, decision="accept")
        >>> round(jpeg_noise_floor(obs.model_copy(update={"history": [kept]})), 2)
        2.93
        >>> jpeg_noise_floor(obs.model_copy(update={"input_report": {"findings": {}}})) is None
        True
    """
    found = ((obs.input_report or {}).get("findings") or {}).get("jpeg") or {}
    quality = (found.get("evidence") or {}).get("jpeg_quality")
    if not found.get("present") or not isinstance(quality, (int, float)):
        return None
    deblocked = any(h.decision == "accept" and h.task == "dejpeg" for h in obs.history)
    return round(jpeg_deconv_sigma(float(quality), deblocked), 2)


def left_over(input_report: dict[str, Any] | None, present: set[str], tried: set[str]) -> list[dict[str, Any]]:
    """Findings of the input's report that are not ``present`` now and whose task is not among the
    ``tried`` ones, marked ``from_input``.

    Examples:
        >>> inp = {"findings": {"rain": {"degradation": "rain", "present": True, "severity": 0.3}}}
        >>> [(f["degradation"], f["from_input"]) for f in left_over(inp, set(), {"super_resolution"})]
        [('rain', True)]
        >>> left_over(inp, set(), {"derain"})
        []
    """
    if not input_report:
        return []
    out = []
    for f in input_report.get("findings", {}).values():
        if not f.get("present") or f["degradation"] in present:
            continue
        task = TASK_FOR.get(Degradation(f["degradation"]))
        if task is not None and str(task) not in tried:
            out.append({**f, "from_input": True})
    return out


def _reason(finding: dict[str, Any], severity: float, evidence: dict[str, Any], tool: str) -> str:
    shown = ", ".join(f"{k}={v:.3g}" for k, v in list(evidence.items())[:3] if isinstance(v, (int, float)))
    where = "; found in the input, not seen since" if finding.get("from_input") else ""
    return f"{finding['degradation']} (severity {severity:.2f}; {shown}{where}) -> {tool}"


def rank_tools(
    task: Task | str,
    catalogue: Mapping[str, Mapping[str, Any]],
    megapixels: float = 0.25,
    seconds_left: float = float("inf"),
    time_scale: float = TIME_SCALE,
) -> list[str]:
    """The tools of ``catalogue`` (name -> ``Tool.describe()``) for ``task``, best first.

    Ranked by expected gain (the tool's ``prior``; without one, learned tools above classical
    ones) over ``1 + estimated seconds / time_scale``, seconds estimated at
    ``megapixels``; tools that would not finish in ``seconds_left`` are left out. Ties go by name.
    The first is the task's default tool (the benchmark's ``fixed`` and ``greedy`` use it).

    Examples:
        >>> cat = {"a_classical": {"task": "denoise", "cost": 1.0, "learned": False},
        ...        "b_learned": {"task": "denoise", "cost": 1.0, "learned": True},
        ...        "c_other": {"task": "dehaze", "cost": 0.1, "learned": False}}
        >>> rank_tools("denoise", cat)
        ['b_learned', 'a_classical']
    """
    task = Task(task)
    ranked = []
    for name, desc in catalogue.items():
        if str(task) not in (desc.get("tasks") or [desc.get("task")]):
            continue
        est_seconds = float(desc.get("cost", 1.0)) * max(megapixels, 0.01)
        if est_seconds > seconds_left:
            continue
        gain = desc.get("prior")
        if gain is None:
            gain = LEARNED_GAIN if desc.get("learned") else CLASSICAL_GAIN
        ranked.append((gain / (1.0 + est_seconds / time_scale), name))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    return [name for _, name in ranked]
