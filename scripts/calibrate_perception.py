"""Calibrate and check restora.perception on synthetic single degradations of clean photos.

For every clean photo (calibration set: a seeded draw of ``--pool-photos`` photos from the
training pool, clean/cbsd68 and clean/live1; held out: the benchmark's kodak24 and set5_hr, and
scikit-image's astronaut, coffee, chelsea, rocket), at center crops of 160 and 256 px and at full size, this computes
perception's raw measures on the clean image and on each single degradation from
restora.degrade at several severities. It then

* prints each measure's range on clean inputs and per degradation and severity,
* fits the blur-family model and the haze and rain scores on the calibration set
  (``--write`` stores them in src/restora/perception/calibration.py),
* prints, separately for the calibration and the held-out photos, the clean false-positive
  rate, the detection rate per degradation at severity >= 0.3, the confusion matrix (true
  degradation vs the most severe finding) and the severity trend,
* runs perceive on the real photos in real_nogt/ and real_gt/ and prints what it says.

Usage:
    python scripts/calibrate_perception.py                  # measure (cached), evaluate
    python scripts/calibrate_perception.py --fit --write    # refit the model constants
    python scripts/calibrate_perception.py --real-only      # just the real photos

Examples:
    RESTORA_DATA=../shared/data python scripts/calibrate_perception.py --workers 2
"""

from __future__ import annotations

import argparse
import pickle
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from _pool import draw, pool_photos, run_photos

from restora import degrade
from restora.data import data_dir, image_files
from restora.imageio import read_rgb
from restora.perception import calibration as cal
from restora.perception import decide as dec
from restora.perception import measure_all, perceive
from restora.taxonomy import Degradation

SEVERITIES = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
SIZES = (160, 256, 0)  # 0 = full image
DEGS = [d.value for d in Degradation]
SKIMAGE = ("astronaut", "coffee", "chelsea", "rocket")
BLUR_JPEG = [(d, s, q) for d in ("motion_blur", "defocus") for s in (0.3, 0.6, 0.9) for q in (0.3, 0.7)]
SHOW = {
    "noise": ["noise_sigma"],
    "jpeg": ["jpeg_quality", "blockiness"],
    "motion_blur": ["sharpness", "anisotropy", "cepstrum_peak", "cepstrum_peak_length"],
    "defocus": ["sharpness", "ring_strength", "ring_radius"],
    "low_res": ["sharpness", "resample_peak", "resample_freq"],
    "haze": ["black_level", "dark_channel_p10", "saturation"],
    "rain": ["rain_streak_energy", "rain_streak_z"],
    "dark": ["mean_luma", "luma_p99"],
}


HELD_OUT = ("kodak24", "set5_hr")


def photos(root: Path, n_pool: int) -> list[tuple[str, str, np.ndarray]]:
    """The calibration photos (a seeded draw from the training pool) and the held-out ones.

    Never calibrate on the benchmark's photos (kodak24, set5_hr): they are what the result is
    judged on."""
    out = [("calib", f"{p.parent.name}/{p.name}", read_rgb(p)) for p in draw(pool_photos(root), n_pool, 0)]
    out += [("heldout", f"{d}/{p.name}", read_rgb(p)) for d in HELD_OUT for p in image_files(root / "clean" / d)]
    from skimage import data as skdata

    for name in SKIMAGE:
        out.append(("heldout", name, getattr(skdata, name)().astype(np.float32) / 255.0))
    return out


