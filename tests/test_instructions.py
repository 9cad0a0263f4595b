"""The chat instruction parser: a table of what people type and what they mean."""

from __future__ import annotations

import pydantic
import pytest

from restora.chat.instructions import Instructions, parse
from restora.taxonomy import Task
from restora.tools import list_tools

D, MB, DB = Task.DENOISE, Task.MOTION_DEBLUR, Task.DEFOCUS_DEBLUR
HZ, RN, LL, JP, SR = Task.DEHAZE, Task.DERAIN, Task.LOW_LIGHT, Task.DEJPEG, Task.SUPER_RESOLUTION
LEARNED = sorted(n for n, t in list_tools().items() if t.learned)
LEARNED_SR = sorted(n for n, t in list_tools().items() if t.learned and t.handles() == (SR,))

# phrase -> the fields a person means (every other field must stay at its default)
CORPUS: list[tuple[str, dict]] = [
    # denoise, with synonyms and typos
    ("denoise it", {"do": [D]}),
    ("remove the noise", {"do": [D]}),
    ("it's too grainy", {"do": [D]}),
    ("get rid of the speckles", {"do": [D]}),
    ("denosie please", {"do": [D]}),
    ("clean up the noize", {"do": [D]}),
    ("less noise", {"do": [D]}),
    ("too much grain", {"do": [D]}),
    ("still noisy", {"do": [D], "strength": 1.3}),
    # deblur
    ("it's out of focus", {"do": [DB]}),
    ("there's camera shake", {"do": [MB]}),
    ("remove the motion blur", {"do": [MB]}),
    ("sharpen it", {"do": [MB, DB]}),
    ("it's a bit blury", {"do": [MB, DB]}),
    ("Fix the BLUR.", {"do": [MB, DB]}),
    # dehaze
    ("remove the haze", {"do": [HZ]}),
    ("get rid of the mist", {"do": [HZ]}),
    ("dehaze the foggy photo", {"do": [HZ]}),
    ("it's hazey", {"do": [HZ]}),
    # derain
    ("remove the rain", {"do": [RN]}),
    ("remove the rian", {"do": [RN]}),
    ("remove the streaks and drops", {"do": [RN]}),
    # low light
    ("it's too dark", {"do": [LL]}),
    ("brighten it", {"do": [LL]}),
    ("brigthen it", {"do": [LL]}),
    ("the image is underexposed", {"do": [LL]}),
    ("lift the shadows", {"do": [LL]}),
    # jpeg
    ("fix the jpg artifacts", {"do": [JP]}),
    ("remove the compression artefacts", {"do": [JP]}),
    ("it's blocky", {"do": [JP]}),
    # super-resolution
    ("upscale it", {"do": [SR]}),
    ("upscael it 2x", {"do": [SR]}),
    ("it's pixelated", {"do": [SR]}),
    ("make it bigger", {"do": [SR]}),
    ("I need a higher resolution", {"do": [SR]}),
    ("enlarge the picture", {"do": [SR]}),
    # several at once
    ("remove the haze and the noise", {"do": [HZ, D]}),
    ("Remove the rain, then brighten it", {"do": [RN, LL]}),
    # negation and keeping a degradation
    ("don't upscale", {"avoid": [SR]}),
    ("do not brighten it", {"avoid": [LL]}),
    ("no sharpening", {"avoid": [MB, DB]}),
    ("leave the fog", {"avoid": [HZ]}),
    ("keep it dark", {"avoid": [LL]}),
    ("keep the haze but remove noise", {"do": [D], "avoid": [HZ]}),
    ("stop denoising", {"avoid": [D]}),
    ("don't remove the grain", {"avoid": [D]}),
    ("keep all the grain", {"avoid": [D]}),
    ("keep the noise", {"avoid": [D]}),
    # only
    ("only denoise", {"do": [D], "only": True}),
    ("just the rain please", {"do": [RN], "only": True}),
    ("remove noise, upscale 4x and nothing else", {"do": [D, SR], "only": True}),
    # strength
    ("a bit more", {"strength": 1.3}),
    ("stronger", {"strength": 1.3}),
    ("push it harder", {"strength": 1.3}),
    ("much stronger", {"strength": 1.6}),
    ("a lot more", {"strength": 1.6}),
    ("gentler", {"strength": 0.7}),
    ("less smoothing", {"strength": 0.7}),
    ("tone it down", {"strength": 0.7}),
    ("it's overdone", {"strength": 0.7}),
    ("not so strong", {"strength": 0.7}),
    ("much gentler", {"strength": 0.5}),
    ("much less", {"strength": 0.5}),
    # grain put back
    ("keep the grain", {"keep_grain": 0.3}),
    ("keep a little grain", {"keep_grain": 0.15}),
    ("keep lots of grain", {"keep_grain": 0.5}),
    ("add some grain back", {"keep_grain": 0.3}),
    ("denoise, but keep a little grain", {"do": [D], "keep_grain": 0.15}),
    ("remove the rain but keep the grain and brighten it a bit", {"do": [RN, LL], "keep_grain": 0.3}),
    # tools
    ("use bm3d", {"do": [D], "use_tools": ["denoise_bm3d"]}),
    ("try BM3D", {"do": [D], "use_tools": ["denoise_bm3d"]}),
    ("use waifu2x for the jpeg", {"do": [JP], "use_tools": ["dejpeg_waifu2x"]}),
    ("real-esrgan please", {"do": [SR], "use_tools": ["sr_realesrgan"]}),
    ("use srmd for upscaling", {"do": [SR], "use_tools": ["sr_srmd"]}),
    ("no nlm", {"avoid_tools": ["denoise_nlm"]}),
    ("don't use bm3d for denoising", {"avoid_tools": ["denoise_bm3d"]}),
    ("no AI upscaling", {"avoid_tools": LEARNED_SR}),
    ("no AI", {"avoid_tools": LEARNED}),
    ("no neural networks please", {"avoid_tools": LEARNED}),
    ("classical only", {"avoid_tools": LEARNED}),
    # commands
    ("undo that", {"command": "undo"}),
    ("go back", {"command": "undo"}),
    ("redo", {"command": "redo"}),
    ("start over", {"command": "reset"}),
    ("stop", {"command": "stop"}),
    ("that's enough", {"command": "stop"}),
    ("undo the sharpening", {"command": "undo", "avoid": [MB, DB]}),
    ("show me the other denoisers", {"command": "compare", "compare_task": D}),
    ("compare denoisers", {"command": "compare", "compare_task": D}),
    ("compare the upscalers", {"command": "compare", "compare_task": SR}),
    # preserve
    ("don't touch the colours", {"preserve": ["colours"]}),
    ("leave the colors alone", {"preserve": ["colours"]}),
    ("keep the face natural", {"preserve": ["faces"]}),
    ("preserve the text", {"preserve": ["text"]}),
    ("denoise without touching the colours", {"do": [D], "preserve": ["colours"]}),
    ("remove the noise but don't lose detail", {"do": [D], "preserve": ["details"]}),
    ("the sky looks fine, just remove the rain", {"do": [RN], "only": True, "preserve": ["sky"]}),
    # what it cannot map is said back
    ("make it pop", {"not_understood": ["make it pop"]}),
    ("fix the colours", {"not_understood": ["colours"]}),
    ("more contrast", {"not_understood": ["more contrast"]}),
    ("make it look like a painting and denoise", {"do": [D], "not_understood": ["make it look like a painting"]}),
]


