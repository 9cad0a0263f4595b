"""``restora web``: chat sessions on a web page (gradio 6), a thin face on
:class:`restora.chat.ChatSession`.

The page: a chat (type what you want, attach a photo with the paperclip), a before/after slider
(the original against the image now), a gallery of each kept step and one of the candidates of the
last comparison (with their scores), undo / redo / reset, a keep-grain slider, and downloads of
the image and its report page.

Each browser tab has its own session: the tab holds only the session's id (``gr.State``); the
sessions live in a server-side :class:`Sessions` under the sessions home, one folder each. Nothing
the browser sends is taken as a path: an upload is read only from gradio's upload folder (it must
resolve inside it), copied into the session folder by :meth:`ChatSession.create` and removed from
the upload folder; what the page shows and offers for download comes from the session (saved into
``<session>/exports``, then handed to gradio's cache to serve). A file that is not an image, is
corrupt or too large gets restora's own message in the page.

Examples:
    >>> from restora.web import WebConfig, serve
    >>> serve(WebConfig(home="sessions", allow=["denoise_nlm", "denoise_srmd"]), port=7860)   # doctest: +SKIP
    restora web: http://127.0.0.1:7860 (sessions in sessions)
"""

from __future__ import annotations

import html
import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from restora.errors import RestoraError
from restora.imageio import DEFAULT_MAX_MEGAPIXELS, to_uint8

if TYPE_CHECKING:
    from restora.chat.session import ChatSession

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_UPLOAD_MB = 100.0
"""The largest upload gradio accepts (``--max-upload-mb``); the megapixel limit applies after."""
PREVIEW_PX = 2048
"""Longest side of the images the page shows (downloads are full resolution)."""

PAGE_ERRORS: tuple[type[BaseException], ...] = (RestoraError, MemoryError)
"""Errors a page action turns into a message in the page (anything else is a bug: logged, and
gradio shows a generic error without a traceback)."""

HELP = (
    "Attach a photo with the paperclip (or drop it on the box), then say what you want: "
    "*remove the noise*, *gentler*, *keep a little grain*, *only denoise*, *use bm3d*, *undo*, "
    "*compare denoise* (then pick a candidate below the slider), *reset*."
)

CSS = """
#restora-status { font-size: 0.85em; opacity: 0.8; }
#restora-chat button[aria-label="Clear"] { display: none; }
#restora-notice { border-left: 4px solid #d97706; padding: 0.4em 0.8em; background: rgba(217, 119, 6, 0.08); }
#restora-notice p { margin: 0; }
#restora-steps .caption-label, #restora-candidates .caption-label {
  white-space: normal; overflow: visible; text-overflow: clip; max-width: calc(100% - 8px); font-size: 0.8em; line-height: 1.25;
}
"""


@dataclass
class WebConfig:
    """What ``restora web`` serves: where sessions live and what an upload may be.

    Examples:
        >>> WebConfig(home="sessions", max_megapixels=20).max_megapixels
        20.0
    """

    home: Path
    """The sessions home: one folder per session (its images, exports), and gradio's upload folder
    (``.uploads``) unless ``GRADIO_TEMP_DIR`` is set."""
    allow: list[str] | None = None
    """Tool names the sessions may use (None: every available tool)."""
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    """Refuse uploads with more pixels than this (decompression-bomb guard, as ``restora run``)."""
    max_upload_mb: float = MAX_UPLOAD_MB
    """Refuse uploads larger than this many megabytes (gradio refuses them before they arrive)."""
    turn_steps: int | None = None
    """Tool calls one message may make (None: the session's default)."""
    services: Any = field(default=None, repr=False)
    """A :class:`restora.chat.SessionServices` to use (default: made from ``allow`` and ``turn_steps``)."""

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser()
        self.max_megapixels = float(self.max_megapixels)
        self.max_upload_mb = float(self.max_upload_mb)
        if not self.max_megapixels > 0:
            raise ValueError(f"max_megapixels must be positive, not {self.max_megapixels:g}")
        if not self.max_upload_mb > 0:
            raise ValueError(f"max_upload_mb must be positive, not {self.max_upload_mb:g}")
        if self.turn_steps is not None and self.turn_steps < 1:
            raise ValueError(f"turn_steps must be at least 1, not {self.turn_steps}")