def crop(img: np.ndarray, size: int) -> np.ndarray:
    if size <= 0:
        return img
    h, w = img.shape[:2]
    s = min(size, h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return np.ascontiguousarray(img[y : y + s, x : x + s])


def _job(args: tuple) -> list[dict]:
    split, name, img, size, seed = args
    base = crop(img, size)
    rows = [{"split": split, "img": name, "size": size, "deg": "clean", "sev": 0.0, **measure_all(base)}]
    for d in DEGS:
        for s in SEVERITIES:
            im, lab = degrade.apply_labeled(base, d, s, seed=seed)
            labels = {f"label_{k}": float(v) for k, v in lab.items() if isinstance(v, (int, float))}
            rows.append({"split": split, "img": name, "size": size, "deg": d, "sev": s, **labels, **measure_all(im)})
    # blur followed by JPEG (benchmark combinations): JPEG's quantisation fills the blur
    # kernel's spectral zeros, so the blur model also learns from these
    for d, s, q in BLUR_JPEG:
        im, _ = degrade.compose(base, f"{d}+jpeg", seed=seed, severities={d: s, "jpeg": q})
        rows.append({"split": split, "img": name, "size": size, "deg": f"{d}+jpeg", "sev": s, **measure_all(im)})
    return rows


def measure_dataset(root: Path, cache: Path, workers: int, pool_photos: int) -> list[dict]:
    if cache.exists():
        with cache.open("rb") as f:
            return pickle.load(f)
    jobs = [(sp, n, im, size, i) for i, (sp, n, im) in enumerate(photos(root, pool_photos)) for size in SIZES]
    rows = run_photos(_job, jobs, workers, unit="photo sizes measured")
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.open("wb") as f:
        pickle.dump(rows, f)
    return rows


# -- fitting ----------------------------------------------------------------------------------
def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu, sd = X.mean(0), X.std(0) + 1e-9
    return (X - mu) / sd, mu, sd


def fit_softmax(X: np.ndarray, y: np.ndarray, k: int, l2: float = 1e-2, iters: int = 4000) -> tuple:
    Z, mu, sd = _standardise(X)
    Z = np.c_[Z, np.ones(len(Z))]
    W = np.zeros((Z.shape[1], k))
    Y = np.eye(k)[y]
    for _ in range(iters):
        S = Z @ W
        S -= S.max(1, keepdims=True)
        P = np.exp(S)
        P /= P.sum(1, keepdims=True)
        G = Z.T @ (P - Y) / len(y)
        G[:-1] += l2 * W[:-1]
        W -= 0.5 * G
    A = W[:-1] / sd[:, None]
    return A, W[-1] - (mu[:, None] * A).sum(0)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 3000) -> tuple:
    A, B = fit_softmax(X, y.astype(int), 2, l2, iters)
    return A[:, 1] - A[:, 0], B[1] - B[0]


def fit_all(rows: list[dict]) -> dict:
    train = [r for r in rows if r["split"] == "calib"]
    # blur family: none vs motion vs defocus vs low_res (JPEG left out: its blocks are not blur)
    classes = list(cal.BLUR_CLASSES)

    def blur_class(r: dict) -> str:
        first = r["deg"].split("+")[0]
        return first if first in classes else "none"

    def fit_blur(rows_: list[dict], classes_: list[str]) -> tuple[np.ndarray, np.ndarray]:
        sel = [r for r in rows_ if not (blur_class(r) != "none" and r["sev"] < 0.2)]
        X = np.array([[dec.blur_features(r)[k] for k in cal.BLUR_FEATURES] for r in sel])
        y = np.array([classes_.index(blur_class(r)) for r in sel])
        return fit_softmax(X, y, len(classes_))

    # images without a JPEG quantisation comb: every degradation but JPEG
    plain = [r for r in train if "jpeg" not in r["deg"]]
    A, B = fit_blur(plain, classes)
    out = {"BLUR_WEIGHTS": A, "BLUR_BIAS": B}
    # JPEG-compressed images: JPEG alone ("none") against blur followed by JPEG
    jpeg_classes = list(cal.BLUR_JPEG_CLASSES)
    compressed = [r for r in train if r["deg"] in ("jpeg", *(f"{c}+jpeg" for c in jpeg_classes[1:]))]
    A, B = fit_blur(compressed, jpeg_classes)
    out.update({"BLUR_JPEG_WEIGHTS": A, "BLUR_JPEG_BIAS": B})
    for name, deg, feats, fn, sizes in (
        # haze is a scene-level cue: fitted on the 256 px crops and full images (a 160 px crop
        # is too small a view of a scene); rain streaks are local, every size counts
        ("HAZE", "haze", list(cal.HAZE_WEIGHTS), lambda r: r, (256, 0)),
        ("RAIN", "rain", list(cal.RAIN_WEIGHTS), dec.rain_features, SIZES),
    ):
        # severity 0.1 is left out as too faint to call
        sel = [r for r in train if r["size"] in sizes and not (r["deg"] == deg and r["sev"] < 0.2)]
        X = np.array([[fn(r)[k] for k in feats] for r in sel])
        y = np.array([r["deg"] == deg for r in sel])
        a, b = fit_logistic(X, y)
        # shift the bias, if needed, so that every clean calibration photo scores below -0.1
        clean = np.array([[fn(r)[k] for k in feats] for r in sel if r["deg"] == "clean"]) @ a + b
        b -= max(0.0, clean.max() + 0.1)
        out[f"{name}_WEIGHTS"] = dict(zip(feats, a))
        out[f"{name}_BIAS"] = b
    return out


