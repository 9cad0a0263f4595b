"""Chat sessions: one photo restored by talking to restora, turn by turn, with exact undo.

A :class:`ChatSession` is a LangGraph graph over the agent's state, persisted by LangGraph's SQLite
checkpointer (thread id = session id) in the sessions home, with its images in a
:class:`restora.store.DiskImageStore` beside. Every change (a restoration turn, a compared
candidate taken, the grain put back, a reset) pushes the whole agent state it replaced onto the
undo stack, so ``undo`` / ``redo`` / ``reset`` bring back exactly the image (same hash), report,
scores and planner history of that moment. A session closed at any point (Ctrl-C, a crash, the end
of the process) is resumed by id in another process with its history and undo stack: a turn
that did not finish left no checkpoint and is simply not there.

The terminal (``restora chat``) and the web page (``restora web``) are thin faces on this class.

Each message goes through :func:`restora.chat.instructions.parse` (slash commands such as
``/undo`` are taken as they are) and one of the graph's routes:

    START -> understand -> restore                         (an agent turn within the turn's budget)
                        -> propose -> approve -> apply ... (step by step, with approval: interrupt)
                        -> compare                         (the task's tools side by side)
                        -> END                             (undo, redo, reset, pick, grain, stop)

The heuristic planner gets the parsed constraints through :class:`ConstrainedPlanner`; a VLM
planner gets the words too (``Observation.request``).

Examples:
    >>> from restora.chat import ChatSession
    >>> s = ChatSession.create("photo.jpg", home="sessions")      # doctest: +SKIP
    >>> print(s.say("remove the noise but keep the grain").text)   # doctest: +SKIP
    I will denoise; put back 30% of the removed grain.
    Found moderate noise. Removed the noise with SRMD.
    >>> s.undo().changed, s.image_ref == s.input_ref              # doctest: +SKIP
    (True, True)
    >>> s2 = ChatSession.resume(s.id, home="sessions")              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from restora.agent import nodes
from restora.agent.context import AgentContext
from restora.agent.run import RestoreResult, Run
from restora.chat.constraints import ConstrainedPlanner
from restora.chat.instructions import Instructions, parse
from restora.config import RunConfig, env
from restora.errors import RestoraError, ToolError
from restora.imageio import DEFAULT_MAX_MEGAPIXELS, check_image, load_image
from restora.planners.base import Action, Observation, Planner, choice_key
from restora.store import DiskImageStore
from restora.taxonomy import DEGRADATION_FOR, TASK_FOR, Degradation, Task
from restora.traces.io import TraceWriter
from restora.traces.schema import EndRecord, StartRecord, StepRecord

TURN_STEPS = 6
"""Tool calls one chat turn may make (``restora chat --steps``)."""

SESSION_ID = re.compile(r"^[0-9a-f]{12}$")

HELP = """\
Say what you want in your own words ("remove the rain but keep the grain", "gentler", "only
denoise", "don't touch the colours", "use bm3d"), or use a command:
  /undo            go back one change          /redo       take the undone change again
  /reset           back to the original        /history    what happened so far
  /compare TASK    run each tool for TASK side by side (e.g. /compare denoise)
  /pick N          take candidate N of the last comparison
  /grain SHARE     put back SHARE (0-1) of the noise the last denoise removed
  /save PATH       write the image, its trace and its report page
  /quit            leave (the session stays; resume it with --resume ID)"""


def default_home() -> Path:
    """Where sessions live: ``RESTORA_SESSIONS``, else ``~/.local/share/restora/sessions``."""
    return env().sessions or Path.home() / ".local" / "share" / "restora" / "sessions"


# -- state ----------------------------------------------------------------------------------------
class SessionState(TypedDict, total=False):
    """What the checkpointer keeps of a session (images by reference)."""

    session_id: str
    run_id: str
    source: str  # the file the person opened (shown; never read again: the copy in the folder is)
    start: dict[str, Any]  # the trace's StartRecord (JSON)
    origin: dict[str, Any]  # the agent state of the input (reset goes back here)
    agent: dict[str, Any]  # the agent state now (restora.agent.state.AgentState)
    undo: list[dict[str, Any]]  # snapshots {"agent", "label"} of what each change replaced
    redo: list[dict[str, Any]]
    messages: list[dict[str, Any]]  # {"role": "user"|"assistant", "text", "image"?, "gallery"?}
    records: list[dict[str, Any]]  # the trace's step records so far (JSON), in order
    compare: dict[str, Any] | None  # {"task", "base", "candidates": [...]} of the last comparison
    instructions: dict[str, Any] | None  # the last message, parsed
    turns: int
    approval: bool  # step-by-step: every tool step is proposed and waits for the person
    # one message's working fields (each message sets them again)
    message: str
    route: str
    proposal: dict[str, Any] | None
    proposals: int
    approved: bool | None
    reply: list[str]


@dataclass
class SessionContext:
    """The services a session's graph uses (LangGraph runtime context; not persisted)."""

    store: DiskImageStore
    toolbox: Any
    scorer: Any
    perceive: Callable[[Any], Any]
    planner: Planner
    guard: Any
    config: RunConfig
    turn_steps: int = TURN_STEPS
    on_event: Callable[[str, dict[str, Any]], None] | None = None

    def agent_context(self, run_id: str, planner: Planner, request: str | None = None) -> AgentContext:
        config = self.config.replace(request=request, max_steps=self.turn_steps)
        return AgentContext(
            store=self.store,
            toolbox=self.toolbox,
            scorer=self.scorer,
            perceive=self.perceive,
            planner=planner,
            run_id=run_id,
            config=config,
            on_event=self.on_event,
            guard=self.guard if config.guard else None,
        )

    def assess(self, image: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        from restora.agent.nodes import assess

        return assess(self.perceive, self.scorer, image)


@dataclass
class Reply:
    """What one message did: the words said back, whether the image changed, and a proposal
    waiting for approval (step-by-step sessions)."""

    text: str
    changed: bool
    image_ref: str
    proposal: dict[str, Any] | None = None
    compare: dict[str, Any] | None = None


# -- the graph's nodes ------------------------------------------------------------------------------
_COMMAND = re.compile(r"^/(\w+)\s*(.*)$", re.S)


def understand(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Read the message: a slash command, or words parsed into :class:`Instructions`; run the
    commands that need no tool (undo, redo, reset, pick, grain, stop) and route the rest."""
    text = (state.get("message") or "").strip()
    messages = [*state.get("messages", []), {"role": "user", "text": text}]
    base = {"messages": messages, "proposal": None, "proposals": 0, "approved": None, "reply": []}
    m = _COMMAND.match(text)
    if m:
        name, arg = m.group(1).lower(), m.group(2).strip()
        if name in ("undo", "redo", "reset", "stop"):
            return {**base, **_command({**state, **base}, runtime.context, name), "route": "done"}
        if name == "compare":
            task = _task_word(arg)
            if arg and task is None:
                return {**base, "reply": [f"I do not know the task {arg!r}; try one of: {', '.join(t.value for t in Task)}."], "route": "done"}
            return {**base, "instructions": Instructions(command="compare", compare_task=task).model_dump(mode="json"), "route": "compare"}
        if name == "pick":
            return {**base, **_pick({**state, **base}, runtime.context, arg), "route": "done"}
        if name == "grain":
            return {**base, **_grain_command({**state, **base}, runtime.context, arg), "route": "done"}
        return {**base, "reply": [f"Unknown command /{name}. " + "Commands: /undo /redo /reset /compare TASK /pick N /grain SHARE /save PATH /history /help /quit."], "route": "done"}
    ins = parse(text)
    said = [ins.summary()]
    if ins == Instructions():  # "fix it", "restore this photo": no constraint, the planner decides
        said = ["I will fix what I find."]
    update: dict[str, Any] = {**base, "instructions": ins.model_dump(mode="json")}
    if ins.command in ("undo", "redo", "reset", "stop"):
        done = _command({**state, **update}, runtime.context, ins.command)
        said += done.pop("reply")
        update.update(done)
        # "undo that and denoise gently": the command first, then the request
        has_request = bool(ins.do or ins.avoid or ins.use_tools or ins.strength != 1.0 or ins.keep_grain)
        if has_request and ins.command != "stop":
            return {**update, "reply": said, "route": "propose" if state.get("approval") else "restore", "turns": state.get("turns", 0) + 1}
        return {**update, "reply": said, "route": "done"}
    if ins.command == "compare":
        return {**update, "reply": said, "route": "compare"}
    if ins.not_understood and not (ins.do or ins.avoid or ins.use_tools or ins.avoid_tools or ins.strength != 1.0 or ins.keep_grain or ins.preserve):
        # nothing understood at all: say so, do nothing (never guess)
        return {**update, "reply": said + ["I changed nothing. Type /help for examples."], "route": "done"}
    grain_only = ins.keep_grain and not ins.avoid and ins.strength == 1.0 and set(ins.do) <= {Task.DENOISE}
    if grain_only and _last_denoise(state["agent"]) is not None:
        # "keep more of the grain" after a denoise: re-blend, no new tool step
        done = _apply_grain({**state, **update}, runtime.context, ins.keep_grain)
        return {**update, **done, "route": "done"}
    route = "propose" if state.get("approval") else "restore"
    return {**update, "reply": said, "route": route, "turns": state.get("turns", 0) + 1}


def restore(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """One agent turn under the message's constraints, within the turn's budget."""
    ctx = runtime.context
    ins = _instructions(state)
    turn = state.get("turns", 0)
    before = state["agent"]
    kept_share = grain_share(before)
    said = list(state.get("reply", []))
    pre: list[dict[str, Any]] = []
    target = _adjusted_task(before, ins)
    if target is not None:
        # "gentler", "a bit more": redo the last kept step of that task at the new strength
        state, pre, words = _pop_last_task(state, ctx, target, f"redone {ins.strength:g}x as strong, as the person asked")
        said.append(words)
        if not ins.do:
            ins = ins.model_copy(update={"do": [target]})
    planner = ConstrainedPlanner(ctx.planner, ins, since_step=state["agent"]["step"])
    run = _attach(ctx, state, planner, state.get("message"))
    result = run.turn(state.get("message") or None, max_steps=ctx.turn_steps)
    agent = run.state
    new = [_stamp(r.model_dump(mode="json"), turn, state.get("message")) for r in run.records]
    update: dict[str, Any] = {"agent": agent, "records": [*state.get("records", []), *pre, *new]}
    said.append(_turn_words(state, new, result))
    changed = agent["current_ref"] != before["current_ref"]
    if changed:
        update["undo"] = [*state.get("undo", []), {"agent": before, "label": f"turn {turn}: {state.get('message')}"}]
        update["redo"] = []
        share = ins.keep_grain or kept_share  # "keep the grain" holds for later denoising
        if share and any(s["action"]["task"] == "denoise" and s["decision"] == "accept" for s in new):
            grained = _apply_grain({**state, **update}, ctx, share, push=False)
            said += grained.pop("reply")
            update.update(grained)
    elif ins.keep_grain:
        said.append("Nothing was denoised, so there is no grain to put back.")
    return {**update, "reply": said}


def compare(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Run every tool for the task on the current image (each with its first suggested params),
    perceive, check and score each, and keep them side by side. The current image is unchanged;
    ``/pick N`` takes one."""
    ctx = runtime.context
    from restora.planners.heuristic import rank_tools

    ins = _instructions(state)
    agent = state["agent"]
    task = ins.compare_task or _default_compare_task(agent)
    said = list(state.get("reply", []))
    if task is None:
        return {"reply": [*said, "There is nothing to compare yet: name a task, e.g. /compare denoise."]}
    catalogue = {n: t.describe() for n, t in ctx.toolbox.catalogue().items()}
    tools = rank_tools(task, catalogue)
    if not tools:
        return {"reply": [*said, f"No tool for {task.value} is available here."]}
    # "show me the other denoisers" after a denoise: compare on that step's input, the kept
    # step among them; a pick then replaces it
    entries = [e for e in agent.get("undo", []) if e["tool"] != "keep_grain"]
    replaces = bool(entries) and entries[-1]["task"] == task.value
    base = {"ref": entries[-1]["ref"], "report": entries[-1]["report"], "scores": entries[-1]["scores"]} if replaces else {
        "ref": agent["current_ref"], "report": agent["report"], "scores": agent["scores"]}
    image = ctx.store.get(base["ref"])
    finding = (base.get("report") or {}).get("findings", {}).get(DEGRADATION_FOR[task].value) or {}
    severity = max(float(finding.get("severity") or 0.0), 0.5 if not finding.get("present") else 0.0)
    before = float(base["scores"]["overall"])
    candidates = []
    for name in tools:
        cls = ctx.toolbox.get_class(name)
        suggested = cls.suggest_params_for(task, severity, finding.get("evidence") or {})
        params = suggested[0].model_dump(mode="json") if suggested else {}
        if cls.multi_task():
            params["task"] = task.value
        entry: dict[str, Any] = {"tool": name, "params": params, "task": task.value}
        t0 = time.perf_counter()
        try:
            out = ctx.toolbox.run(name, image, params)
        except (ToolError, RestoraError, MemoryError) as e:
            candidates.append({**entry, "error": str(e)})
            continue
        ref = ctx.store.put(out)
        report, scores = ctx.assess(out)
        guard = ctx.guard.check(image, out, task.value).to_json() if ctx.guard is not None and ctx.config.guard else None
        from restora.quality import structure_consistency

        candidates.append(
            {
                **entry,
                "ref": ref,
                "seconds": round(time.perf_counter() - t0, 2),
                "report": report,
                "scores": scores,
                "gain": round(float(scores["overall"]) - before, 4),
                "consistency": round(float(structure_consistency(image, out)), 4),
                "guard": guard,
                "guard_ok": bool((guard or {}).get("ok", True)),
            }
        )
    comparison = {"task": task.value, "base": base["ref"], "current": agent["current_ref"], "replaces": replaces, "candidates": candidates}
    where = f"on the image before {entries[-1]['tool']}" if replaces else "on the current image"
    lines = [f"Compared {len(candidates)} tools for {task.value} {where} (the current image is unchanged):"]
    for i, c in enumerate(candidates, 1):
        lines.append(f"  {i}. {_candidate_line(c)}")
    lines.append("Take one with /pick N.")
    return {"compare": comparison, "reply": [*said, "\n".join(lines)]}


def propose(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Step by step: ask the planner for its next step without running it."""
    ctx = runtime.context
    ins = _instructions(state)
    said = list(state.get("reply", []))
    if state.get("proposals", 0) >= ctx.turn_steps:
        return {"proposal": None, "reply": [*said, f"That was this turn's {ctx.turn_steps} proposals."]}
    capture = _Capture(ConstrainedPlanner(ctx.planner, ins))
    run = _attach(dataclasses.replace(ctx, on_event=None), state, capture, state.get("message"))
    run.turn(state.get("message") or None, max_steps=1)  # the planner is asked once; nothing runs
    action = capture.action
    if action is None or action.kind != "tool":
        reason = action.reason if action is not None else "nothing to propose"
        return {"proposal": None, "reply": [*said, f"Nothing more to propose: {reason}."]}
    return {"proposal": action.model_dump(mode="json"), "proposals": state.get("proposals", 0) + 1, "reply": said}


def approve(state: SessionState) -> dict[str, Any]:
    """Wait for the person's yes or no on the proposal (LangGraph ``interrupt``)."""
    answer = interrupt({"proposal": state["proposal"], "text": _proposal_words(state["proposal"])})
    return {"approved": _yes(answer)}


def apply(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """Run the approved step (the accept rule still judges it), or ban the rejected one."""
    ctx = runtime.context
    proposal = Action.model_validate(state["proposal"])
    said = list(state.get("reply", []))
    agent = state["agent"]
    if not state.get("approved"):
        key = choice_key(proposal.tool or "", proposal.params)
        agent = {**agent, "banned": [*agent.get("banned", []), key]}
        return {"agent": agent, "proposal": None, "reply": [*said, f"Skipped {proposal.tool}, as you said."]}
    turn = state.get("turns", 0)
    run = _attach(ctx, state, _Once(proposal, getattr(ctx.planner, "name", "planner")), state.get("message"))
    result = run.turn(state.get("message") or None, max_steps=1)
    new = [_stamp(r.model_dump(mode="json"), turn, state.get("message")) for r in run.records]
    new = [r for r in new if r["action"]["kind"] != "stop"]  # the step, not the turn's end
    update: dict[str, Any] = {"agent": run.state, "records": [*state.get("records", []), *new], "proposal": None}
    if run.state["current_ref"] != agent["current_ref"]:
        update["undo"] = [*state.get("undo", []), {"agent": agent, "label": f"turn {turn}: {proposal.tool}"}]
        update["redo"] = []
    from restora.report import step_verdict

    verdicts = [step_verdict(StepRecord.model_validate(r)) for r in new]
    del result
    return {**update, "reply": [*said, f"{proposal.tool}: " + "; ".join(verdicts)]}


def finish(state: SessionState) -> dict[str, Any]:
    """Say it: the message's reply becomes one assistant message of the conversation."""
    message: dict[str, Any] = {"role": "assistant", "text": "\n".join(s for s in state.get("reply", []) if s),
                               "image": state["agent"]["current_ref"]}
    if state.get("route") == "compare" and state.get("compare"):
        message["gallery"] = [c["ref"] for c in state["compare"]["candidates"] if c.get("ref")]
    return {"messages": [*state.get("messages", []), message]}


def _route(state: SessionState) -> str:
    return {"restore": "restore", "compare": "compare", "propose": "propose"}.get(state.get("route", ""), "finish")


def _after_propose(state: SessionState) -> str:
    return "approve" if state.get("proposal") else "finish"


def build_graph(checkpointer: Any = None):
    """The session graph (see the module docstring), compiled with ``checkpointer``.

    Examples:
        >>> sorted(build_graph().get_graph().nodes)
        ['__end__', '__start__', 'apply', 'approve', 'compare', 'finish', 'propose', 'restore', 'understand']
    """
    g = StateGraph(SessionState, context_schema=SessionContext)
    g.add_node("understand", understand)
    g.add_node("restore", restore)
    g.add_node("compare", compare)
    g.add_node("propose", propose)
    g.add_node("approve", approve)
    g.add_node("apply", apply)
    g.add_node("finish", finish)
    g.add_edge(START, "understand")
    g.add_conditional_edges("understand", _route, ["restore", "compare", "propose", "finish"])
    g.add_edge("restore", "finish")
    g.add_edge("compare", "finish")
    g.add_edge("finish", END)
    g.add_conditional_edges("propose", _after_propose, ["approve", "finish"])
    g.add_edge("approve", "apply")
    g.add_edge("apply", "propose")
    return g.compile(checkpointer=checkpointer)


# -- the session ----------------------------------------------------------------------------------
class ChatSession:
    """A chat session on one image; see the module docstring. Make one with :meth:`create` or
    :meth:`resume`; :meth:`close` (or ``with``) releases the checkpoint database."""

    def __init__(self, session_id: str, home: Path, ctx: SessionContext) -> None:
        self.id = session_id
        self.home = home
        self.folder = home / session_id
        self.ctx = ctx
        self._conn = sqlite3.connect(home / "sessions.sqlite", check_same_thread=False)
        from langgraph.checkpoint.sqlite import SqliteSaver

        self._saver = SqliteSaver(self._conn)
        self._graph = build_graph(self._saver)
        self._lock = threading.Lock()  # one message at a time per session object
        self._cfg = {"configurable": {"thread_id": session_id}}

    # -- making one ----------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        image: str | os.PathLike | np.ndarray,
        *,
        home: str | os.PathLike | None = None,
        services: SessionServices | None = None,
        approval: bool = False,
        max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
        source: str | None = None,
    ) -> ChatSession:
        """Open ``image`` (a file path, read with the same checks as ``restora run``, or an array)
        in a new session under ``home``; perceive and score it once.

        The file is copied into the session folder (its metadata is carried to saved images);
        the original is never written to.
        """
        home = Path(home) if home is not None else default_home()
        home.mkdir(parents=True, exist_ok=True)
        session_id = uuid.uuid4().hex[:12]
        folder = home / session_id
        folder.mkdir()
        notes: list[str] = []
        try:
            if isinstance(image, np.ndarray):
                check_image(image, "input image")
                pixels = image
                name = source or "<array>"
            else:
                loaded = load_image(image, max_megapixels=max_megapixels)
                pixels, notes, name = loaded.pixels, list(loaded.notes), source or Path(image).name
                suffix = Path(image).suffix.lower()
                keep = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
                shutil.copyfile(image, folder / f"original{keep}")
            services = services or SessionServices()
            ctx = services.context(DiskImageStore(folder / "images"))
            session = cls(session_id, home, ctx)
            input_ref = ctx.store.put(pixels)
            run_id = uuid.uuid4().hex[:12]
            agent_ctx = ctx.agent_context(run_id, ctx.planner)
            agent = nodes.initial_state(agent_ctx, input_ref)
            height, width = pixels.shape[:2]
            start = StartRecord(
                run_id=run_id,
                source=name,
                width=width,
                height=height,
                image=input_ref,
                notes=notes,
                config={
                    "planner": agent_ctx.planner_name,
                    "max_steps": ctx.turn_steps,
                    "max_seconds": ctx.config.max_seconds,
                    "min_gain": ctx.config.min_gain,
                    "min_consistency": ctx.config.min_consistency,
                    "guard": ctx.config.guard,
                    "tools": sorted(ctx.toolbox.catalogue()),
                    "metrics": list(getattr(ctx.scorer, "metrics", [])),
                    "session": session_id,
                },
                started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
            (folder / "session.json").write_text(
                json.dumps({"id": session_id, "source": name, "created": start.started_at, "approval": approval}),
                encoding="utf-8",
            )
            state: SessionState = {
                "session_id": session_id,
                "run_id": run_id,
                "source": name,
                "start": start.model_dump(mode="json"),
                "origin": agent,
                "agent": agent,
                "undo": [],
                "redo": [],
                "messages": [],
                "records": [],
                "compare": None,
                "instructions": None,
                "turns": 0,
                "approval": approval,
            }
            session._graph.update_state(session._cfg, state, as_node="finish")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return session

    @classmethod
    def resume(cls, session_id: str, *, home: str | os.PathLike | None = None, services: SessionServices | None = None) -> ChatSession:
        """The session ``session_id`` under ``home``, as it was after its last finished message.

        Examples:
            >>> ChatSession.resume("0123456789ab", home="sessions").history()[:1]   # doctest: +SKIP
            ['you: remove the noise']
        """
        home = Path(home) if home is not None else default_home()
        if not SESSION_ID.match(session_id or ""):
            raise RestoraError(f"{session_id!r} is not a session id (12 hex digits; `restora chat --list` shows them)")
        folder = home / session_id
        if not (folder / "session.json").is_file() or not (home / "sessions.sqlite").is_file():
            raise RestoraError(f"no session {session_id} in {home}")
        services = services or SessionServices()
        session = cls(session_id, home, services.context(DiskImageStore(folder / "images")))
        if not session._values():
            session.close()
            raise RestoraError(f"session {session_id} in {home} has no saved state")
        return session

    @staticmethod
    def list(home: str | os.PathLike | None = None) -> list[dict[str, Any]]:
        """The sessions under ``home``, newest first: id, source, created."""
        home = Path(home) if home is not None else default_home()
        out = []
        for meta in home.glob("*/session.json"):
            try:
                out.append(json.loads(meta.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return sorted(out, key=lambda m: m.get("created", ""), reverse=True)

    # -- talking ------------------------------------------------------------------------------------
    def say(self, text: str) -> Reply:
        """Take one message (words or a slash command) and act on it.

        ``/save``, ``/history`` and ``/help`` are answered by the faces (they touch no state);
        everything else changes the session and is checkpointed when it finishes.
        """
        if self.pending() is not None:
            return self.answer(text)
        return self._invoke({"message": text})

    def answer(self, yes: bool | str) -> Reply:
        """The person's answer to the pending proposal (step-by-step sessions)."""
        if self.pending() is None:
            raise RestoraError("nothing is waiting for approval")
        return self._invoke(Command(resume=yes))

    def undo(self) -> Reply:
        return self.say("/undo")

    def redo(self) -> Reply:
        return self.say("/redo")

    def reset(self) -> Reply:
        return self.say("/reset")

    def compare(self, task: str | None = None) -> Reply:
        return self.say(f"/compare {task or ''}".strip())

    def pick(self, n: int) -> Reply:
        return self.say(f"/pick {n}")

    def grain(self, share: float) -> Reply:
        return self.say(f"/grain {share}")

    def _invoke(self, payload: Any) -> Reply:
        with self._lock:
            values = self._values()
            before = values["agent"]["current_ref"]
            shown = len(values.get("reply", [])) if isinstance(payload, Command) else 0  # said before the proposal
            # durability "exit": one checkpoint when the message is done or waits for approval; a
            # process killed half-way saved nothing, and a message stopped by an exception (Ctrl-C, a
            # crash) gets the state before it written back: the session is exactly as it was
            try:
                self._graph.invoke(payload, self._cfg, context=self.ctx, durability="exit")
            except BaseException:
                # (a proposal that was waiting goes with it: the next message starts afresh)
                self._graph.update_state(self._cfg, values, as_node="finish")
                raise
            values = self._values()
            said = [s for s in values.get("reply", [])[shown:] if s]
            pending = self.pending()
            if pending is not None:
                said.append(pending["text"] + " Approve? (yes/no)")
            text = "\n".join(said)
            changed = values["agent"]["current_ref"] != before
            comparison = values.get("compare") if values.get("route") == "compare" else None
            return Reply(text=text, changed=changed, image_ref=values["agent"]["current_ref"], proposal=pending and pending["proposal"], compare=comparison)

    # -- what it has ------------------------------------------------------------------------------
    def _values(self) -> dict[str, Any]:
        return dict(self._graph.get_state(self._cfg).values)

    def pending(self) -> dict[str, Any] | None:
        """The proposal waiting for approval ({"proposal", "text"}), or None."""
        snapshot = self._graph.get_state(self._cfg)
        for task in snapshot.tasks:
            for it in task.interrupts:
                return dict(it.value)
        return None

    @property
    def state(self) -> dict[str, Any]:
        return self._values()

    @property
    def image_ref(self) -> str:
        return self._values()["agent"]["current_ref"]

    @property
    def input_ref(self) -> str:
        return self._values()["agent"]["input_ref"]

    @property
    def image(self) -> np.ndarray:
        """The current image (a copy)."""
        return np.array(self.ctx.store.get(self.image_ref))

    @property
    def original(self) -> np.ndarray:
        return np.array(self.ctx.store.get(self.input_ref))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self._values().get("messages", []))

    @property
    def can_undo(self) -> bool:
        return bool(self._values().get("undo"))

    @property
    def can_redo(self) -> bool:
        return bool(self._values().get("redo"))

    @property
    def comparison(self) -> dict[str, Any] | None:
        return self._values().get("compare")

    def history(self) -> list[str]:
        """The conversation so far, one line per message (first line of each reply)."""
        out = []
        for m in self.messages:
            who = "you" if m["role"] == "user" else "restora"
            out.append(f"{who}: {m['text']}")
        return out

    def records(self) -> list:
        """The trace so far: the start record and every step record."""
        values = self._values()
        return [StartRecord.model_validate(values["start"]), *(StepRecord.model_validate(r) for r in values.get("records", []))]

    def result(self) -> RestoreResult:
        """The session as a :class:`RestoreResult` (with an end record), for the report page."""
        values = self._values()
        agent = values["agent"]
        steps = values.get("records", [])
        stop = next((r["action"]["reason"] for r in reversed(steps) if r["action"]["kind"] == "stop"), "")
        end = EndRecord(
            run_id=values["run_id"],
            image=agent["current_ref"],
            stop_reason=stop or "the person ended the session",
            tool_calls=agent["tool_calls"],
            accepted=list(agent["accepted"]),
            seconds=0.0,
            scores_input=agent["input_scores"],
            scores_final=agent["scores"],
        )
        return RestoreResult(
            image=self.image,
            stop_reason=end.stop_reason,
            tool_calls=agent["tool_calls"],
            accepted=list(agent["accepted"]),
            seconds=0.0,
            records=[*self.records(), end],
            store=self.ctx.store,
            state=agent,
        )

    def save(self, path: str | os.PathLike) -> list[Path]:
        """Write the current image to ``path`` (its suffix picks the format: .png, .jpg, .webp,
        .tif; metadata of the opened file carried over), its trace (``<stem>.trace.jsonl``) and
        its report page (``<stem>.html``) beside it, each atomically. Returns the three paths."""
        from restora.imageio import FORMATS, save_image_as, write_text_atomic
        from restora.report import render_report

        target = Path(path)
        fmt = {v: k for k, v in FORMATS.items()} | {".jpeg": "jpg", ".tiff": "tiff"}
        kind = fmt.get(target.suffix.lower())
        if kind is None:
            raise RestoraError(f"{target}: save as .png, .jpg, .webp or .tif")
        originals = sorted(self.folder.glob("original*"))
        like = None
        if originals:
            try:
                like = load_image(originals[0], max_megapixels=1e6)  # it was read within the limit once
            except RestoraError:
                like = None
        result = self.result()
        target.parent.mkdir(parents=True, exist_ok=True)
        written, _ = save_image_as(target, result.image, like=like, fmt=kind)
        trace = target.with_name(target.stem + ".trace.jsonl")
        write_text_atomic(trace, "".join(r.model_dump_json() + "\n" for r in result.records))
        page = target.with_name(target.stem + ".html")
        write_text_atomic(page, render_report(result, title=target.name, output_name=target.name, trace_name=trace.name))
        return [written, trace, page]

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass

    def __enter__(self) -> ChatSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- services -------------------------------------------------------------------------------------
@dataclass
class SessionServices:
    """Planner, tools, scorer, perception and guard for sessions (the defaults of ``restora run``).

    Examples:
        >>> SessionServices(allow=["denoise_srmd", "denoise_nlm"]).toolbox().catalogue().keys()   # doctest: +SKIP
        dict_keys(['denoise_nlm', 'denoise_srmd'])
    """

    config: RunConfig = dataclasses.field(default_factory=RunConfig)
    planner: Planner | None = None
    allow: list[str] | None = None
    turn_steps: int = TURN_STEPS
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    _box: Any = None

    def toolbox(self):
        if self._box is None:
            from restora.tools.registry import ToolBox

            self._box = ToolBox(allow=self.allow)
        return self._box

    def context(self, store: DiskImageStore) -> SessionContext:
        from restora.perception import backend
        from restora.quality import QualityScorer

        guard = None
        if self.config.guard:
            from restora.quality.guard import NoHarmGuard

            guard = NoHarmGuard.default()
        planner = self.planner
        if planner is None:
            from restora.planners.heuristic import HeuristicPlanner

            planner = HeuristicPlanner()
        return SessionContext(
            store=store,
            toolbox=self.toolbox(),
            scorer=_scorer(QualityScorer),
            perceive=backend(self.config.perception),
            planner=planner,
            guard=guard,
            config=self.config,
            turn_steps=self.turn_steps,
            on_event=self.on_event,
        )


_SCORERS: dict[Any, Any] = {}


def _scorer(cls):
    if cls not in _SCORERS:
        _SCORERS[cls] = cls()
    return _SCORERS[cls]


# -- helpers ---------------------------------------------------------------------------------------
def _instructions(state: SessionState) -> Instructions:
    # JSON validation: the model is strict, and in JSON a task is its string
    return Instructions.model_validate_json(json.dumps(state.get("instructions") or {}))


class _Capture:
    """A planner that records the inner planner's first answer and stops (a proposal)."""

    def __init__(self, inner: Planner) -> None:
        self.inner, self.name, self.action = inner, getattr(inner, "name", "planner"), None

    def next_action(self, obs: Observation) -> Action:
        if self.action is None:
            self.action = self.inner.next_action(obs)
        return Action.stop("proposal recorded")


class _Once:
    """A planner that gives one approved action, then stops."""

    def __init__(self, action: Action, proposer: str) -> None:
        self.action: Action | None = action
        self.name = f"{proposer}, approved by the person"

    def next_action(self, obs: Observation) -> Action:
        action, self.action = self.action, None
        return action if action is not None else Action.stop("the approved step was run")


def _attach(ctx: SessionContext, state: SessionState, planner: Planner, request: str | None) -> Run:
    agent_ctx = ctx.agent_context(state["run_id"], planner, request)
    return Run(agent_ctx, TraceWriter(None), dict(state["agent"]), time.perf_counter())


def _stamp(record: dict[str, Any], turn: int, request: str | None) -> dict[str, Any]:
    return {**record, "turn": turn, "request": request}


def _next_step(state: SessionState) -> int:
    return int(state["agent"].get("step", 0))


def _user_record(state: SessionState, kind: Literal["tool", "rollback"], decision: str, *, before: dict[str, Any], after_ref: str,
                 after_scores: dict[str, Any], tool: str | None, task: str | None, params: dict[str, Any], reason: str,
                 step: int, gain: float | None = None, info: dict[str, Any] | None = None) -> dict[str, Any]:
    record = StepRecord(
        run_id=state["run_id"],
        step=step,
        observation=before["report"],
        action={"kind": kind, "tool": tool, "task": task, "params": params, "reason": reason, "planner": "user"},
        decision=decision,
        image_before=before["current_ref"],
        image_after=after_ref,
        scores_before=before["scores"],
        scores_after=after_scores,
        gain=gain,
        tool_info=info or {},
        turn=state.get("turns", 0) or None,
        request=state.get("message"),
    )
    return record.model_dump(mode="json")


def _transition(state: SessionState, now: dict[str, Any], target: dict[str, Any], back: str, forward: str) -> list[dict[str, Any]]:
    """The person's records from agent state ``now`` to ``target``: one rollback per kept step of
    ``now`` that ``target`` does not share, then one accept per kept step of ``target`` that
    ``now`` does not have (so the report counts the kept steps right); the last lands on
    ``target``'s image."""
    a, b = now.get("undo", []), target.get("undo", [])
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    # images along the way: each kept step's input, then the state's current image
    a_imgs = [(e["ref"], e["report"], e["scores"]) for e in a] + [(now["current_ref"], now["report"], now["scores"])]
    b_imgs = [(e["ref"], e["report"], e["scores"]) for e in b] + [(target["current_ref"], target["report"], target["scores"])]
    out = []
    step = _next_step(state)
    for i in range(len(a) - 1, k - 1, -1):  # back down to the shared prefix
        (ref0, rep0, sc0), (ref1, _, sc1) = a_imgs[i + 1], a_imgs[i]
        e = a[i]
        out.append(_user_record(state, "rollback", "rollback", before={"current_ref": ref0, "report": rep0, "scores": sc0},
                                after_ref=ref1, after_scores=sc1, tool=e["tool"], task=e["task"], params=e["params"],
                                reason=back, step=step))
        step += 1
    for i in range(k, len(b)):  # then up to the target
        (ref0, rep0, sc0), (ref1, _, sc1) = b_imgs[i], b_imgs[i + 1]
        e = b[i]
        gain = float(sc1["overall"]) - float(sc0["overall"])
        out.append(_user_record(state, "tool", "accept", before={"current_ref": ref0, "report": rep0, "scores": sc0},
                                after_ref=ref1, after_scores=sc1, tool=e["tool"], task=e["task"], params=e["params"],
                                reason=forward, step=step, gain=gain))
        step += 1
    return out


def _command(state: SessionState, ctx: SessionContext, name: str) -> dict[str, Any]:
    agent = state["agent"]
    undo, redo = list(state.get("undo", [])), list(state.get("redo", []))
    records = list(state.get("records", []))
    if name == "stop":
        return {"reply": ["Stopped. The image is as it is now; /save PATH writes it."]}
    if name == "undo":
        if not undo:
            return {"reply": ["Nothing to undo."]}
        snap = undo.pop()
        target = snap["agent"]
        new = _transition(state, agent, target, "undone by the person", "brought back by the person's undo")
        redo.append({"agent": agent, "label": snap["label"]})
        said = f"Undid {snap['label']}."
    elif name == "redo":
        if not redo:
            return {"reply": ["Nothing to redo."]}
        snap = redo.pop()
        target = snap["agent"]
        new = _transition(state, agent, target, "taken back by the person's redo", "redone by the person")
        undo.append({"agent": agent, "label": snap["label"]})
        said = f"Redid {snap['label']}."
    else:  # reset
        target = state["origin"]
        if agent["current_ref"] == target["current_ref"] and not agent.get("undo"):
            return {"reply": ["The image is already the original."]}
        new = _transition(state, agent, target, "reset to the original by the person", "reset to the original by the person")
        undo.append({"agent": agent, "label": "the reset"})
        redo = []
        said = "Back to the original (undo brings the restored image back)."
    steps = max(_next_step(state) + len(new), int(target.get("step", 0)))
    restored = {**target, "step": steps, "tool_calls": max(agent["tool_calls"], target["tool_calls"])}
    return {"agent": restored, "undo": undo, "redo": redo, "records": [*records, *new], "reply": [said]}


def _adjusted_task(agent: dict[str, Any], ins: Instructions) -> Task | None:
    """The task whose last kept step a strength change redoes, or None: the last kept step
    (under a grain step) when no task is named, else that step's task if it was named."""
    if ins.strength == 1.0:
        return None
    entries = [e for e in agent.get("undo", []) if e["tool"] != "keep_grain"]
    if not entries:
        return None
    task = Task(entries[-1]["task"])
    return task if not ins.do or task in ins.do else None


def _pop_last_task(state: SessionState, ctx: SessionContext, task: Task, reason: str) -> tuple[SessionState, list[dict[str, Any]], str]:
    """Undo the kept steps down to and including the last one of ``task`` (a grain step on top
    goes with it), as the person's rollbacks (no ban). Returns the new state, the records, and
    words saying what was undone."""
    agent = dict(state["agent"])
    actx = dataclasses.replace(ctx, on_event=None).agent_context(state["run_id"], ctx.planner)
    records, undone = [], []
    while agent.get("undo"):
        last = agent["undo"][-1]
        update = nodes.undo_last(agent, actx, reason, ban=False, by="user")
        records += [_stamp(r, state.get("turns", 0), state.get("message")) for r in update.pop("emitted")]
        agent = {**agent, **update}
        undone.append(last["tool"])
        if last["task"] == task.value and last["tool"] != "keep_grain":
            break
    words = f"Undid {', '.join(reversed(undone))} to redo it at the new strength."
    return {**state, "agent": agent}, records, words


def grain_share(agent: dict[str, Any]) -> float:
    """The share of removed noise the person keeps now: the last kept ``keep_grain`` step's (0
    without one). It holds for later denoising, and comes and goes with undo like the step.

    Examples:
        >>> grain_share({"undo": [{"tool": "keep_grain", "params": {"share": 0.3}}]})
        0.3
    """
    for e in reversed(agent.get("undo", [])):
        if e["tool"] == "keep_grain":
            return float(e["params"].get("share", 0.0))
    return 0.0


def _last_denoise(agent: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The last kept denoise step (index into the agent's ``undo`` entries) and its entry."""
    entries = agent.get("undo", [])
    for i in range(len(entries) - 1, -1, -1):
        if entries[i]["task"] == "denoise" and entries[i]["tool"] != "keep_grain":
            return i, entries[i]
    return None


def _apply_grain(state: SessionState, ctx: SessionContext, share: float, push: bool = True) -> dict[str, Any]:
    """Put back ``share`` of the noise the last kept denoise step removed: current + share x
    (its input - its output). Replaces an earlier grain step on top; a kept step of its own."""
    agent = state["agent"]
    found = _last_denoise(agent)
    if found is None:
        return {"reply": ["There is no kept denoise step to take the grain from."]}
    if not 0.0 <= share <= 1.0:
        return {"reply": [f"The grain share is between 0 and 1, not {share:g}."]}
    i, entry = found
    entries = agent["undo"]
    denoised_ref = entries[i + 1]["ref"] if i + 1 < len(entries) else agent["current_ref"]
    base = agent
    records = list(state.get("records", []))
    step = _next_step(state)
    if entries and entries[-1]["tool"] == "keep_grain":
        # re-blend: take the last grain step back (recorded), start from what it was applied to
        last = entries[-1]
        base = {**agent, "current_ref": last["ref"], "report": last["report"], "scores": last["scores"], "undo": entries[:-1],
                "accepted": agent["accepted"][:-1]}
        records.append(_user_record(state, "rollback", "rollback", before=agent, after_ref=last["ref"], after_scores=last["scores"],
                                    tool="keep_grain", task="denoise", params=last["params"], step=step,
                                    reason="the grain share changed, as the person asked"))
        step += 1
    residual = np.asarray(ctx.store.get(entry["ref"]), np.float32) - np.asarray(ctx.store.get(denoised_ref), np.float32)
    out = np.clip(np.asarray(ctx.store.get(base["current_ref"]), np.float32) + share * residual, 0.0, 1.0)
    if share == 0.0:
        ref = base["current_ref"]
        report, scores = base["report"], base["scores"]
    else:
        ref = ctx.store.put(out)
        report, scores = ctx.assess(out)
    new_agent = dict(base)
    if share > 0.0:
        gain = float(scores["overall"]) - float(base["scores"]["overall"])
        records.append(_user_record(state, "tool", "accept", before=base, after_ref=ref, after_scores=scores, tool="keep_grain",
                                    task="denoise", params={"share": share}, step=step, gain=gain,
                                    reason=f"the person asked to keep the grain: {round(share * 100)}% of what {entry['tool']} removed put back",
                                    info={"from": entry["tool"], "share": share}))
        step += 1
        new_agent.update(
            current_ref=ref, report=report, scores=scores, accepted=[*base["accepted"], "keep_grain"],
            undo=[*base["undo"], {"ref": base["current_ref"], "report": base["report"], "scores": base["scores"], "tool": "keep_grain",
                                   "task": "denoise", "params": {"share": share}, "key": choice_key("keep_grain", {"share": share})}],
        )
    new_agent["step"] = step
    update: dict[str, Any] = {"agent": new_agent, "records": records}
    if push:
        update["undo"] = [*state.get("undo", []), {"agent": agent, "label": f"the grain at {round(share * 100)}%"}]
        update["redo"] = []
    words = f"Put back {round(share * 100)}% of the grain {entry['tool']} removed." if share else "Took the grain back out."
    return {**update, "reply": [words]}


def _grain_command(state: SessionState, ctx: SessionContext, arg: str) -> dict[str, Any]:
    try:
        share = float(arg.rstrip("%")) / (100.0 if arg.endswith("%") else 1.0)
    except ValueError:
        return {"reply": [f"/grain takes a share between 0 and 1 (or a percentage), not {arg!r}."]}
    return _apply_grain(state, ctx, share)


def _pick(state: SessionState, ctx: SessionContext, arg: str) -> dict[str, Any]:
    comparison = state.get("compare")
    if not comparison:
        return {"reply": ["There is no comparison to pick from; run /compare TASK first."]}
    agent = state["agent"]
    if comparison.get("current", comparison["base"]) != agent["current_ref"]:
        return {"reply": ["The image changed since that comparison; run /compare again."]}
    try:
        n = int(arg)
        cand = comparison["candidates"][n - 1]
        if n < 1:
            raise IndexError
    except (ValueError, IndexError):
        return {"reply": [f"/pick takes a candidate number from 1 to {len(comparison['candidates'])}."]}
    if not cand.get("ref"):
        return {"reply": [f"Candidate {n} ({cand['tool']}) failed: {cand.get('error')}."]}
    previous = agent
    pre: list[dict[str, Any]] = []
    if comparison.get("replaces"):
        state, pre, _ = _pop_last_task(state, ctx, Task(comparison["task"]), f"replaced by the person's pick from the {comparison['task']} comparison")
        agent = state["agent"]
    step = _next_step(state)
    record = _user_record(state, "tool", "accept", before=agent, after_ref=cand["ref"], after_scores=cand["scores"], tool=cand["tool"],
                          task=cand["task"], params=cand["params"], step=step, gain=cand["gain"],
                          reason=f"picked by the person from the comparison of {comparison['task']} tools")
    new_agent = {
        **agent,
        "current_ref": cand["ref"],
        "report": cand["report"],
        "scores": cand["scores"],
        "accepted": [*agent["accepted"], cand["tool"]],
        "undo": [*agent.get("undo", []), {"ref": agent["current_ref"], "report": agent["report"], "scores": agent["scores"],
                                          "tool": cand["tool"], "task": cand["task"], "params": cand["params"],
                                          "key": choice_key(cand["tool"], cand["params"])}],
        "history": [*agent["history"], {"step": step, "tool": cand["tool"], "task": cand["task"], "params": cand["params"],
                                        "decision": "accept", "gain": cand["gain"], "error": None}],
        "tool_calls": agent["tool_calls"] + 1,
        "step": step + 1,
    }
    warn = ""
    if not cand.get("guard_ok", True):
        warn = f" Note: the no-harm guard flagged it ({(cand.get('guard') or {}).get('reason', 'likely harm')})."
    elif cand["gain"] <= 0:
        warn = " Note: the quality measures score it below the image it replaced."
    update: dict[str, Any] = {
        "agent": new_agent,
        "records": [*state.get("records", []), *pre, record],
        "undo": [*state.get("undo", []), {"agent": previous, "label": f"picking {cand['tool']}"}],
        "redo": [],
        "reply": [f"Took candidate {n}, {cand['tool']}.{warn}"],
    }
    share = grain_share(previous)
    if share and cand["task"] == "denoise":  # the grain the person asked to keep holds for a picked denoiser too
        grained = _apply_grain({**state, **update}, ctx, share, push=False)
        update["reply"] += grained.pop("reply")
        update.update({k: v for k, v in grained.items() if k != "reply"})
    return update


def _default_compare_task(agent: dict[str, Any]) -> Task | None:
    entries = [e for e in agent.get("undo", []) if e["tool"] != "keep_grain"]
    if entries:
        return Task(entries[-1]["task"])
    present = [f for f in (agent.get("report") or {}).get("findings", {}).values() if f.get("present")]
    if present:
        best = max(present, key=lambda f: float(f.get("severity") or 0.0))
        return TASK_FOR.get(Degradation(best["degradation"]))
    return None


def _task_word(arg: str) -> Task | None:
    if not arg:
        return None
    try:
        return Task(arg.strip().lower().replace(" ", "_"))
    except ValueError:
        ins = parse(arg)
        tasks = ins.do or ([ins.compare_task] if ins.compare_task else [])
        return tasks[0] if len(tasks) == 1 and not ins.not_understood else None


def _params_words(params: dict[str, Any]) -> str:
    """``sigma=25.3, strength=1`` (floats to 3 significant digits; nested values left out)."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items() if not isinstance(v, (dict, list)))


def _candidate_line(c: dict[str, Any]) -> str:
    if c.get("error"):
        return f"{c['tool']}: failed ({c['error']})"
    params = _params_words({k: v for k, v in c["params"].items() if k != "task"})
    guard = "" if c["guard_ok"] else " - the no-harm guard flags it"
    return f"{c['tool']} ({params}): quality {float(c['scores']['overall']):.3f} ({c['gain']:+.3f}), {c['seconds']:.1f} s{guard}"


def _turn_words(state: SessionState, new: list[dict[str, Any]], result: RestoreResult) -> str:
    from restora.report import summarize

    steps = [StepRecord.model_validate(r) for r in new]
    if not any(s.action.kind == "tool" for s in steps):
        stop = next((s.action.reason for s in steps if s.action.kind == "stop"), result.stop_reason)
        found = summarize([StartRecord.model_validate(state["start"]), *steps])[0] if steps else ""
        return f"{found} Nothing was run: {stop}.".strip()
    return " ".join(summarize([StartRecord.model_validate(state["start"]), *steps]))


def _proposal_words(proposal: dict[str, Any]) -> str:
    params = _params_words(proposal.get("params", {}))
    return f"Next I would run {proposal['tool']} ({params}) for {proposal.get('task') or 'the image'}: {proposal.get('reason', '')}."


_YES = {"y", "yes", "ok", "okay", "sure", "go", "go ahead", "do it", "accept", "approve", "yep", "yeah", "true", "1"}


def _yes(answer: Any) -> bool:
    if isinstance(answer, bool):
        return answer
    return str(answer).strip().lower().rstrip(".!") in _YES
