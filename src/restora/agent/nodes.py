"""The agent's nodes: plain functions of (state, runtime) returning a partial state update.

Nodes have no side effects on the trace: a node that decides something returns its
:class:`restora.traces.StepRecord` as JSON under ``emitted`` in its update, and the
:class:`restora.agent.Run` driving the graph writes it out (so a re-run node cannot write twice).
``on_event`` progress callbacks are the only call-outs.
"""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from restora.agent.context import AgentContext
from restora.agent.state import AgentState, Candidate
from restora.errors import RestoraError, ToolError
from restora.perception.decide import NOISE_PRESENT_SIGMA
from restora.planners.base import Action, HistoryItem, Observation, brightening_declined, brighteners, choice_key, reads
from restora.quality import DEGRADATION_WEIGHT, degradation_quality, structure_consistency
from restora.taxonomy import DEGRADATION_FOR, TONE_TASKS, Task
from restora.traces.schema import ActionRecord, StepRecord

MAX_PLANNER_ERRORS = 3


def assess(perceive: Any, scorer: Any, image) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report, scores) of ``image`` as JSON dicts. The scores' perception term comes from the
    report's :attr:`~restora.perception.DegradationReport.judge` (the classical estimators when a
    learned perception chose the tools); the report then carries that reading under ``"judge"``."""
    report = perceive(image)
    judge = report.judge
    scores = scorer.score(image, report=judge)
    out = report.model_dump(mode="json")
    if judge is not report:
        out["judge"] = judge.model_dump(mode="json")
    return out, scores.model_dump(mode="json")


def _assess(ctx: AgentContext, image) -> tuple[dict[str, Any], dict[str, Any]]:
    return assess(ctx.perceive, ctx.scorer, image)


def initial_state(ctx: AgentContext, input_ref: str) -> dict[str, Any]:
    """A new run's state: the input perceived and scored, nothing tried yet.

    Examples:
        >>> state = initial_state(ctx, ctx.store.put(image))      # doctest: +SKIP
        >>> state["current_ref"] == state["input_ref"], state["tool_calls"]  # doctest: +SKIP
        (True, 0)
    """
    report, scores = _assess(ctx, ctx.store.get(input_ref))
    ctx.emit("perceived", report=report, scores=scores)
    return {
        "input_ref": input_ref,
        "current_ref": input_ref,
        "report": report,
        "input_report": report,
        "scores": scores,
        "input_scores": scores,
        "history": [],
        "banned": [],
        "accepted": [],
        "undo": [],
        "tool_calls": 0,
        "turn_tool_calls": 0,
        "turn_first_step": 0,
        "step": 0,
        "stop_reason": None,
        "pending": None,
        "candidate": None,
    }


def perceive(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Perceive and score the input once, when the graph starts on a state with only ``input_ref``."""
    return initial_state(runtime.context, state["input_ref"])