def prepare_environment(home: Path) -> Path:
    """Settings gradio reads from the environment, made before gradio is imported: no analytics,
    and uploads in ``<home>/.uploads`` (not a folder shared in the system temp dir) unless
    ``GRADIO_TEMP_DIR`` is set. Returns the upload folder."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(Path(home).expanduser().resolve() / ".uploads"))
    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Sessions:
    """The sessions this server has open, by id. A browser tab holds only its session's id.

    Examples:
        >>> sessions = Sessions(WebConfig(home="sessions"))                 # doctest: +SKIP
        >>> s = sessions.open(Path(upload), "photo.jpg"); sessions.get(s.id) is s   # doctest: +SKIP
        True
    """

    def __init__(self, config: WebConfig) -> None:
        from restora.chat.session import TURN_STEPS, SessionServices

        self.config = config
        self.services = config.services or SessionServices(allow=config.allow, turn_steps=config.turn_steps or TURN_STEPS)
        self._open: dict[str, ChatSession] = {}
        self._tabs: dict[str, int] = {}  # tabs holding each open session (a reload opens a second one first)
        self._lock = threading.Lock()
        self._previews: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def open(self, upload: Path, name: str) -> ChatSession:
        """A new session on the uploaded file ``upload`` (shown as ``name``)."""
        from restora.chat.session import ChatSession

        session = ChatSession.create(upload, home=self.config.home, services=self.services,
                                     max_megapixels=self.config.max_megapixels, source=name)
        with self._lock:
            self._open[session.id] = session
            self._tabs[session.id] = 1
        return session

    def get(self, session_id: str | None) -> ChatSession | None:
        with self._lock:
            return self._open.get(session_id or "")

    def resume(self, session_id: str) -> ChatSession:
        """The session ``session_id`` of the sessions home (the page's ``?session=ID``), opened
        here if it is not already; a bad or unknown id is a :class:`RestoraError`."""
        from restora.chat.session import ChatSession

        with self._lock:
            found = self._open.get(session_id)
            if found is not None:
                self._tabs[session_id] = self._tabs.get(session_id, 0) + 1
                return found
        session = ChatSession.resume(session_id, home=self.config.home, services=self.services)
        with self._lock:
            kept = self._open.setdefault(session.id, session)
            self._tabs[session.id] = self._tabs.get(session.id, 0) + 1
        if kept is not session:
            session.close()
        return kept

    def close(self, session_id: str | None) -> None:
        """Close the session (it stays on disk) when the last tab holding it goes away."""
        with self._lock:
            left = self._tabs.get(session_id or "", 1) - 1
            if left > 0:
                self._tabs[session_id or ""] = left
                return
            self._tabs.pop(session_id or "", None)
            session = self._open.pop(session_id or "", None)
            for key in [k for k in self._previews if k[0] == session_id]:
                del self._previews[key]
        if session is not None:
            session.close()

    def close_all(self) -> None:
        for sid in list(self._open):
            self.close(sid)

    def preview(self, session: ChatSession, ref: str) -> np.ndarray:
        """The image ``ref`` as 8-bit RGB, its longest side at most :data:`PREVIEW_PX` (kept for the
        last few images shown)."""
        key = (session.id, ref)
        with self._lock:
            if key in self._previews:
                self._previews.move_to_end(key)
                return self._previews[key]
        pixels = np.asarray(session.ctx.store.get(ref), np.float32)
        h, w = pixels.shape[:2]
        if max(h, w) > PREVIEW_PX:
            import cv2

            scale = PREVIEW_PX / max(h, w)
            pixels = cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        image = to_uint8(pixels)
        with self._lock:
            self._previews[key] = image
            while len(self._previews) > 64:
                self._previews.popitem(last=False)
        return image


# -- what the page shows ---------------------------------------------------------------------------
def upload_file(files: list[Any] | None, upload_folder: Path) -> tuple[Path, str] | None:
    """The one uploaded file of a message and the name to show for it, or None. Only a file
    inside gradio's upload folder is taken (gradio checks this too); anything else is refused."""
    if not files:
        return None
    if len(files) > 1:
        raise RestoraError("attach one photo at a time")
    item = files[0]
    raw = item.get("path") if isinstance(item, dict) else item
    path = Path(str(raw)).resolve()
    if not path.is_relative_to(upload_folder.resolve()) or not path.is_file():
        raise RestoraError("that upload did not arrive through the page's upload; attach the photo again")
    name = (item.get("orig_name") if isinstance(item, dict) else None) or path.name
    return path, _safe_name(name)


def _safe_name(name: str) -> str:
    """A file name fit to show and to name downloads after: no folders, no odd characters."""
    name = Path(str(name).replace("\\", "/")).name
    name = re.sub(r"[^\w.\- ]+", "_", name).strip(" .") or "photo"
    return name[:80]


def _caption_score(scores: dict[str, Any] | None, before: dict[str, Any] | None) -> str:
    if not scores:
        return ""
    now = float(scores["overall"])
    if before is None:
        return f"quality {now:.3f}"
    return f"quality {now:.3f} ({now - float(before['overall']):+.3f})"


def step_items(values: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]]:
    """The original and each kept step that led to the image now: ``(ref, title, scores,
    scores before)``, in order."""
    from restora.report import tool_words

    agent = values["agent"]
    entries = list(agent.get("undo", []))
    items: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = [
        (agent["input_ref"], "original", agent.get("input_scores"), None)]
    for i, entry in enumerate(entries):
        last = i == len(entries) - 1
        ref = agent["current_ref"] if last else entries[i + 1]["ref"]
        scores = agent["scores"] if last else entries[i + 1]["scores"]
        if entry["tool"] == "keep_grain":
            share = float((entry.get("params") or {}).get("share", 0.0))
            title = f"{i + 1}. grain {round(share * 100)}%"
        else:
            title = f"{i + 1}. {tool_words(entry['tool'])}"
        items.append((ref, title, scores, entry.get("scores")))
    return items