@pytest.mark.parametrize(("phrase", "expected"), CORPUS, ids=[p for p, _ in CORPUS])
def test_corpus(phrase: str, expected: dict) -> None:
    got = parse(phrase)
    want = Instructions(**expected)
    for name in Instructions.model_fields:
        g, w = getattr(got, name), getattr(want, name)
        if name in ("do", "avoid", "use_tools", "avoid_tools", "preserve"):
            g, w = sorted(g), sorted(w)
        assert g == w, f"{phrase!r}: {name} is {g!r}, a person means {w!r}"


def test_corpus_is_large() -> None:
    assert len(CORPUS) >= 60


def test_unknown_text_lands_in_not_understood() -> None:
    got = parse("remove the rain and give it a cinematic teal look")
    assert got.do == [RN]
    assert got.not_understood == ["give it a cinematic teal look"]
    assert parse("thanks!").not_understood == []  # politeness is not a request


def test_model_is_strict() -> None:
    with pytest.raises(pydantic.ValidationError):
        Instructions(do=["denoise"])  # strict: a Task, not a string
    with pytest.raises(pydantic.ValidationError):
        Instructions(colour="blue")  # unknown field
    with pytest.raises(pydantic.ValidationError, match="did you mean"):
        Instructions(use_tools=["denoise_bm4d"])
    with pytest.raises(pydantic.ValidationError):
        Instructions(keep_grain=1.5)
    assert Instructions.model_validate_json('{"do": ["denoise"]}').do == [D]


def test_summary_says_what_was_and_was_not_understood() -> None:
    s = parse("only denoise, gentler, and make it pop").summary()
    assert "denoise" in s and "nothing else" in s and "gently" in s
    assert "I did not understand: 'make it pop'" in s
    assert parse("make it pop").summary() == "I did not understand: 'make it pop'."
    assert parse("ok").summary() == "I did not find a request in that."


def test_learned_groups_come_from_the_registry() -> None:
    assert "sr_realesrgan" in LEARNED_SR and "denoise_nlm" not in LEARNED
    assert set(LEARNED_SR) <= set(LEARNED)