def write_calibration(fit: dict, path: Path) -> None:
    text = path.read_text()
    head = text[: text.index("# Multinomial logistic model")]

    def tup(v) -> str:
        return "(" + ", ".join(f"{float(x):.4g}" for x in v) + ("," if len(v) == 1 else "") + ")"

    lines = [head.rstrip("\n"), ""]
    lines.append("# Multinomial logistic model over the blur family: logits = features @ BLUR_WEIGHTS + BLUR_BIAS,")
    lines.append("# classes BLUR_CLASSES, features BLUR_FEATURES (see decide.blur_features).")
    lines.append("BLUR_CLASSES = (" + ", ".join(f'"{k}"' for k in cal.BLUR_CLASSES) + ")")
    lines.append("BLUR_FEATURES = (\n" + "".join(f'    "{k}",\n' for k in cal.BLUR_FEATURES) + ")")
    lines.append("BLUR_WEIGHTS = (\n" + "".join(f"    {tup(row)},\n" for row in fit["BLUR_WEIGHTS"]) + ")")
    lines.append(f"BLUR_BIAS = {tup(fit['BLUR_BIAS'])}")
    lines.append("")
    lines.append("# The same features for JPEG-compressed images (a quantisation comb was found): JPEG alone")
    lines.append("# against blur followed by JPEG. Low resolution is judged by the plain model there.")
    lines.append("BLUR_JPEG_CLASSES = (" + ", ".join(f'"{k}"' for k in cal.BLUR_JPEG_CLASSES) + ")")
    lines.append("BLUR_JPEG_WEIGHTS = (\n" + "".join(f"    {tup(row)},\n" for row in fit["BLUR_JPEG_WEIGHTS"]) + ")")
    lines.append(f"BLUR_JPEG_BIAS = {tup(fit['BLUR_JPEG_BIAS'])}")
    lines.append("")
    lines.append("# Linear scores (present when > 0): sum(weight * feature) + bias.")
    for name in ("HAZE", "RAIN"):
        w = fit[f"{name}_WEIGHTS"]
        lines.append(f"{name}_WEIGHTS = {{\n" + "".join(f'    "{k}": {float(v):.4g},\n' for k, v in w.items()) + "}")
        lines.append(f"{name}_BIAS = {float(fit[name + '_BIAS']):.4g}")
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


# -- evaluation --------------------------------------------------------------------------------
def verdict(r: dict) -> tuple[str, list[str], dict]:
    findings = dec.decide(r)
    present = sorted((f for f in findings.values() if f.present), key=lambda f: -f.severity)
    top = present[0].degradation.value if present else "clean"
    return top, [f.degradation.value for f in present], findings


def evaluate(rows: list[dict], split: str, sizes: tuple[int, ...] = SIZES) -> None:
    sel = [r for r in rows if r["split"] == split and r["size"] in sizes and r["deg"] in ("clean", *DEGS)]
    print(f"\n=== {split} photos, sizes {sizes} ===")
    clean = [r for r in sel if r["deg"] == "clean"]
    fp = [(r["img"], r["size"], verdict(r)[1]) for r in clean if verdict(r)[1]]
    print(f"clean photos read clean: {len(clean) - len(fp)}/{len(clean)}  (false positives: {fp})")
    labels = ["clean", *DEGS]
    conf: dict[str, Counter] = defaultdict(Counter)
    found: dict[str, list[bool]] = defaultdict(list)
    sev_trend: dict[tuple[str, float], list[float]] = defaultdict(list)
    for r in sel:
        top, present, findings = verdict(r)
        if r["deg"] != "clean":
            sev_trend[(r["deg"], r["sev"])].append(findings[r["deg"]].severity)
        if r["deg"] != "clean" and r["sev"] < 0.3:
            continue
        conf[r["deg"]][top] += 1
        if r["deg"] != "clean":
            found[r["deg"]].append(r["deg"] in present)
    print("detection at severity >= 0.3 (present with the right type):")
    for d in DEGS:
        v = found[d]
        print(f"  {d:12s} {sum(v):4d}/{len(v):<4d} = {100 * sum(v) / max(len(v), 1):5.1f} %")
    print("confusion (rows: truth, severity >= 0.3; columns: most severe finding):")
    print(" " * 13 + "".join(f"{c[:7]:>8s}" for c in labels))
    for d in labels:
        print(f"  {d:11s}" + "".join(f"{conf[d][c]:8d}" for c in labels))
    print("mean reported severity by true severity:")
    print(" " * 13 + "".join(f"{s:>7.1f}" for s in SEVERITIES))
    for d in DEGS:
        vals = [np.mean(sev_trend[(d, s)]) if sev_trend[(d, s)] else float("nan") for s in SEVERITIES]
        print(f"  {d:11s}" + "".join(f"{v:7.2f}" for v in vals))


