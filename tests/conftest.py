from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RESTORA_DATA", ROOT.parent / "shared" / "data"))


def _need_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data folder not found at {DATA} (set RESTORA_DATA)")
    return DATA


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder; tests using it skip with a reason when it is absent."""
    return _need_data()


def _load_crop(path: Path, size: int) -> np.ndarray:
    from restora.imageio import load_image

    img = load_image(path).pixels
    h, w = img.shape[:2]
    s = min(size, h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return np.ascontiguousarray(img[y : y + s, x : x + s])


@pytest.fixture(scope="session")
def clean_photos(data_dir: Path) -> list[np.ndarray]:
    """Center 192-px crops of a spread of the clean photos (kodak24 + set5_hr)."""
    from restora.data import image_files

    files = image_files(data_dir / "clean" / "kodak24")[::3] + image_files(data_dir / "clean" / "set5_hr")
    return [_load_crop(f, 192) for f in files]


@pytest.fixture(scope="session")
def clean_photo(data_dir: Path) -> np.ndarray:
    """One clean 160-px crop (kodim23, parrots) for fast tool tests."""
    return _load_crop(data_dir / "clean" / "kodak24" / "kodim23.png", 160)


@pytest.fixture(scope="session")
def tiny_planner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight Qwen2.5-VL planner checkpoint (``restora zoo tiny-planner``), built
    once per test session (about 10-25 s here)."""
    from restora.model_zoo.tiny.planner import build_tiny_planner

    return build_tiny_planner(tmp_path_factory.mktemp("tiny-planner") / "planner", seed=0)


PLANNER_PHOTOS = ["101085.png", "101087.png", "102061.png", "103070.png", "105025.png", "106024.png", "108005.png", "108070.png",
                  "108082.png", "109053.png", "119082.png", "12084.png"]


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A real synth folder (every row from `restora synth`'s teacher search) of 12 training-pool
    photos at 48 px, 60 trajectories; made once per test session for the planner trainer tests."""
    from restora.synth.planner import run_synth

    clean = tmp_path_factory.mktemp("planner-clean")
    for name in PLANNER_PHOTOS:
        shutil.copy(data_dir / "clean" / "cbsd68" / name, clean / name)
    out = tmp_path_factory.mktemp("planner-synth") / "synth"
    run_synth([clean], out, n=60, size=48, workers=1)
    return out


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def headless_chromium():
    """(Playwright's ``sync_playwright``, Debian's chromium executable) for the browser tests: no
    downloaded browser. Without either the test skips, saying which is missing, or fails when
    ``RESTORA_REQUIRE_BROWSER=1`` (CI)."""
    why = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright, why = None, "Playwright for Python is not installed (pip install -e '.[dev]')"
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if why is None and exe is None:
        why = "Debian's chromium is not installed (apt-get install -y chromium)"
    if why is not None:
        if os.environ.get("RESTORA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RESTORA_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    return sync_playwright, exe
