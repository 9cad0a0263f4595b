"""``restora chat``: restore one photo by talking to restora in the terminal.

A thin face on :class:`restora.chat.ChatSession`: each line typed (or piped) is a message; the
face answers ``/help``, ``/history``, ``/save PATH`` and ``/quit`` itself and passes everything
else to the session. The session is checkpointed after every message, so Ctrl-C, a crash or
``/quit`` leaves it resumable: ``restora chat --resume ID``.

Examples:
    restora chat photo.jpg
    printf 'remove the noise\\n/undo\\nremove the noise, keep the grain\\n/save out.png\\n/quit\\n' | restora chat photo.jpg
    restora chat --list
    restora chat --resume 3f9a0c1e2b7d
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from restora.cli.common import PlannerModel, PlannerURL, app, err, escape_markup, fail, out, split_csv, user_errors
from restora.imageio import DEFAULT_MAX_MEGAPIXELS


@app.command("chat")
def chat(
    image: Annotated[Path | None, typer.Argument(help="the photo to restore (a new session)")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="continue the session with this id instead")] = None,
    list_sessions: Annotated[bool, typer.Option("--list", help="list the sessions and exit")] = False,
    sessions: Annotated[Path | None, typer.Option("--sessions", help="where sessions live (default: $RESTORA_SESSIONS, else ~/.local/share/restora/sessions)")] = None,
    steps: Annotated[int, typer.Option(min=1, help="tool calls one message may make")] = 6,
    approve: Annotated[bool, typer.Option("--approve", help="step by step: every tool step is proposed and waits for your yes or no")] = False,
    allow: Annotated[str | None, typer.Option(help="comma-separated tools the agent may use (default: all available)")] = None,
    max_megapixels: Annotated[float, typer.Option(help="refuse larger inputs")] = DEFAULT_MAX_MEGAPIXELS,
    planner: Annotated[str, typer.Option(help="heuristic (CPU default), vlm (OpenAI-compatible server) or hf (in-process)")] = "heuristic",
    planner_url: PlannerURL = None,
    planner_model: PlannerModel = None,
    perception: Annotated[str | None, typer.Option("--perception", help="learned, classical, or a run folder of `restora train perception`")] = None,
) -> None:
    """Restore one photo by talking to restora: say what you want, /undo, /compare denoise, /save PATH.

    Reads one message per line from the terminal, or from a pipe for scripts. Type /help for
    the commands. The session is kept after every message; Ctrl-C or /quit leaves it resumable
    with --resume ID.
    """
    from restora.chat.session import HELP, ChatSession, SessionServices, default_home
    from restora.config import RunConfig, env
    from restora.planners.factory import PlannerSpec, planner_factory

    home = sessions or default_home()
    if list_sessions:
        rows = ChatSession.list(home)
        if not rows:
            out.print(f"no sessions in {home}", highlight=False, soft_wrap=True)
        for row in rows:
            out.print(f"{row['id']}  {row.get('created', '')}  {escape_markup(str(row.get('source', '')))}", highlight=False, soft_wrap=True)
        return
    if (image is None) == (resume is None):
        raise fail("give an image to start a session, or --resume ID to continue one (--list shows them)")
    live = _Live()
    with user_errors():
        make_planner = planner_factory(PlannerSpec(planner, url=planner_url, model=planner_model, key=env().planner_key or "EMPTY"))
        names = split_csv(allow)
        services = SessionServices(
            config=RunConfig(perception=perception), planner=make_planner(), allow=names, turn_steps=steps, on_event=live.on_event
        )
        if resume is not None:
            session = ChatSession.resume(resume, home=home, services=services)
            out.print(f"resumed session {session.id} ({len(session.messages)} messages; {escape_markup(session.state['source'])})", highlight=False, soft_wrap=True)
        else:
            out.print(f"opening {escape_markup(str(image))} ...", highlight=False, soft_wrap=True)
            session = ChatSession.create(image, home=home, services=services, approval=approve, max_megapixels=max_megapixels)
            out.print(f"session {session.id}: {_found(session)}", highlight=False, soft_wrap=True)
    resume_hint = f"restora chat --resume {session.id}" + (f" --sessions {home}" if sessions else "")
    if session.pending() is not None:
        out.print(session.pending()["text"] + " Approve? (yes/no)", highlight=False, soft_wrap=True)
    interactive = sys.stdin.isatty()
    if interactive:
        out.print("Say what you want (/help for the commands, /quit to leave).", highlight=False, soft_wrap=True)
    try:
        with session:
            while True:
                line = _read(interactive)
                if line is None:
                    break
                text = line.strip()
                if not text:
                    continue
                if not interactive:
                    out.print(f"you> {escape_markup(text)}", highlight=False, soft_wrap=True)
                word = text.split(maxsplit=1)[0].lower()
                if word in ("/quit", "/exit", "/q"):
                    break
                if word == "/help":
                    out.print(escape_markup(HELP), highlight=False, soft_wrap=True)
                    continue
                if word == "/history":
                    for h in session.history():
                        out.print(escape_markup(h), highlight=False, soft_wrap=True)
                    continue
                if word == "/save":
                    target = text[len(word):].strip()
                    if not target:
                        err.print("/save needs a path, e.g. /save out/photo.png", highlight=False, soft_wrap=True)
                        continue
                    from restora.errors import RestoraError

                    try:
                        written = session.save(Path(target).expanduser())
                    except (RestoraError, OSError) as e:
                        err.print(f"error: could not save: {escape_markup(str(e))}", highlight=False, soft_wrap=True)
                        continue
                    out.print("saved " + ", ".join(str(p) for p in written), highlight=False, soft_wrap=True)
                    continue
                try:
                    reply = session.say(text)
                except Exception as e:  # a tool or planner crash: say it, keep the session
                    from restora.errors import RestoraError

                    if not isinstance(e, RestoraError):
                        raise
                    err.print(f"error: {escape_markup(str(e))}", highlight=False, soft_wrap=True)
                    continue
                live.done()
                out.print(escape_markup(reply.text), highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        live.done()
        err.print(f"\nstopped; the session is kept as it was after the last finished message. Resume: {resume_hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    out.print(f"session {session.id} kept. Resume: {resume_hint}", highlight=False, soft_wrap=True)


def _read(interactive: bool) -> str | None:
    try:
        if interactive:
            return out.input("[bold]you>[/bold] ")
        line = sys.stdin.readline()
        return line if line else None
    except EOFError:
        return None


def _found(session: Any) -> str:
    from restora.report import DEGRADATION_WORDS, severity_words

    findings = session.state["agent"]["input_report"].get("findings", {})
    present = [(d, float(f.get("severity") or 0.0)) for d, f in findings.items() if f.get("present")]
    if not present:
        return "perception finds nothing wrong with it; say what you want done."
    words = ", ".join(f"{severity_words(s)} {DEGRADATION_WORDS.get(d, d)}" for d, s in sorted(present, key=lambda t: -t[1]))
    return f"found {words}. Say what you want (e.g. 'fix it', 'remove the noise')."


class _Live:
    """Prints each step as the agent takes it (plain lines: they read well piped too)."""

    def __init__(self) -> None:
        self.steps = 0

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "plan":
            a = data.get("action") or {}
            from restora.chat.session import _params_words

            params = _params_words(a.get("params") or {})
            out.print(f"  trying {a.get('tool')} ({escape_markup(params)}) ...", highlight=False, soft_wrap=True)
        elif kind == "decide":
            decision, gain = data.get("decision"), data.get("gain")
            how = {"accept": "kept", "rollback": "rolled back", "error": "failed"}.get(str(decision), str(decision))
            extra = f" ({gain:+.3f})" if isinstance(gain, (int, float)) else ""
            if data.get("error"):
                extra += f": {escape_markup(str(data['error']))}"
            out.print(f"  {how}{extra}", highlight=False, soft_wrap=True)
            self.steps += 1

    def done(self) -> None:
        self.steps = 0
