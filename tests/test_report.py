"""The run's page (restora.report): the words it says for kept, rolled-back and stopped runs, the
full-resolution images it embeds, and the before/after slider dragged in a real headless Chromium.

The browser test needs Playwright for Python and Debian's ``chromium`` (``/usr/bin/chromium``,
driven through ``executable_path``; no ``playwright install``). Without them it skips, saying
why, unless ``RESTORA_REQUIRE_BROWSER=1`` (CI sets it), where it fails.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from restora.report import render_report, step_verdict, stop_text, summarize
from restora.taxonomy import Degradation
from restora.traces import ActionRecord, EndRecord, StartRecord, StepRecord

CONFIG = {"planner": "heuristic", "min_gain": 0.002, "min_consistency": 0.25, "guard": True, "metrics": ["niqe", "brisque", "piqe"]}


# -- records made by hand: each case of the accept rule --------------------------------------------
def _obs(**severity: float) -> dict:
    """A perception report with the given degradations present at those severities."""
    findings = {
        d.value: {"degradation": d.value, "present": d.value in severity, "severity": severity.get(d.value, 0.0), "evidence": {}}
        for d in Degradation
    }
    return {"findings": findings, "width": 64, "height": 48}


def _scores(overall: float, niqe: float = 6.0, brisque: float = 30.0, piqe: float = 40.0, degradation: float = 0.5) -> dict:
    raw = {"niqe": niqe, "brisque": brisque, "piqe": piqe}
    normalized = {"niqe": 1 - niqe / 20, "brisque": 1 - brisque / 100, "piqe": 1 - piqe / 100}
    return {"raw": raw, "normalized": normalized, "nr": 0.6, "degradation": degradation, "overall": overall}


def _start() -> StartRecord:
    return StartRecord(run_id="t", source="x.png", width=64, height=48, image="img:0", config=CONFIG, started_at="2026-01-01T00:00:00+00:00")


def _step(n, tool, task, decision, before, after, obs, gain=None, sb=None, sa=None, consistency=0.99, guard=None, error=None):
    return StepRecord(
        run_id="t",
        step=n,
        observation=obs,
        action=ActionRecord(kind="tool", tool=tool, task=task, params={}, reason="", planner="heuristic"),
        decision=decision,
        image_before=before,
        image_after=after,
        scores_before=sb,
        scores_after=sa,
        gain=gain,
        consistency=consistency if error is None else None,
        guard=guard,
        error=error,
    )


def _stop(n, image, obs, reason) -> StepRecord:
    return StepRecord(
        run_id="t", step=n, observation=obs, action=ActionRecord(kind="stop", reason=reason, planner="heuristic"),
        decision="stop", image_before=image,
    )


def _end(image, reason, accepted, calls) -> EndRecord:
    return EndRecord(run_id="t", image=image, stop_reason=reason, tool_calls=calls, accepted=accepted, seconds=1.0)


GUARD_OK = {"task": "dejpeg", "checked": True, "ok": True, "p_harm": 0.01, "threshold": 0.54,
            "reason": "what it removed looks like the dejpeg it targets (harm 0.01 <= 0.54)"}
GUARD_HARM = {"task": "derain", "checked": True, "ok": False, "p_harm": 0.97, "threshold": 0.30,
              "reason": "likely harm (0.97 > 0.30): what it removed is made of long lines"}


def _kept_and_declined() -> list:
    """JPEG blocking removed by waifu2x; both denoisers made the noise worse; then the planner gave up."""
    s0 = _scores(0.50, degradation=0.3)
    s1 = _scores(0.54, brisque=25, piqe=35, degradation=0.6)
    return [
        _start(),
        _step(0, "dejpeg_waifu2x", "dejpeg", "accept", "img:0", "img:1", _obs(jpeg=0.8, noise=0.2), 0.04, s0, s1, guard=GUARD_OK),
        _step(1, "denoise_nlm", "denoise", "rollback", "img:1", "img:2", _obs(noise=0.2), -0.01, s1,
              _scores(0.53, brisque=31, piqe=44, degradation=0.6)),
        _step(2, "denoise_bm3d", "denoise", "rollback", "img:1", "img:3", _obs(noise=0.2), -0.02, s1,
              _scores(0.52, niqe=7.0, brisque=25, piqe=35, degradation=0.6)),
        _stop(3, "img:1", _obs(noise=0.2), "every detected degradation was handled or has no untried tool left"),
        _end("img:1", "every detected degradation was handled or has no untried tool left", ["dejpeg_waifu2x"], 3),
    ]


def test_summary_says_what_was_found_done_and_declined() -> None:
    assert summarize(_kept_and_declined()) == [
        "Found strong JPEG blocking and mild noise.",
        "Removed the JPEG blocking with waifu2x; left the noise because non-local means and BM3D made it worse.",
    ]


def test_step_verdicts_for_a_kept_and_a_rolled_back_step() -> None:
    records = _kept_and_declined()
    assert step_verdict(records[1]) == (
        "kept: quality rose 0.040 (more than the 0.002 needed), the structure held and the no-harm guard passed it"
    )
    assert step_verdict(records[2]) == "rolled back: quality fell 0.010: BRISQUE and PIQE got worse"
    assert step_verdict(records[3]) == "rolled back: quality fell 0.020: NIQE got worse"
    assert stop_text(records) == "every degradation found was handled or has no untried tool left (noise not fixed)"


def test_a_kept_step_whose_metrics_fell_says_what_carried_it() -> None:
    before, after = _scores(0.848, brisque=12.6, piqe=40, degradation=0.95), _scores(0.853, brisque=14.2, piqe=50, degradation=1.0)
    step = _step(1, "dejpeg_deblock", "dejpeg", "accept", "img:0", "img:1", _obs(jpeg=0.05), 0.005, before, after)
    assert step_verdict(step) == (
        "kept: quality rose 0.005 (more than the 0.002 needed; perception found less degradation, "
        "while BRISQUE and PIQE got worse) and the structure held"
    )


def test_guard_rollback_is_explained_in_the_step_and_the_summary() -> None:
    records = [
        _start(),
        _step(0, "derain_guided", "derain", "rollback", "img:0", "img:1", _obs(rain=0.28), 0.017,
              _scores(0.671), _scores(0.688), guard=GUARD_HARM),
        _step(1, "derain_guided", "derain", "rollback", "img:0", "img:2", _obs(rain=0.28), -0.004,
              _scores(0.671), _scores(0.667, piqe=45), guard=GUARD_HARM),
        _stop(2, "img:0", _obs(rain=0.28), "quality stopped improving: the last 2 steps were not kept"),
        _end("img:0", "quality stopped improving: the last 2 steps were not kept", [], 2),
    ]
    assert step_verdict(records[1]) == "rolled back by the no-harm guard: likely harm (0.97 > 0.30): what it removed is made of long lines"
    assert step_verdict(records[2]) == (
        "rolled back by the no-harm guard: likely harm (0.97 > 0.30): what it removed is made of long lines; "
        "also quality fell 0.004: PIQE got worse"
    )
    assert summarize(records) == [
        "Found mild rain streaks.",
        "Changed nothing: left the rain streaks because the no-harm guard found that the rain filter removed picture "
        "content, not only rain streaks.",
    ]
    assert stop_text(records) == "quality stopped improving: the last 2 steps were not kept"


def test_structure_loss_small_gains_and_failures_in_words() -> None:
    lost = _step(0, "sr_realesrgan", "super_resolution", "rollback", "img:0", "img:1", _obs(low_res=0.5), 0.05,
                 _scores(0.5), _scores(0.55), consistency=0.1)
    small = _step(1, "sr_srmd", "super_resolution", "rollback", "img:0", "img:2", _obs(low_res=0.5), 0.001,
                  _scores(0.5), _scores(0.501))
    failed = _step(2, "denoise_srmd", "denoise", "error", "img:0", None, _obs(low_res=0.5, noise=0.5), error="denoise_srmd ran out of memory")
    assert step_verdict(lost) == "rolled back: the output lost the input's structure (consistency 0.10, needs 0.25)"
    assert step_verdict(small) == "rolled back: quality rose only 0.001, not more than the 0.002 needed"
    assert step_verdict(failed) == "failed: denoise_srmd ran out of memory"
    records = [_start(), lost, small, failed, _end("img:0", "step budget reached (3 tool calls)", [], 3)]
    assert summarize(records)[1] == (
        "Changed nothing: left the resolution as it was because Real-ESRGAN changed the picture's structure and "
        "SRMD improved it too little; left the noise because SRMD failed."
    )


def test_stop_reason_of_a_restored_image_is_not_looks_clean() -> None:
    reason = "no degradation found: the image looks clean"
    restored = [
        _start(),
        _step(0, "dejpeg_waifu2x", "dejpeg", "accept", "img:0", "img:1", _obs(jpeg=0.46), 0.22, _scores(0.67), _scores(0.89)),
        _stop(1, "img:1", _obs(), reason),
        _end("img:1", reason, ["dejpeg_waifu2x"], 1),
    ]
    assert stop_text(restored) == "nothing left to fix: perception finds no degradation in the restored image"
    assert summarize(restored) == ["Found moderate JPEG blocking.", "Removed the JPEG blocking with waifu2x."]
    clean = [_start(), _stop(0, "img:0", _obs(), reason), _end("img:0", reason, [], 0)]
    assert stop_text(clean) == "the input looks clean: perception found no degradation"
    assert summarize(clean) == ["Found no degradation: the input looks clean to perception.", "Nothing was changed: the output is the input."]


def test_budget_stop_names_what_was_not_tried() -> None:
    reason = "step budget reached (1 tool calls)"
    records = [
        _start(),
        _step(0, "denoise_nlm", "denoise", "accept", "img:0", "img:1", _obs(noise=0.7, haze=0.4), 0.03, _scores(0.5), _scores(0.53)),
        _stop(1, "img:1", _obs(haze=0.4), reason),
        _end("img:1", reason, ["denoise_nlm"], 1),
    ]
    assert summarize(records) == [
        "Found strong noise and moderate haze.",
        "Reduced the noise with non-local means; did not get to the haze: step budget reached (1 tool calls).",
    ]
    assert stop_text(records) == reason


def test_big_pictures_are_embedded_as_full_resolution_jpeg_and_huge_ones_downscaled(monkeypatch) -> None:
    from restora import report

    ramp = np.linspace(0, 1, 200 * 100 * 3, dtype=np.float32).reshape(100, 200, 3)
    url, how = report.image_data_url(ramp)
    assert url.startswith("data:image/png;base64,") and how == "200x100, lossless PNG"
    assert np.array_equal(_decode(url), (ramp * 255).round().astype(np.uint8))
    monkeypatch.setattr(report, "LOSSLESS_MEGAPIXELS", 0.01)  # 0.02 MP is "big" now
    url, how = report.image_data_url(ramp)
    assert url.startswith("data:image/jpeg;base64,") and _decode(url).shape == (100, 200, 3)
    assert how == "200x100, JPEG quality 95"
    monkeypatch.setattr(report, "EMBED_MEGAPIXELS", 0.005)  # and "huge"
    url, how = report.image_data_url(ramp)
    assert _decode(url).shape == (50, 100, 3) and how.startswith("200x100 shown at 100x50")
    monkeypatch.setattr(report, "LOSSLESS_MEGAPIXELS", 2.0)
    assert report.image_data_url(ramp, lossless=False)[0].startswith("data:image/jpeg;base64,"), "past the page budget"


# -- a real run on a real photo -----------------------------------------------------------------------
PHOTO = ("real_nogt", "real47", "19.jpg")  # 200x200 JPEG-compressed lotus


@pytest.fixture(scope="module")
def real_run(data_dir: Path):
    from restora.agent import restore
    from restora.imageio import load_image
    from restora.planners.scripted import ScriptedPlanner
    from restora.tools import ToolBox

    photo = load_image(data_dir.joinpath(*PHOTO)).pixels
    steps = [("dejpeg_deblock", {"quality": 70}), ("denoise_nlm", {}), ("derain_guided", {})]
    result = restore(photo, planner=ScriptedPlanner(steps), toolbox=ToolBox(allow=[s[0] for s in steps]), max_steps=3)
    return photo, result


def _images(page: str) -> dict[str, str]:
    block = re.search(r"<script type='application/json' id='restora-images'>(.*?)</script>", page, re.S)
    assert block, "the page carries its images in one JSON block"
    return json.loads(block.group(1))


def _decode(url: str) -> np.ndarray:
    head, b64 = url.split(",", 1)
    img = cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@pytest.mark.data
def test_page_of_a_real_run_embeds_full_resolution_pictures_and_says_why(real_run) -> None:
    from restora.imageio import to_uint8

    photo, result = real_run
    page = render_report(result, "19.jpg")
    images = _images(page)
    assert images["input"].startswith("data:image/png;base64,")
    assert np.array_equal(_decode(images["input"]), to_uint8(photo)), "the input is shown lossless, at full resolution"
    tools = [r for r in result.records if r.event == "step" and r.action.kind == "tool"]
    assert len(tools) == 3
    for r in tools:  # every step has its picture and its reason on the page
        assert f"data-img='s{r.step}-result'" in page or r.decision == "accept"
        assert html.escape(step_verdict(r)) in page
    first, second = summarize(result.records)
    assert html.escape(f"{first} {second}") in page
    assert "href='19.png'" in page and "href='19.trace.jsonl'" in page
    assert "<details id='details'>" in page, "the raw evidence is kept, collapsed"
    assert "cepstrum_peak" not in page.split("<details")[0], "no raw evidence above the details"


# -- the slider in a real browser ----------------------------------------------------------------------


@pytest.mark.data
@pytest.mark.slow
def test_slider_drags_zooms_and_fits_a_phone_in_headless_chromium(real_run, headless_chromium, tmp_path: Path) -> None:
    sync_playwright, exe = headless_chromium
    _, result = real_run
    page_path = tmp_path / "19.html"
    page_path.write_text(render_report(result, "19.jpg"), encoding="utf-8")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri())
            page.wait_for_selector("#viewer[data-ready]", timeout=15_000)
            viewer = page.locator("#viewer")
            assert viewer.get_attribute("data-pos") == "0.500"
            assert page.evaluate("document.querySelector('#viewer img.before').naturalWidth") == 200, "full resolution"

            # drag the bar from the middle to a quarter of the way
            vp = page.locator("#viewer .vp").bounding_box()
            handle = page.locator("#viewer .handle").bounding_box()
            page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
            page.mouse.down()
            page.mouse.move(vp["x"] + 0.25 * vp["width"], vp["y"] + vp["height"] / 2, steps=8)
            page.mouse.up()
            assert abs(float(viewer.get_attribute("data-pos")) - 0.25) < 0.02
            clip = page.evaluate("document.querySelector('#viewer .layer.before').style.clipPath")
            right = float(re.search(r"inset\(0px ([\d.]+)px", clip).group(1))
            assert abs(right - 0.75 * vp["width"]) < 0.02 * vp["width"], clip
            # the keyboard moves it too
            page.locator("#viewer .handle").focus()
            page.keyboard.press("End")
            assert viewer.get_attribute("data-pos") == "1.000"

            # zoom to 4x, pan by dragging the picture, back to fit
            page.click("#viewer [data-zoom='4']")
            assert viewer.get_attribute("data-scale") == "4.000"
            assert "pixels" in page.get_attribute("#viewer .vp", "class")
            t0 = page.evaluate("document.querySelector('#viewer img.after').style.transform")
            page.mouse.move(vp["x"] + 100, vp["y"] + 100)
            page.mouse.down()
            page.mouse.move(vp["x"] + 160, vp["y"] + 140, steps=4)
            page.mouse.up()
            assert page.evaluate("document.querySelector('#viewer img.after').style.transform") != t0, "the drag pans"
            page.click("#viewer [data-zoom='fit']")
            assert float(viewer.get_attribute("data-scale")) <= 2.0

            # a step card's picture opens that step in the viewer
            page.locator(".thumb[data-compare]").first.click()
            pair = page.locator(".thumb[data-compare]").first.get_attribute("data-compare")
            page.wait_for_function("p => document.querySelector('#viewer').dataset.ready === p", arg=pair)
            assert errors == [] and all(u.startswith(("file:", "data:", "blob:")) for u in requests), (errors, requests)

            # phone width: nothing sticks out sideways
            phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            phone.goto(page_path.as_uri())
            phone.wait_for_selector("#viewer[data-ready]", timeout=15_000)
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390
            assert phone.locator("#viewer .vp").bounding_box()["width"] <= 390
        finally:
            browser.close()
