"""``restora web`` in a real browser: the real server (``restora web`` as a subprocess on a free
port) driven by Playwright through Debian's headless ``chromium``.

One session of a person: attach a noisy photo, "remove the noise" (the slider shows a changed
image), "undo" (the page serves exactly the uploaded pixels again), redo, "compare denoise" (at
least two candidates with their scores), use a candidate, keep 30% of the grain (undone and redone
with the buttons), save and download the image and the report. And what a person sees for a file
that is not an image, a corrupt one, one over the megapixel limit and one over the upload size.
Screenshots of the page at desktop width go to ``out/web-shots/``. Without a browser: what the page
trusts of what the browser sends (uploads only from gradio's upload folder; names made safe).

Needs Playwright for Python and ``/usr/bin/chromium`` (no ``playwright install``); without them
the tests skip, saying why, unless ``RESTORA_REQUIRE_BROWSER=1`` (CI sets it), where they fail.
The photo is a 160 px crop of a clean photo from ``$RESTORA_DATA`` with Gaussian noise.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "out" / "web-shots"
TOOLS = "denoise_srmd,denoise_nlm,denoise_bm3d"  # fast, and three of them for a comparison
MAX_MEGAPIXELS = 0.05  # the 160 px photo is 0.026 MP; the test's 300 px one is over
MAX_UPLOAD_MB = 0.25  # the 160 px noisy PNG is about 70 KB
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _gradio_or_skip() -> None:
    try:
        import gradio  # noqa: F401
    except ImportError:
        why = "gradio is not installed (pip install -e '.[ui]')"
        if os.environ.get("RESTORA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RESTORA_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser_kit(headless_chromium):
    _gradio_or_skip()
    return headless_chromium


@pytest.fixture(scope="module")
def server(browser_kit, tmp_path_factory):
    """``restora web`` on a free port; yields (url, sessions home); stopped at the end."""
    home = tmp_path_factory.mktemp("sessions")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "restora.cli", "web", "--port", str(port), "--sessions", str(home), "--allow", TOOLS,
         "--max-megapixels", str(MAX_MEGAPIXELS), "--max-upload-mb", str(MAX_UPLOAD_MB)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"restora web exited with {proc.returncode}:\n{(home / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"restora web did not answer on {url} within 90 s:\n{(home / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url, home
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def noisy_png(clean_photo, tmp_path_factory) -> Path:
    """The 160 px crop with Gaussian noise (sigma 25/255), as an 8-bit PNG."""
    rng = np.random.default_rng(15)
    noisy = np.clip(clean_photo + rng.normal(0.0, 25 / 255, clean_photo.shape), 0.0, 1.0)
    path = tmp_path_factory.mktemp("photo") / "noisy parrot.png"
    Image.fromarray((noisy * 255 + 0.5).astype(np.uint8)).save(path)
    return path


@pytest.fixture()
def page(browser_kit, server):
    sync_playwright, exe = browser_kit
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            pg = context.new_page()
            pg.errors = []
            pg.on("pageerror", lambda e: pg.errors.append(str(e)))
            pg.goto(server[0])
            pg.wait_for_selector("#restora-input textarea", timeout=30_000)
            yield pg
        finally:
            browser.close()


# -- helpers ---------------------------------------------------------------------------------------
def _state(page) -> dict[str, str]:
    return page.evaluate("() => ({...document.querySelector('#restora-state').dataset})")


def _send(page, text: str = "", file: Path | None = None) -> None:
    box = page.locator("#restora-input")
    if file is not None:
        box.locator("input[type=file]").set_input_files(str(file))
        box.locator("[aria-label='File thumbnail']").wait_for(timeout=15_000)
    if text:
        box.locator("textarea").fill(text)
    box.locator("[data-testid=submit-button]").click()


def _wait_idle(page, timeout: float = 60_000) -> None:
    """Until the page's pending event is done (gradio's progress trackers gone)."""
    page.wait_for_timeout(200)
    page.wait_for_function(
        "() => !document.querySelector('.wrap.default.full:not(.hide), .progress-text, .eta-bar')", timeout=timeout)


def _slider_srcs(page) -> list[str]:
    return page.eval_on_selector_all("#restora-slider img[data-testid=imageslider-image]", "els => els.map(e => e.src)")


def _pixels(page, url: str) -> np.ndarray:
    """The image the page serves at ``url``, decoded."""
    body = page.request.get(url).body()
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def _digest(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels, np.uint8).tobytes()).hexdigest()


def _stored(home: Path, session: str, ref: str) -> np.ndarray:
    """The session's image ``ref`` from its folder's store, as 8-bit (what a PNG of it holds)."""
    from restora.imageio import to_uint8
    from restora.store import DiskImageStore

    return to_uint8(DiskImageStore(home / session / "images").get(ref))


def _shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


# -- without a browser: what the page trusts and says ------------------------------------------------
def test_only_files_in_the_upload_folder_are_taken(tmp_path: Path) -> None:
    from restora.errors import RestoraError
    from restora.web import upload_file

    uploads = tmp_path / "uploads"
    (uploads / "abc").mkdir(parents=True)
    inside = uploads / "abc" / "cat.png"
    inside.write_bytes(b"x")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    assert upload_file([str(inside)], uploads) == (inside.resolve(), "cat.png")
    assert upload_file([], uploads) is None and upload_file(None, uploads) is None
    for bad in (str(outside), str(uploads / "abc" / ".." / ".." / "secret.png"), "/etc/passwd", str(uploads / "abc")):
        with pytest.raises(RestoraError, match="did not arrive through the page's upload"):
            upload_file([bad], uploads)
    link = uploads / "abc" / "link.png"
    link.symlink_to(outside)
    with pytest.raises(RestoraError):
        upload_file([str(link)], uploads)
    with pytest.raises(RestoraError, match="one photo at a time"):
        upload_file([str(inside), str(inside)], uploads)


def test_names_from_the_browser_are_made_safe() -> None:
    from restora.web import _safe_name

    assert _safe_name("../../etc/passwd") == "passwd"
    assert _safe_name("C:\\Users\\me\\cat.jpg") == "cat.jpg"
    assert _safe_name("<script>.png") == "_script_.png"
    assert _safe_name("...") == "photo"
    assert len(_safe_name("a" * 500 + ".png")) == 80


def test_captions_say_the_tool_and_its_scores() -> None:
    from restora.web import candidate_caption, candidate_items, step_items

    sc = lambda q: {"overall": q}  # noqa: E731
    agent = {"input_ref": "img:a", "current_ref": "img:c", "input_scores": sc(0.4), "scores": sc(0.8),
             "undo": [{"ref": "img:a", "scores": sc(0.4), "tool": "denoise_nlm", "task": "denoise", "params": {}},
                      {"ref": "img:b", "scores": sc(0.9), "tool": "keep_grain", "task": "denoise", "params": {"share": 0.3}}]}
    items = step_items({"agent": agent})
    assert [(ref, title) for ref, title, _, _ in items] == [("img:a", "original"), ("img:b", "1. non-local means"), ("img:c", "2. grain 30%")]
    assert items[1][2] == sc(0.9) and items[1][3] == sc(0.4)
    cand = {"tool": "denoise_bm3d", "ref": "img:x", "scores": sc(0.77), "gain": 0.33, "guard_ok": False}
    values = {"agent": agent, "compare": {"current": "img:c", "candidates": [cand, {"tool": "denoise_srmd", "error": "no"}]}}
    assert candidate_items(values) == [(1, cand)]
    assert candidate_caption(1, cand) == "1. BM3D: quality 0.770 (+0.330); the no-harm guard flags it"
    assert candidate_items({**values, "compare": {**values["compare"], "current": "img:old"}}) == [], "stale comparison"


# -- in the browser --------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.data
def test_a_session_remove_the_noise_undo_compare_download(page, server, noisy_png, tmp_path: Path) -> None:
    _, home = server
    uploaded = np.asarray(Image.open(noisy_png).convert("RGB"))

    # attach the photo: the slider shows it on both sides, the chat says what was found
    _send(page, file=noisy_png)
    page.wait_for_function("() => document.querySelector('#restora-state').dataset.session", timeout=90_000)
    _wait_idle(page)
    state = _state(page)
    sid = state["session"]
    assert state["image"] == state["input"]
    assert (home / sid / "session.json").is_file(), "the session lives in the sessions home"
    assert "noise" in page.locator("#restora-chat").inner_text()
    before, after = _slider_srcs(page)
    assert _digest(_pixels(page, after)) == _digest(uploaded), "the page shows the uploaded pixels"

    # "remove the noise": the slider's right side changes; the steps gallery shows the step
    _send(page, "remove the noise")
    page.wait_for_function("() => { const d = document.querySelector('#restora-state').dataset; return d.image !== d.input }",
                           timeout=60_000)
    page.wait_for_function("src => document.querySelectorAll('#restora-slider img[data-testid=imageslider-image]')[1].src !== src",
                           arg=after, timeout=15_000)
    _wait_idle(page)
    denoised = _state(page)["image"]
    b1, a1 = _slider_srcs(page)
    changed = _pixels(page, a1)
    assert _digest(_pixels(page, b1)) == _digest(uploaded), "the left side stays the original"
    assert changed.shape == uploaded.shape and _digest(changed) != _digest(uploaded)
    assert np.abs(changed.astype(int) - uploaded.astype(int)).mean() > 3, "visibly changed"
    assert _digest(changed) == _digest(_stored(home, sid, denoised)), "what the page shows is the session's image"
    assert page.locator("#restora-steps .gallery-item").count() == 2, "the original and the kept step"
    assert "quality" in page.locator("#restora-steps").inner_text()

    # "undo" typed in the chat: exactly the previous image (same pixels the page served)
    _send(page, "undo")
    page.wait_for_function("() => { const d = document.querySelector('#restora-state').dataset; return d.image === d.input }",
                           timeout=30_000)
    page.wait_for_function("src => document.querySelectorAll('#restora-slider img[data-testid=imageslider-image]')[1].src === src",
                           arg=after, timeout=15_000)
    _wait_idle(page)
    assert _digest(_pixels(page, _slider_srcs(page)[1])) == _digest(uploaded) == _digest(_stored(home, sid, state["input"]))
    assert page.locator("#restora-redo").is_enabled()

    # the Redo button brings the denoised image back, exactly
    page.click("#restora-redo")
    page.wait_for_function("ref => document.querySelector('#restora-state').dataset.image === ref", arg=denoised, timeout=30_000)
    page.wait_for_function("src => document.querySelectorAll('#restora-slider img[data-testid=imageslider-image]')[1].src === src",
                           arg=a1, timeout=15_000)
    _wait_idle(page)
    assert _digest(_pixels(page, _slider_srcs(page)[1])) == _digest(changed)

    # "compare denoise": the candidates side by side with their scores
    _send(page, "compare denoise")
    page.wait_for_function("() => document.querySelectorAll('#restora-candidates .gallery-item').length >= 2", timeout=60_000)
    _wait_idle(page)
    captions = page.locator("#restora-candidates .caption-label").all_inner_texts()
    assert len(captions) >= 2 and all("quality" in c for c in captions), captions
    assert "Compared" in page.locator("#restora-chat").inner_text()
    _shot(page, "session-compare.png")

    # take the last candidate: the image becomes that candidate
    page.locator("#restora-candidates .gallery-item button").last.click()
    page.keyboard.press("Escape")  # close the gallery's preview
    page.click("#restora-pick")
    page.wait_for_function("() => document.querySelectorAll('#restora-candidates .gallery-item').length === 0", timeout=30_000)
    _wait_idle(page)
    assert "Took candidate" in page.locator("#restora-chat").inner_text()
    taken = _state(page)["image"]

    # the keep-grain slider: a click at 30% of its track puts back that share of the removed noise
    track = page.locator("#restora-grain input[type=range]")
    box = track.bounding_box()
    page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + box["height"] / 2)
    page.wait_for_function("ref => document.querySelector('#restora-state').dataset.image !== ref", arg=taken, timeout=30_000)
    _wait_idle(page)
    assert "of the grain" in page.locator("#restora-chat").inner_text()
    assert page.locator("#restora-steps .gallery-item").count() == 3, "original, the pick, the grain"
    assert float(page.locator("#restora-grain input[type=number]").input_value()) == pytest.approx(0.3)
    grained = _state(page)["image"]

    # the Undo button takes the grain back out, the slider with it; Redo puts it back
    page.click("#restora-undo")
    page.wait_for_function("ref => document.querySelector('#restora-state').dataset.image === ref", arg=taken, timeout=30_000)
    _wait_idle(page)
    assert float(page.locator("#restora-grain input[type=number]").input_value()) == 0.0
    page.click("#restora-redo")
    page.wait_for_function("ref => document.querySelector('#restora-state').dataset.image === ref", arg=grained, timeout=30_000)
    _wait_idle(page)
    assert float(page.locator("#restora-grain input[type=number]").input_value()) == pytest.approx(0.3)
    picked = _state(page)["image"]

    # save, then download the image (a PNG of the right size, the session's pixels) and the report
    page.click("#restora-save")
    page.locator("#restora-download-image").wait_for(state="visible", timeout=30_000)
    with page.expect_download() as dl:
        page.click("#restora-download-image")
    image_file = tmp_path / dl.value.suggested_filename
    dl.value.save_as(image_file)
    with page.expect_download() as dl:
        page.click("#restora-download-report")
    report_file = tmp_path / dl.value.suggested_filename
    dl.value.save_as(report_file)
    got = np.asarray(Image.open(image_file).convert("RGB"))
    assert image_file.name == "noisy parrot-restored.png" or image_file.suffix == ".png", image_file
    assert got.shape == uploaded.shape
    assert _digest(got) == _digest(_stored(home, sid, picked))
    report = report_file.read_text(encoding="utf-8")
    assert report_file.suffix == ".html" and "<html" in report.lower()
    assert (home / sid / "exports").is_dir(), "outputs live under the session folder"
    _shot(page, "session-saved.png")
    assert page.errors == [], page.errors

    # a reload with ?session=ID continues the session where it was; an unknown id says so
    page.goto(f"{server[0]}?session={sid}")
    page.wait_for_function("sid => { const e = document.querySelector('#restora-state'); return e && e.dataset.session === sid }",
                           arg=sid, timeout=30_000)
    _wait_idle(page)
    assert _state(page)["image"] == picked and "Continued session" in page.locator("#restora-notice").inner_text()
    assert "remove the noise" in page.locator("#restora-chat").inner_text()
    page.wait_for_timeout(1500)  # the tab before the reload is gone by now: the session must still answer
    page.click("#restora-undo")
    page.wait_for_function("ref => document.querySelector('#restora-state').dataset.image !== ref", arg=picked, timeout=30_000)
    page.goto(f"{server[0]}?session=0123456789ab")
    page.locator("#restora-notice").wait_for(state="visible", timeout=30_000)
    assert "Could not continue session 0123456789ab" in page.locator("#restora-notice").inner_text()
    assert _state(page)["session"] == ""
    assert page.errors == [], page.errors


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize(
    "name, data, words",
    [
        ("notes.txt", b"remember to buy milk\n", "not an image"),
        ("broken.png", None, "corrupt"),
        ("big.png", "big", "megapixels"),
    ],
)
def test_a_bad_upload_gets_a_clear_message(page, server, noisy_png, tmp_path: Path, name, data, words) -> None:
    path = tmp_path / name
    if data is None:  # a PNG cut off half way
        path.write_bytes(noisy_png.read_bytes()[: noisy_png.stat().st_size // 2])
    elif data == "big":  # 300x300 = 0.09 MP, over the server's 0.05 MP limit
        Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(path)
    else:
        path.write_bytes(data)
    _send(page, file=path)
    notice = page.locator("#restora-notice")
    notice.wait_for(state="visible", timeout=30_000)
    _wait_idle(page)
    text = notice.inner_text()
    assert name in text and words in text, text
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "Error" not in body.replace(text, ""), body
    assert _state(page).get("session", "") == "", "no session was opened"
    if name == "notes.txt":
        _shot(page, "bad-upload.png")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.data
def test_an_upload_over_the_size_limit_is_refused_before_it_arrives(page, server, tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes())
    page.locator("#restora-input input[type=file]").set_input_files(str(path))
    toast = page.get_by_text("exceed the maximum allowed size")
    toast.wait_for(timeout=15_000)
    assert "huge.png" in toast.inner_text()
    assert _state(page).get("session", "") == ""
    assert not list((server[1] / ".uploads").rglob("huge.png")), "gradio did not keep it"