def print_measures(rows: list[dict], split: str) -> None:
    sel = [r for r in rows if r["split"] == split and r["size"] == 256]
    print(f"\n=== measures, {split} photos, 256 px crops: min / median / max ===")
    for d, keys in SHOW.items():
        for k in keys:
            line = f"{d:11s} {k:22s}"
            for deg, sev in (("clean", 0.0), (d, 0.2), (d, 0.5), (d, 0.9)):
                v = np.array([r[k] for r in sel if r["deg"] == deg and r["sev"] == sev])
                line += f" | {deg[:5]} {sev:.1f}: {v.min():7.2f} {np.median(v):7.2f} {v.max():7.2f}"
            print(line)


def real_photos(root: Path) -> None:
    print("\n=== real photos ===")
    groups = [
        ("real_nogt/lowlight_dicm", "dark"),
        ("real_nogt/haze", "haze"),
        ("real_nogt/rain", "rain"),
        ("real_nogt/jpeg", "jpeg"),
        ("real_nogt/blur", "motion_blur/defocus"),
        ("real_nogt/real47", "mixed"),
        ("real_gt/polyu/noisy", "noise"),
        ("real_gt/polyu/gt", "clean"),
        ("real_gt/cc_nam/noisy", "noise"),
        ("real_gt/cc_nam/gt", "clean"),
        ("real_gt/rain100l/input", "rain"),
        ("real_gt/rain100l/target", "clean"),
        ("real_gt/sots_outdoor/hazy", "haze"),
        ("real_gt/sots_outdoor/gt", "clean"),
        ("real_gt/levin/blurred", "motion_blur"),
        ("real_gt/levin/gt", "clean"),
    ]
    for folder, expect in groups:
        files = [p for p in image_files(root / folder) if not p.name.startswith("kernel")]
        tally: Counter = Counter()
        lines = []
        for p in files:
            img = read_rgb(p)
            if min(img.shape[:2]) < 32:
                continue
            rep = perceive(img)
            tops = [f.degradation.value for f in rep.present()]
            tally[tops[0] if tops else "clean"] += 1
            lines.append(f"    {p.name:38s} {rep.summary()}")
        print(f"{folder} (expected {expect}): most severe = {dict(tally)}")
        if len(files) <= 12:
            print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default: RESTORA_DATA)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/restora_perception_calibration_pool.pkl"))
    ap.add_argument("--refresh", action="store_true", help="re-measure even if the cache exists")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pool-photos", type=int, default=40, help="calibration photos drawn from the training pool (cbsd68 + live1)")
    ap.add_argument("--fit", action="store_true", help="refit the model constants")
    ap.add_argument("--write", action="store_true", help="with --fit: write calibration.py")
    ap.add_argument("--real-only", action="store_true")
    args = ap.parse_args()
    root = args.data or data_dir()
    if not args.real_only:
        if args.refresh and args.cache.exists():
            args.cache.unlink()
        rows = measure_dataset(root, args.cache, args.workers, args.pool_photos)
        if args.fit:
            fit = fit_all(rows)
            for k, v in fit.items():
                print(k, np.round(v, 3) if not isinstance(v, dict) else {a: round(float(b), 3) for a, b in v.items()})
            if args.write:
                write_calibration(fit, Path(cal.__file__))
                print("re-run without --fit to evaluate the new constants")
                return
        print_measures(rows, "calib")
        for split in ("calib", "heldout"):
            evaluate(rows, split)
        evaluate(rows, "heldout", (256, 0))
    real_photos(root)


if __name__ == "__main__":
    main()