def plan(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the planner for the next step, within the budgets; validate its answer."""
    ctx = runtime.context
    stop = _budget_stop(state, ctx)
    t0 = time.perf_counter()
    if stop is None:
        obs = Observation(
            step=state["step"],
            report=state["report"],
            input_report=state.get("input_report"),
            scores=state["scores"],
            history=[HistoryItem(**h) for h in state["history"]],
            banned=list(state["banned"]),
            steps_left=ctx.config.max_steps - state.get("turn_tool_calls", 0),
            seconds_left=max(0.0, ctx.config.max_seconds - ctx.elapsed() - ctx.reserved_seconds(state.get("undo", []))),
            catalogue={n: t.describe() for n, t in ctx.toolbox.catalogue().items()},
            request=ctx.config.request,
            image=ctx.store.get(state["current_ref"]),
            original=ctx.store.get(state["input_ref"]),
        )
        try:
            action = ctx.planner.next_action(obs)
        except RestoraError as e:
            action = Action.stop(f"planner failed: {e}")
        action, problem = _validate(action, ctx, state)
        if problem is not None:
            return _planner_error(state, ctx, action, problem, time.perf_counter() - t0)
    else:
        action = Action.stop(stop)
    plan_seconds = time.perf_counter() - t0
    if action.kind == "rollback":
        return undo_last(state, ctx, action.reason, ban=True, plan_seconds=plan_seconds)
    if action.kind == "stop":
        record = step_record(ctx, state, action, "stop", plan_seconds=plan_seconds)
        ctx.emit("stop", reason=action.reason)
        return {"pending": None, "stop_reason": action.reason, "step": state["step"] + 1, "emitted": [record]}
    if action.task is None or ctx.toolbox.get_class(action.tool).multi_task():
        # a multi-task tool's task is its `task` param (validated above); else the tool's task
        task = action.params.get("task") or ctx.toolbox.get_class(action.tool).task
        action = action.model_copy(update={"task": str(task)})
    ctx.emit("plan", action=action.model_dump(mode="json"))
    return {"pending": action.model_dump(mode="json"), "plan_seconds": plan_seconds}


def act(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the chosen tool on the current image; a crash is recorded, not raised."""
    ctx = runtime.context
    action = Action(**state["pending"])
    image = ctx.store.get(state["current_ref"])
    t0 = time.perf_counter()
    candidate: Candidate = {"ref": None, "report": None, "scores": None, "error": None}
    try:
        out = ctx.toolbox.run(action.tool, image, action.params)
        candidate["ref"] = ctx.store.put(out)
        candidate["info"] = ctx.toolbox.last_info(action.tool)
    except (ToolError, RestoraError) as e:
        candidate["error"] = str(e)
    except MemoryError:
        candidate["error"] = f"{action.tool} ran out of memory"
    if candidate["ref"] is not None and ctx.config.sibling_trials:
        candidate["alternatives"] = _sibling_trials(ctx, state, action, image)
    candidate["act_seconds"] = time.perf_counter() - t0
    return {
        "candidate": candidate,
        "tool_calls": state["tool_calls"] + 1,
        "turn_tool_calls": state.get("turn_tool_calls", 0) + 1,
    }


def score(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Perceive, check (structure, guard) and score the tool's output, and its sibling trials when
    ``RunConfig.sibling_trials`` ran them: the best-scoring one the guard passes becomes the step."""
    ctx = runtime.context
    candidate = dict(state["candidate"])
    t0 = time.perf_counter()
    update: dict[str, Any] = {}
    if candidate["ref"] is not None:
        before = ctx.store.get(state["current_ref"])
        task = (state.get("pending") or {}).get("task")
        trials = [{"params": (state.get("pending") or {}).get("params", {}), "ref": candidate["ref"]}]
        trials += candidate.pop("alternatives", None) or []
        for trial in trials:
            after = ctx.store.get(trial["ref"])
            trial["report"], trial["scores"] = _assess(ctx, after)
            trial["consistency"] = structure_consistency(before, after)
            trial["guard"] = ctx.guard.check(before, after, task).to_json() if ctx.guard is not None and ctx.config.guard else None
        best = max(trials, key=lambda t: (bool((t["guard"] or {}).get("ok", True)), float(t["scores"]["overall"])))
        candidate.update(ref=best["ref"], report=best["report"], scores=best["scores"], consistency=best["consistency"])
        if best["guard"] is not None:
            candidate["guard"] = best["guard"]
        if len(trials) > 1:
            candidate["info"] = {
                **(candidate.get("info") or {}),
                "trials": [
                    {"params": t["params"], "overall": round(float(t["scores"]["overall"]), 4),
                     "guard_ok": bool((t["guard"] or {}).get("ok", True)), "chosen": t is best}
                    for t in trials
                ],
            }
            if best is not trials[0]:
                update["pending"] = {**state["pending"], "params": best["params"]}
    candidate["score_seconds"] = time.perf_counter() - t0
    return {"candidate": candidate, **update}


def decide(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Accept the step if quality rose by more than ``min_gain`` (or the no-harm guard vouches for
    it), the output kept the input's coarse structure (``min_consistency``) and the guard passed it;
    else roll back and ban it."""
    ctx = runtime.context
    action = Action(**state["pending"])
    cand = state["candidate"]
    gain = None
    guarded = True
    kept_dim = False
    if cand["error"] is not None:
        decision = "error"
    else:
        gain = float(cand["scores"]["overall"]) - float(state["scores"]["overall"])
        revealed = revealed_by_tone(action.task, judge_reading(state["report"]), judge_reading(cand["report"]))
        if revealed:
            # judge a tone step on what it targets, not on what it made visible (see revealed_by_tone)
            gain += revealed["credit"]
            cand = {**cand, "info": {**(cand.get("info") or {}), "revealed": revealed}}
        consistent = float(cand.get("consistency", 1.0)) >= ctx.config.min_consistency
        guarded = bool((cand.get("guard") or {}).get("ok", True))
        # a guard family that proved reliable on its validation steps may vouch for a step the NR
        # metrics read as worse (they over-reward texture; see restora.quality.guard)
        vouched = ctx.config.guard_vouch and bool((cand.get("guard") or {}).get("vouched", False))
        if vouched and gain <= ctx.config.min_gain:
            viewed = float((cand.get("guard") or {}).get("view_gain", 1.0)) > 1.0
            withheld = vouch_withheld(
                state["report"], state.get("input_report"), action.task, viewed=viewed, history=state["history"],
                brighteners=brighteners({n: t.describe() for n, t in ctx.toolbox.catalogue().items()}),
            )
            vouched = withheld is None
            # kept on the view of a picture that stays dim: the brightening was tried and declined
            kept_dim = vouched and viewed and reads(state["report"], "dark")
            cand = {**cand, "info": {**(cand.get("info") or {}), **({"vouched": True} if vouched else {"vouch_withheld": withheld})}}
        decision = "accept" if (gain > ctx.config.min_gain or vouched) and consistent and guarded else "rollback"
    banned = list(state["banned"])
    newly_banned = []
    if decision != "accept":
        newly_banned.append(action.key)
        banned.append(action.key)
    record = step_record(
        ctx,
        state,
        action,
        decision,
        image_after=cand["ref"],
        scores_after=cand["scores"],
        gain=gain,
        error=cand["error"],
        banned=newly_banned,
        plan_seconds=state.get("plan_seconds", 0.0),
        act_seconds=cand.get("act_seconds", 0.0),
        score_seconds=cand.get("score_seconds", 0.0),
        tool_info=cand.get("info") or {},
        consistency=cand.get("consistency"),
        guard=cand.get("guard"),
    )
    item = HistoryItem(
        step=state["step"],
        tool=action.tool,
        task=action.task,
        params=action.params,
        decision=decision,
        gain=gain,
        error=cand["error"],
        guard_rejected=not guarded,
        guard_faint=not guarded and bool((cand.get("guard") or {}).get("faint")),
        kept_dim=kept_dim and decision == "accept",
    ).model_dump(mode="json")
    update: dict[str, Any] = {
        "history": [*state["history"], item],
        "banned": banned,
        "pending": None,
        "candidate": None,
        "step": state["step"] + 1,
        "emitted": [record],
    }
    if decision == "accept":
        undo = {
            "ref": state["current_ref"],
            "report": state["report"],
            "scores": state["scores"],
            "tool": action.tool,
            "task": action.task,
            "params": action.params,
            "key": action.key,
        }
        update.update(
            current_ref=cand["ref"],
            report=cand["report"],
            scores=cand["scores"],
            accepted=[*state["accepted"], action.tool],
            undo=[*state.get("undo", []), undo],
        )
    ctx.emit("decide", decision=decision, action=action.model_dump(mode="json"), gain=gain, error=cand["error"])
    return update


# -- helpers -----------------------------------------------------------------------------------


def vouch_withheld(
    report: dict[str, Any],
    input_report: dict[str, Any] | None = None,
    task: str | None = None,
    viewed: bool = False,
    history: list[dict[str, Any]] | None = None,
    brighteners: list[str] | None = None,
) -> str | None:
    """Why the guard's vouch does not count for a step aimed at ``task`` on the image whose
    reading is ``report`` (None: it counts). ``viewed``: the guard measured the step on the dim
    picture brightened (:attr:`restora.quality.guard.GuardVerdict.view_gain` above 1).
    ``history``: the run's steps so far (:class:`restora.planners.base.HistoryItem` as JSON);
    ``brighteners``: the low-light tools the run may use (:func:`brighteners`; None: any one tried).

    - On a frame that reads dark: the guard's measures count little of what a step wipes out of a
      dark picture (the detail is small in absolute terms until it is brightened). A vouched
      denoise before the brightening left LIME too little structure to pass the structure check
      (dark+noise kodak crop, 128 px: 22.1 dB with LIME first, 10.9 with the denoise kept first),
      and a night sky was denoised, then brightened. A family fitted on the brightened view
      (``FamilyModel.view``) sees that detail, so a ``viewed`` step counts once every
      brightening was tried and none kept (:func:`brightening_declined`): the picture stays dim,
      as it was given, and no tone step follows (``HistoryItem.kept_dim``). Before that it does
      not: a dim polyu shot (its ground truth as dim) denoised on the vouch, then brightened by the
      gamma curve on an overall +0.32 once the noise was gone, ended at 8.17 dB (41.00 as it was);
      and on bench mio's rain+dark, a denoise vouched once the gamma curve alone was rolled back
      kept the picture dim where LIME would have been kept next (kodim02, kodim03: -9.3, -8.6 dB).
    - When the judge (the classical reading, ``report["judge"]`` where a learned perception chose
      the tools) finds the step's target neither now nor in the input (``input_report``): only the
      network does, and a network false alarm is exactly where the guard must not overrule the NR
      score. A clean LIVE1 photo (building2) read as noisy by the network (0.51, sigma 17.5; the
      classical sigma 1.1) was denoised into flat paint with the guard sure of it (0.03). Except
      for noise the classical reading could not see: it finds noise from sigma
      ``NOISE_PRESENT_SIGMA`` (5.5, where clean photos stop reading), so where the network's
      sigma is below that, its silence is no evidence against the network (real camera noise
      reads 3-5 to the network and 0.4-0.8 to the classical white-noise estimate: cc_nam).
    - When no reading finds the step's target at all (a step a person or a planner asked for on a
      picture that reads clean): the guard's sureness is no evidence that there was anything to
      remove (SRMD at sigma 25 on a clean astronaut crop: harm 0.14).

    Examples:
        >>> vouch_withheld({"findings": {"dark": {"present": True}}})
        'the frame reads dark'
        >>> dim = {"findings": {"dark": {"present": True}, "noise": {"present": True}}}
        >>> vouch_withheld(dim, None, "denoise", viewed=True)
        'the frame reads dark and its brightening was not tried'
        >>> gamma = {"tool": "lowlight_gamma", "task": "low_light", "decision": "rollback"}
        >>> vouch_withheld(dim, None, "denoise", viewed=True, history=[gamma]) is None
        True
        >>> vouch_withheld({"findings": {"noise": {"present": True}}}, None, "denoise") is None
        True
        >>> net = {"findings": {"noise": {"present": True}}, "judge": {"findings": {"noise": {"present": False}}}}
        >>> vouch_withheld(net, net, "denoise")
        'only the network finds noise; the classical reading does not'
        >>> faint = {**net, "findings": {"noise": {"present": True, "evidence": {"noise_sigma": 3.2}}}}
        >>> vouch_withheld(faint, faint, "denoise") is None      # below what the classical reading sees
        True
        >>> clean = {"findings": {"noise": {"present": False, "evidence": {"noise_sigma": 1.2}}}, "judge": net["judge"]}
        >>> vouch_withheld(clean, clean, "denoise")               # a step no reading asked for
        'no reading finds noise'
    """
    present = reads
    if present(report, "dark"):
        if not viewed:
            return "the frame reads dark"
        if not brightening_declined(history, brighteners):
            return "the frame reads dark and its brightening was not tried"
    target = target_degradation(task)
    readings = (report, input_report)
    if target is not None and not any(present(judge_reading(r), target) for r in readings):
        if not any(present(r, target) for r in readings):
            return f"no reading finds {target.replace('_', ' ')}"
        if target == "noise" and below_classical_sight(report, input_report):
            return None
        return f"only the network finds {target.replace('_', ' ')}; the classical reading does not"
    return None


def below_classical_sight(report: dict[str, Any] | None, input_report: dict[str, Any] | None) -> bool:
    """Whether the noise the network reads (its sigma in the current reading, else the input's)
    is below the level at which the classical reading finds noise at all
    (:data:`restora.perception.decide.NOISE_PRESENT_SIGMA`): its silence then says nothing.

    Examples:
        >>> below_classical_sight({"findings": {"noise": {"evidence": {"noise_sigma": 4.4}}}}, None)
        True
        >>> below_classical_sight({"findings": {"noise": {"evidence": {"noise_sigma": 13.3}}}}, None)
        False
        >>> below_classical_sight({}, None)
        False
    """
    for r in (report, input_report):
        ev = (((r or {}).get("findings") or {}).get("noise") or {}).get("evidence") or {}
        sigma = ev.get("learned_noise_sigma", ev.get("noise_sigma"))
        if sigma is not None:
            return float(sigma) < NOISE_PRESENT_SIGMA
    return False


def judge_reading(report: dict[str, Any] | None) -> dict[str, Any]:
    """The reading that judges steps: ``report["judge"]`` (the classical estimators) where a
    learned perception chose the tools, else the report itself ({} for None).

    Examples:
        >>> judge_reading({"findings": {}, "judge": {"findings": {"noise": {}}}})
        {'findings': {'noise': {}}}
        >>> judge_reading(None)
        {}
    """
    report = report or {}
    return report.get("judge", report) or {}


def target_degradation(task: str | None) -> str | None:
    """The degradation a task undoes (``DEGRADATION_FOR``), None for no or an unknown task.

    Examples:
        >>> target_degradation("denoise"), target_degradation("restore_all"), target_degradation(None)
        ('noise', None, None)
    """
    try:
        return DEGRADATION_FOR[Task(task)].value if task else None
    except (KeyError, ValueError):
        return None


def revealed_by_tone(task: str | None, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """For a tone step (:data:`TONE_TASKS`): the degradations other than its target whose
    severity rose, and the ``credit`` that puts the accept score's perception term back to where
    it would be had they stayed at their severity before the step, for degradations already present
    before it. None when nothing was revealed.

    Brightening a dark, rainy photo makes the rain stand out: perception reads it as more severe,
    and the step would be rolled back although it did what it should (the derain comes next, and
    is judged on the brightened picture as usual). Only the perception term is credited; the NR
    metrics, the structure check and the rest of the accept rule are unchanged.

    Examples:
        >>> f = lambda **s: {"findings": {k: {"present": v > 0, "severity": v} for k, v in s.items()}}
        >>> r = revealed_by_tone("low_light", f(dark=0.8, rain=0.5), f(dark=0.0, rain=0.9))
        >>> sorted(r["degradations"]), round(r["credit"], 3)
        (['rain'], 0.2)
        >>> revealed_by_tone("denoise", f(noise=0.5), f(noise=0.0, defocus=0.4)) is None
        True
    """
    if task not in TONE_TASKS or not before or not after:
        return None
    target = DEGRADATION_FOR[Task(task)].value

    def sev(report: dict[str, Any]) -> dict[str, float]:
        return {k: float(f.get("severity") or 0.0) for k, f in report.get("findings", {}).items() if f.get("present")}

    b, a = sev(before), sev(after)
    # only what perception already found before the step: a tone curve that makes noise or JPEG
    # blocking appear out of a dim, clean-looking photo is not credited (a dim indoor photo
    # brightened with its noise amplified is a classic harm)
    rose = {k: (b[k], v) for k, v in a.items() if k != target and k in b and v > b[k]}
    if not rose:
        return None
    held = {k: (min(v, b[k]) if k in rose else v) for k, v in a.items()}
    credit = DEGRADATION_WEIGHT * (degradation_quality(held) - degradation_quality(a))
    return {"degradations": {k: [round(x, 4), round(y, 4)] for k, (x, y) in rose.items()}, "credit": round(float(credit), 6)}


def _sibling_trials(ctx: AgentContext, state: AgentState, action: Action, image) -> list[dict[str, Any]]:
    """``RunConfig.sibling_trials``: run the tool's other suggested parameters for this task on the
    same input too (not banned ones), so that :func:`score` can keep the best-scoring one. On a
    large image planned on crops a trial costs little next to the render; what is missing is a
    selection rule that beats the first suggestion (see the config field). Failures are skipped."""
    degradation = target_degradation(action.task)
    if degradation is None:
        return []
    finding = (state.get("report") or {}).get("findings", {}).get(degradation) or {}
    cls = ctx.toolbox.get_class(action.tool)
    suggestions = cls.suggest_params_for(action.task, float(finding.get("severity", 0.5)), finding.get("evidence") or {})
    out = []
    seen = {choice_key(action.tool, action.params)}
    for params in suggestions:
        p = params.model_dump(mode="json")
        key = choice_key(action.tool, p)
        if key in seen or key in state["banned"]:
            continue
        seen.add(key)
        try:
            out.append({"params": p, "ref": ctx.store.put(ctx.toolbox.run(action.tool, image, p))})
        except (ToolError, RestoraError, MemoryError):
            continue
    return out


def _budget_stop(state: AgentState, ctx: AgentContext) -> str | None:
    """Why this turn must stop before asking the planner, or None. Budgets count per turn."""
    cfg = ctx.config
    if state.get("turn_tool_calls", 0) >= cfg.max_steps:
        return f"step budget reached ({cfg.max_steps} tool calls)"
    if ctx.elapsed() >= cfg.max_seconds:
        return f"time budget reached ({cfg.max_seconds:g} s)"
    errors = 0
    first = state.get("turn_first_step", 0)
    for h in reversed(state["history"]):
        if h["decision"] != "error" or h["tool"] != "<planner>" or h["step"] < first:
            break
        errors += 1
    if errors >= MAX_PLANNER_ERRORS:
        return f"planner gave {errors} invalid steps in a row"
    return None


def undo_last(
    state: AgentState,
    ctx: AgentContext,
    reason: str,
    *,
    ban: bool,
    plan_seconds: float = 0.0,
    by: str | None = None,
) -> dict[str, Any]:
    """The state update that restores what the last kept step replaced, with its trace record.

    The planner's rollback (``ban=True``) also bans that (tool, params); a person's undo
    (``ban=False``, ``by="user"``) does not. The caller makes sure ``state["undo"]`` is not empty.

    Examples:
        >>> update = undo_last(state, ctx, "undone by the user", ban=False, by="user")  # doctest: +SKIP
        >>> update["current_ref"] == state["undo"][-1]["ref"]                             # doctest: +SKIP
        True
    """
    undo = list(state.get("undo", []))
    last = undo.pop()
    undone = Action(kind="rollback", tool=last["tool"], task=last["task"], params=last["params"], reason=reason)
    newly_banned = [last["key"]] if ban else []
    record = step_record(
        ctx,
        state,
        undone,
        "rollback",
        image_after=last["ref"],
        scores_after=last["scores"],
        banned=newly_banned,
        plan_seconds=plan_seconds,
        by=by,
    )
    item = HistoryItem(
        step=state["step"], tool=last["tool"], task=last["task"], params=last["params"], decision="rollback",
        error=None, gain=None,
    ).model_dump(mode="json")
    accepted = list(state["accepted"])
    accepted.pop()
    ctx.emit("rollback", action=undone.model_dump(mode="json"))
    return {
        "current_ref": last["ref"],
        "report": last["report"],
        "scores": last["scores"],
        "accepted": accepted,
        "undo": undo,
        "banned": [*state["banned"], *newly_banned],
        "history": [*state["history"], item],
        "pending": None,
        "step": state["step"] + 1,
        "emitted": [record],
    }


def _validate(action: Action, ctx: AgentContext, state: AgentState) -> tuple[Action, str | None]:
    """The action with its params completed by the tool's defaults, and what is wrong with it."""
    if action.kind == "stop":
        return action, None
    if action.kind == "rollback":
        return action, None if state.get("undo") else "rollback with no kept step to undo"
    if not action.tool:
        return action, "tool step without a tool name"
    if action.tool not in ctx.toolbox.catalogue():
        return action, f"tool {action.tool!r} is not available in this run"
    try:
        params = ctx.toolbox.get_class(action.tool).parse_params(action.params)
    except ToolError as e:
        return action, str(e)
    action = action.model_copy(update={"params": params.model_dump(mode="json")})
    if action.key in state["banned"]:
        return action, f"{action.tool} with these params was already rolled back (banned)"
    return action, None


def _planner_error(
    state: AgentState, ctx: AgentContext, action: Action, problem: str, plan_seconds: float
) -> dict[str, Any]:
    record = step_record(ctx, state, action, "error", error=f"invalid planner step: {problem}", plan_seconds=plan_seconds)
    item = HistoryItem(
        step=state["step"], tool="<planner>", task=None, params={}, decision="error", error=problem
    ).model_dump(mode="json")
    ctx.emit("planner_error", problem=problem)
    return {"history": [*state["history"], item], "pending": None, "step": state["step"] + 1, "emitted": [record]}


def step_record(
    ctx: AgentContext,
    state: AgentState,
    action: Action,
    decision: str,
    *,
    image_after: str | None = None,
    scores_after: dict[str, Any] | None = None,
    gain: float | None = None,
    error: str | None = None,
    banned: list[str] | None = None,
    plan_seconds: float = 0.0,
    act_seconds: float = 0.0,
    score_seconds: float = 0.0,
    tool_info: dict[str, Any] | None = None,
    consistency: float | None = None,
    guard: dict[str, Any] | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """The :class:`restora.traces.StepRecord` of one decision on ``state``, as JSON (returned, not written).

    ``by`` names who chose the action when it was not the planner (``"user"`` for an undo).
    """
    return StepRecord(
        run_id=ctx.run_id,
        step=state["step"],
        observation=state["report"],
        action=ActionRecord(
            kind=action.kind,
            tool=action.tool,
            task=action.task,
            params=action.params,
            reason=action.reason,
            planner=by or ctx.planner_name,
            fallback=action.fallback,
            perception=action.perception,
            decoding=action.decoding,
        ),
        decision=decision,
        image_before=state["current_ref"],
        image_after=image_after,
        scores_before=state["scores"],
        scores_after=scores_after,
        gain=gain,
        error=error,
        banned=banned or [],
        timings={"plan": plan_seconds, "act": act_seconds, "score": score_seconds},
        tool_info=tool_info or {},
        consistency=consistency,
        guard=guard,
    ).model_dump(mode="json")