def candidate_items(values: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The candidates of the last comparison that can still be picked: ``(number, candidate)``
    (empty when there is none, or the image changed since)."""
    comparison = values.get("compare")
    if not comparison or comparison.get("current", comparison.get("base")) != values["agent"]["current_ref"]:
        return []
    return [(n, c) for n, c in enumerate(comparison.get("candidates", []), 1) if c.get("ref")]


def candidate_caption(n: int, c: dict[str, Any]) -> str:
    from restora.report import tool_words

    words = f"{n}. {tool_words(c['tool'])}: quality {float(c['scores']['overall']):.3f} ({float(c['gain']):+.3f})"
    if not c.get("guard_ok", True):
        words += "; the no-harm guard flags it"
    return words


def findings_words(values: dict[str, Any]) -> str:
    """What perception found in the photo, in words ("moderate noise and mild JPEG blocking")."""
    from restora.report import DEGRADATION_WORDS, severity_words

    findings = ((values["agent"].get("input_report") or values["origin"].get("report") or {}).get("findings") or {})
    present = sorted(((d, float(f.get("severity") or 0.0)) for d, f in findings.items() if f.get("present")), key=lambda x: -x[1])
    if not present:
        return "nothing wrong (the photo looks clean to perception)"
    words = [f"{severity_words(s)} {DEGRADATION_WORDS.get(d, d)}" for d, s in present]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def status_html(session: ChatSession | None, values: dict[str, Any] | None) -> str:
    """One line under the title: the session, the photo, its size and the image now (as data
    attributes too, for scripts and tests)."""
    if session is None or values is None:
        return "<div id='restora-state' data-session=''>No photo yet.</div>"
    agent = values["agent"]
    start = values.get("start") or {}
    kept = len(agent.get("undo", []))
    return (
        f"<div id='restora-state' data-session='{session.id}' data-image='{html.escape(agent['current_ref'])}' "
        f"data-input='{html.escape(agent['input_ref'])}'>Session <code>{session.id}</code> · "
        f"{html.escape(str(values.get('source', '')))} · {start.get('width')}x{start.get('height')} · "
        f"{kept} kept step{'s' if kept != 1 else ''}</div>"
    )


def chat_messages(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation as gradio 6 message dicts (role and content)."""
    out = [{"role": "assistant", "content": f"Opened {values.get('source', 'the photo')}. I found {findings_words(values)}."}]
    for m in values.get("messages", []):
        role = "user" if m.get("role") == "user" else "assistant"
        out.append({"role": role, "content": m.get("text") or ("(empty message)" if role == "user" else "(done)")})
    return out


# -- the page ------------------------------------------------------------------------------------
def build_app(config: WebConfig):
    """The gradio Blocks of the page; ``app.restora_sessions`` is its :class:`Sessions`.

    Examples:
        >>> app = build_app(WebConfig(home="sessions"))   # doctest: +SKIP
        >>> app.launch(server_name="127.0.0.1", server_port=7860, **launch_options(WebConfig(home="sessions")))   # doctest: +SKIP
    """
    upload_folder = prepare_environment(config.home)
    import gradio as gr

    from restora.chat.session import grain_share

    sessions = Sessions(config)

    def shown(text: str):
        return gr.update(value=text, visible=bool(text))

    def view(sid: str | None, notice: str = "") -> tuple:
        """Every output of an action, from the session as it is now."""
        session = sessions.get(sid)
        hidden = gr.update(value=None, visible=False)
        if session is None:
            return ([], None, [], gr.update(value=[], visible=False), shown(notice), status_html(None, None),
                    gr.update(interactive=False), gr.update(interactive=False), gr.update(interactive=False), gr.update(value=0.0),
                    gr.update(interactive=False), hidden, hidden, None, gr.update(interactive=False, visible=False))
        values = session.state
        agent = values["agent"]
        before, after = sessions.preview(session, agent["input_ref"]), sessions.preview(session, agent["current_ref"])
        if before.shape != after.shape:  # super-resolution: show the original at the new size
            import cv2

            before = cv2.resize(before, (after.shape[1], after.shape[0]), interpolation=cv2.INTER_CUBIC)
        steps = [(sessions.preview(session, ref), f"{title}: {_caption_score(sc, prev)}" if sc else title)
                 for ref, title, sc, prev in step_items(values)]
        cands = [(sessions.preview(session, c["ref"]), candidate_caption(n, c)) for n, c in candidate_items(values)]
        return (
            chat_messages(values),
            (before, after),
            steps,
            gr.update(value=cands, visible=bool(cands)),
            shown(notice),
            status_html(session, values),
            gr.update(interactive=bool(values.get("undo"))),
            gr.update(interactive=bool(values.get("redo"))),
            gr.update(interactive=agent["current_ref"] != agent["input_ref"] or bool(agent.get("undo"))),
            gr.update(value=grain_share(agent)),
            gr.update(interactive=True),
            hidden,
            hidden,
            None,
            gr.update(interactive=bool(cands), visible=bool(cands)),
        )

    def send(message: dict[str, Any] | None, sid: str | None):
        message = message or {}
        text = (message.get("text") or "").strip()
        notice = ""
        try:
            found = upload_file(message.get("files"), upload_folder)
        except PAGE_ERRORS as e:
            return (*view(sid, str(e)), sid, gr.update(value=None))
        if found is not None:
            path, name = found
            try:
                session = sessions.open(path, name)
            except PAGE_ERRORS as e:
                reason = str(e).replace(str(path), name)
                return (*view(sid, f"Could not open {name}: {reason}" if not reason.startswith(name) else reason), sid,
                        gr.update(value=None))
            finally:
                path.unlink(missing_ok=True)  # the session folder has its copy
            sessions.close(sid)
            sid = session.id
        session = sessions.get(sid)
        if session is None:
            return (*view(sid, "Attach a photo first (the paperclip), then say what you want." if text else ""), sid,
                    gr.update(value=None))
        if text:
            command = text.lower().split()[0] if text.startswith("/") else ""
            if command in ("/save", "/help", "/history", "/quit"):  # the terminal's; here the page has them
                notice = {"/save": "Use the Save button below for the image and its report.",
                          "/history": "The conversation above is the history.",
                          "/quit": "Close the tab to leave; the session stays in its folder."}.get(command, HELP)
            else:
                try:
                    session.say(text)
                except PAGE_ERRORS as e:
                    notice = str(e)
        return (*view(sid, notice), sid, gr.update(value=None))

    def command(name: str):
        def act(sid: str | None):
            session = sessions.get(sid)
            if session is None:
                return view(sid, "Attach a photo first.")
            try:
                getattr(session, name)()
            except PAGE_ERRORS as e:
                return view(sid, str(e))
            return view(sid)

        return act

    def grain(share: float, sid: str | None):
        session = sessions.get(sid)
        if session is None:
            return view(sid, "Attach a photo first.")
        try:
            reply = session.grain(round(float(share), 3))
        except PAGE_ERRORS as e:
            return view(sid, str(e))
        return view(sid, "" if reply.changed else reply.text)

    def on_load(request):
        """``?session=ID`` in the address continues that session (after a reload, or a bookmark)."""
        sid = str(dict(request.query_params).get("session") or "").strip() if request is not None else ""
        if not sid:
            return (*view(None), None)
        try:
            session = sessions.resume(sid)
        except PAGE_ERRORS as e:
            return (*view(None, f"Could not continue session {sid}: {e}"), None)
        return (*view(session.id, f"Continued session {session.id}."), session.id)

    on_load.__annotations__["request"] = gr.Request  # gradio reads the annotation (not a string)

    def select_candidate(evt):
        return evt.index

    select_candidate.__annotations__["evt"] = gr.SelectData  # gradio reads the annotation (not a string)

    def pick(index: int | None, sid: str | None):
        session = sessions.get(sid)
        if session is None:
            return view(sid, "Attach a photo first.")
        items = candidate_items(session.state)
        if index is None or not 0 <= int(index) < len(items):
            return view(sid, "Click a candidate in the comparison first.")
        try:
            session.pick(items[int(index)][0])
        except PAGE_ERRORS as e:
            return view(sid, str(e))
        return view(sid)

    def save(sid: str | None):
        session = sessions.get(sid)
        if session is None:
            return gr.update(), gr.update(), shown("Attach a photo first.")
        stem = _safe_name(Path(str(session.state.get("source") or "photo")).stem)
        try:
            image, _trace, page = session.save(session.folder / "exports" / f"{stem}-restored.png")
        except PAGE_ERRORS as e:
            return gr.update(), gr.update(), shown(str(e))
        served = _serve([image, page], upload_folder)
        return (gr.update(value=str(served[0]), visible=True), gr.update(value=str(served[1]), visible=True),
                shown(f"Saved {image.name} and its report page {page.name} in the session folder."))

    # gradio's copies (previews, downloads) older than a day are deleted hourly; the sessions stay
    with gr.Blocks(title="restora", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        sid_state = gr.State(None, delete_callback=sessions.close)
        picked = gr.State(None)
        gr.Markdown("## restora: restore a photo by talking to it\n" + HELP)
        status = gr.HTML(status_html(None, None), elem_id="restora-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=360):
                chat = gr.Chatbot(label="Conversation", show_label=False, elem_id="restora-chat", height=430, buttons=[],
                                  placeholder="Attach a photo to start a session.")
                box = gr.MultimodalTextbox(
                    placeholder="Attach a photo, or say what you want (remove the noise, undo, compare denoise)",
                    show_label=False, sources=["upload"], file_count="single", elem_id="restora-input", autofocus=True,
                )
                notice = gr.Markdown("", elem_id="restora-notice", visible=False)
                with gr.Row():
                    undo = gr.Button("Undo", elem_id="restora-undo", interactive=False, size="sm")
                    redo = gr.Button("Redo", elem_id="restora-redo", interactive=False, size="sm")
                    reset = gr.Button("Reset", elem_id="restora-reset", interactive=False, size="sm")
                grain_slider = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Keep grain",
                                         info="The share of what the last denoise removed to put back",
                                         elem_id="restora-grain")
                with gr.Row():
                    save_btn = gr.Button("Save image and report", elem_id="restora-save", interactive=False, size="sm")
                    get_image = gr.DownloadButton("Download image", visible=False, elem_id="restora-download-image", size="sm")
                    get_page = gr.DownloadButton("Download report", visible=False, elem_id="restora-download-report", size="sm")
            with gr.Column(scale=6, min_width=360):
                slider = gr.ImageSlider(label="Original | now", type="numpy", format="png", interactive=False,
                                        elem_id="restora-slider", max_height=520, buttons=["fullscreen"])
                steps = gr.Gallery(label="Steps (each kept step's image)", format="png", columns=3, fit_columns=False,
                                   height=230, object_fit="contain", elem_id="restora-steps", interactive=False)
                cands = gr.Gallery(label="Compared candidates (click one, then use it)", format="png", columns=3,
                                   fit_columns=False, height=230, object_fit="contain", elem_id="restora-candidates", interactive=False,
                                   visible=False)
                pick_btn = gr.Button("Use the selected candidate", elem_id="restora-pick", interactive=False, size="sm", visible=False)

        outputs = [chat, slider, steps, cands, notice, status, undo, redo, reset, grain_slider, save_btn, get_image, get_page,
                   picked, pick_btn]
        work = {"concurrency_id": "restora", "concurrency_limit": 1}  # one restoration at a time on this machine
        box.submit(send, [box, sid_state], [*outputs, sid_state, box], **work)
        undo.click(command("undo"), sid_state, outputs)
        redo.click(command("redo"), sid_state, outputs)
        reset.click(command("reset"), sid_state, outputs)
        grain_slider.release(grain, [grain_slider, sid_state], outputs, **work)
        cands.select(select_candidate, None, picked)
        pick_btn.click(pick, [picked, sid_state], outputs, **work)
        save_btn.click(save, sid_state, [get_image, get_page, notice])
        demo.load(on_load, None, [*outputs, sid_state])
    demo.restora_sessions = sessions
    return demo


def _serve(paths: list[Path], upload_folder: Path) -> list[Path]:
    """Copies of ``paths`` in a fresh folder of gradio's cache, for the download buttons (the
    session folder itself is never served)."""
    folder = upload_folder / "restora-exports" / secrets.token_hex(8)
    folder.mkdir(parents=True)
    out = []
    for p in paths:
        target = folder / p.name
        shutil.copyfile(p, target)
        out.append(target)
    return out


def launch_options(config: WebConfig) -> dict[str, Any]:
    """The options :func:`serve` launches with (besides host, port and auth)."""
    return {
        "share": False,
        "ssr_mode": False,
        "show_error": False,
        "max_file_size": int(config.max_upload_mb * 1024 * 1024),
        "css": CSS,
        "footer_links": [],
    }


def serve(config: WebConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, auth: tuple[str, str] | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the page until Ctrl-C (which returns); ``on_ready(url)`` once it answers."""
    demo = build_app(config)
    try:
        demo.queue(default_concurrency_limit=1).launch(server_name=host, server_port=port, auth=auth, quiet=True,
                                                       prevent_thread_lock=True, **launch_options(config))
        if on_ready is not None:
            on_ready(f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}")
        try:
            while demo.is_running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    finally:
        demo.close()
        demo.restora_sessions.close_all()


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (checked before starting, to say so plainly)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False  # an address that does not resolve: gradio says why
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no obstacle
        try:
            s.bind(addr)
        except OSError:
            return True
    return False
