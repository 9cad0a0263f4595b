"""From raw measures to findings: thresholds, scores, severities and evidence.

Hand-set thresholds are the module constants below (with the reason for each); fitted weights
come from :mod:`.calibration`. Severity is put on the same scale as :mod:`restora.degrade`
wherever a physical parameter can be estimated (noise sigma, JPEG quality, blur length, disc
radius, resampling factor), so 0.5 here means about what ``degrade.apply(..., 0.5)`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from restora.perception import calibration as cal
from restora.perception.report import Finding
from restora.taxonomy import Degradation

# noise: clean photos read 0.5-4.7 (film grain, sensor noise under a camera's JPEG); the
# synthetic minimum is sigma 5
NOISE_PRESENT_SIGMA = 5.5
# after JPEG (no synthetic noise: fine-scale estimate up to ~4.6; coarse-scale up to ~15, and
# 17.6 on one very textured 160 px crop)
NOISE_JPEG_SIGMA = 5.5
NOISE_JPEG_COARSE = 17.0
# JPEG: quality from the quantisation comb; 75 and above is the usual "good" setting of cameras
# and web sites and shows no visible artefacts. Without a comb (resized after compression),
# strong 8x8 blockiness alone counts.
JPEG_PRESENT_QUALITY = 72.0
JPEG_BLOCKINESS_ALONE = 1.45
# blur family: present when the best blur class beats "none" by this many logits; with JPEG
# (the JPEG model: quantisation also softens) by more, so JPEG alone does not read as blur
BLUR_MARGIN = 1.0
BLUR_JPEG_MARGIN = 2.5
# ... the JPEG model is for the strong JPEG it was fitted on (quality 15-60); milder JPEG, such
# as a camera's quality 75-95, leaves the blur signatures and gets the plain model
BLUR_JPEG_QUALITY = 62.0
# a second blur type (e.g. motion + low_res) is also reported when it beats "none" by this much
# and comes within BLUR_SECOND_GAP logits of the best one
BLUR_SECOND_MARGIN = 3.0
BLUR_SECOND_GAP = 1.0
# noise hides blur: above this sigma the spectral measures are noise-limited
BLUR_NOISE_LIMIT = 30.0
# dark: dim everywhere (mean and highlights), or very dim on average
DARK_MEAN = 0.26
DARK_P99 = 0.55
DARK_MEAN_ALONE = 0.16
# haze: below this luma contrast the score must clear (contrast deficit x slope)
HAZE_LOW_CONTRAST = 0.08
HAZE_LOW_CONTRAST_SLOPE = 60.0
# haze, second rule: saturation below this (but above grey-scale) with a bright dark channel
HAZE_SATURATION = 0.11
HAZE_GREY_SATURATION = 0.02
HAZE_DARK_CHANNEL = 0.45
# blur lifts the black level (haze cue) and motion blur near the rain angle draws streaks: in
# those cases the haze / rain scores must clear these margins instead of 0
HAZE_MARGIN_IF_BLURRED = 1.5
HAZE_MARGIN_IF_RAIN = 1.0
RAIN_MARGIN_IF_MOTION = 3.0
# every present finding gets at least this severity, so "present" never reads as 0
MIN_SEVERITY = 0.05


def decide(m: Mapping[str, float]) -> dict[str, Finding]:
    """Findings for every degradation from the raw measures ``m`` (see :func:`measure_all`).

    Examples:
        >>> from restora.perception import measure_all            # doctest: +SKIP
        >>> findings = decide(measure_all(image))                  # doctest: +SKIP
        >>> findings["noise"].present, findings["noise"].evidence["noise_sigma"]   # doctest: +SKIP
        (True, 24.8)
    """
    out = _blur(m)
    motion = out[Degradation.MOTION_BLUR]
    blurred = any(f.present for f in out.values())
    # motion blur along the rain direction draws bright lines too
    streaky = motion.present and abs((m["rain_angle"] - motion.evidence["blur_angle"] + 90) % 180 - 90) < 20
    rain = _rain(m, margin=RAIN_MARGIN_IF_MOTION if streaky else 0.0)
    # blur and rain streaks both lift the black level, the main haze cue
    haze_margin = (HAZE_MARGIN_IF_BLURRED if blurred else 0.0) + (HAZE_MARGIN_IF_RAIN if rain.present else 0.0)
    out.update(
        {
            Degradation.NOISE: _noise(m),
            Degradation.JPEG: _jpeg(m),
            Degradation.DARK: _dark(m),
            Degradation.HAZE: _haze(m, margin=haze_margin),
            Degradation.RAIN: rain,
        }
    )
    return {d.value: out[d] for d in Degradation}


def _finding(d: Degradation, present: bool, severity: float, evidence: Mapping[str, float]) -> Finding:
    sev = float(np.clip(severity, 0.0, 1.0))
    if present:
        sev = max(sev, MIN_SEVERITY)
    ev = {k: round(float(v), 4) for k, v in evidence.items() if v is not None and math.isfinite(float(v))}
    return Finding(degradation=d, present=bool(present), severity=round(sev, 4), evidence=ev)


def _noise(m: Mapping[str, float]) -> Finding:
    sigma = m["noise_sigma"]
    coarse = m["noise_sigma_coarse"]
    present = sigma >= NOISE_PRESENT_SIGMA
    level = sigma
    if m["jpeg_quality"] < 100:
        # JPEG quantisation strips the fine-scale noise and leaves blotches: judge by the
        # coarse-scale estimate too (JPEG alone reads up to ~15-17 there on textured photos)
        present = sigma >= NOISE_JPEG_SIGMA or coarse >= NOISE_JPEG_COARSE
        level = max(sigma, coarse / 1.5)
    ev = {k: m[k] for k in ("noise_sigma", "noise_sigma_coarse", "noise_sigma_r", "noise_sigma_g", "noise_sigma_b")}
    if "noise_sigma_lowres" in m:
        # upscaled: the noise that is left sits at the scale of the small image
        ev["noise_sigma_lowres"] = m["noise_sigma_lowres"]
        if m["noise_sigma_lowres"] >= NOISE_PRESENT_SIGMA:
            present = True
            level = max(level, m["noise_sigma_lowres"])
    sev = (level - 5.0) / 42.0  # degrade's scale (5 .. 50); clipping makes sigma 50 read ~46
    return _finding(Degradation.NOISE, present, sev, ev)


def _jpeg(m: Mapping[str, float]) -> Finding:
    q = m["jpeg_quality"]
    b = m["blockiness"]
    if q < 100:
        present = q <= JPEG_PRESENT_QUALITY
        sev = (62.0 - q) / 52.0  # degrade's scale: q 60 -> 0.04, 35 -> 0.52, 10 -> 1
    else:
        present = b >= JPEG_BLOCKINESS_ALONE
        sev = (b - 1.2) / 1.5
        if present:  # no comb: a rough quality from how blocky it looks
            q = float(np.clip(75.0 - 40.0 * (b - 1.2), 5.0, 75.0))
    ev = {"jpeg_quality": q, "blockiness": b, "jpeg_comb": m["jpeg_comb"]}
    return _finding(Degradation.JPEG, present, sev, ev)


def _dark(m: Mapping[str, float]) -> Finding:
    mean, p99 = m["mean_luma"], m["luma_p99"]
    present = (mean < DARK_MEAN and p99 < DARK_P99) or mean < DARK_MEAN_ALONE
    # degrade's scale: geometric-mean luma 0.14 at severity 0.1, 0.03 at 0.9
    sev = math.log2(0.171 / max(m["log_mean_luma"], 1e-3)) / 2.8 if present else 0.0
    ev = {k: m[k] for k in ("mean_luma", "log_mean_luma", "luma_p01", "luma_p50", "luma_p95", "luma_p99")}
    return _finding(Degradation.DARK, present, sev, ev)


def _haze(m: Mapping[str, float], margin: float = 0.0) -> Finding:
    score = sum(w * m[k] for k, w in cal.HAZE_WEIGHTS.items()) + cal.HAZE_BIAS
    # washed out: almost no colour left and a bright dark channel (real haze is greyer than the
    # synthetic one); a grey-scale photo has no colour to lose, so it needs the score
    washed_out = (
        HAZE_GREY_SATURATION < m["saturation"] < HAZE_SATURATION
        and m["dark_channel_median"] > HAZE_DARK_CHANNEL
        and m["contrast"] < 0.25
    )
    # a plain low-contrast surface (a sail, a wall) has lifted blacks without any haze: the less
    # contrast there is to judge by, the stronger the score must be
    margin += max(0.0, (HAZE_LOW_CONTRAST - m["contrast"]) * HAZE_LOW_CONTRAST_SLOPE)
    # (a uniform frame has nothing to judge by at all)
    present = (score > margin or washed_out) and m["mean_luma"] > 0.2 and m["contrast"] > 0.02
    sev = (m["black_level"] - 0.227) / 0.333  # degrade's scale: 0.26 at 0.1, 0.53 at 0.9
    if washed_out:
        sev = max(sev, (m["dark_channel_median"] - 0.35) / 0.5)
    ev = {
        k: m[k]
        for k in ("black_level", "dark_channel_p10", "dark_channel_median", "saturation", "contrast", "airlight")
    }
    ev["haze_score"] = score
    return _finding(Degradation.HAZE, present, sev, ev)


def rain_features(m: Mapping[str, float]) -> dict[str, float]:
    """The inputs of the rain score, derived from the raw measures."""
    return {
        "log_rain_energy": math.log(max(m["rain_streak_energy"], 0.02)),
        "log_rain_z": math.log(max(m["rain_streak_z"], 0.1)),
        "rain_fraction": m["rain_streak_energy"] / max(m["thin_line_energy"], 1e-6),
        "log_thin_lines": math.log(max(m["thin_line_energy"], 1.0)),
        "noise_sigma": m["noise_sigma"],
    }


def _rain(m: Mapping[str, float], margin: float = 0.0) -> Finding:
    f = rain_features(m)
    score = sum(w * f[k] for k, w in cal.RAIN_WEIGHTS.items()) + cal.RAIN_BIAS
    if "rain_streak_energy_lowres" in m:  # upscaled: streaks are thin at the small scale
        lr = {k: m[f"{k}_lowres"] for k in ("rain_streak_energy", "rain_streak_z", "thin_line_energy")}
        flr = rain_features({**lr, "noise_sigma": m.get("noise_sigma_lowres", m["noise_sigma"])})
        score_lr = sum(w * flr[k] for k, w in cal.RAIN_WEIGHTS.items()) + cal.RAIN_BIAS
        if score_lr > score:
            score, m = score_lr, {**m, **lr, "rain_angle": m["rain_angle_lowres"]}
    sev = (m["rain_streak_energy"] + 0.3) / 8.0  # degrade's scale: 0.54 at 0.1, 6.5 at 0.9
    ev = {k: m[k] for k in ("rain_streak_energy", "rain_streak_z", "rain_angle", "thin_line_energy")}
    ev["rain_score"] = score
    return _finding(Degradation.RAIN, score > margin, sev, ev)


def blur_features(m: Mapping[str, float]) -> dict[str, float]:
    """The inputs of the blur-family model, derived from the raw measures.

    Examples:
        >>> sorted(blur_features(measures))[:2]    # doctest: +SKIP
        ['anisotropy', 'cepstrum_harmonic']
    """
    return {
        "sharpness": m["sharpness"],
        "sharpness_mid": m["sharpness_mid"],
        "sharpness_spread": m["sharpness_max"] - m["sharpness_min"],
        "anisotropy": m["anisotropy"],
        "log_ring": math.log(max(m["ring_strength"], 0.05)),
        "log_cepstrum_peak": math.log(max(m["cepstrum_peak"], 1.0)),
        "cepstrum_harmonic": float(np.clip(m["cepstrum_peak_harmonic"], -5.0, 15.0)),
        "log_resample_peak": math.log(max(m["resample_peak"], 1e-3)),
    }


def blur_logits(m: Mapping[str, float]) -> dict[str, float]:
    """Logits of the blur-family model (``none``, ``motion_blur``, ``defocus``, ``low_res``).

    Strongly JPEG-compressed images (quality below BLUR_JPEG_QUALITY) get the JPEG model for
    motion blur and defocus: quantisation fills the blur kernels' spectral zeros like noise does.
    """
    f = blur_features(m)
    x = np.array([f[k] for k in cal.BLUR_FEATURES])
    z = x @ np.array(cal.BLUR_WEIGHTS) + np.array(cal.BLUR_BIAS)
    out = dict(zip(cal.BLUR_CLASSES, (float(v) for v in z), strict=True))
    if m["jpeg_quality"] < BLUR_JPEG_QUALITY:
        zj = x @ np.array(cal.BLUR_JPEG_WEIGHTS) + np.array(cal.BLUR_JPEG_BIAS)
        zj = dict(zip(cal.BLUR_JPEG_CLASSES, (float(v) for v in zj), strict=True))
        # keep the plain model's low_res margin, take the JPEG model's for the others
        out = {
            "none": zj["none"],
            **{k: zj[k] for k in cal.BLUR_JPEG_CLASSES[1:]},
            "low_res": zj["none"] + out["low_res"] - out["none"],
        }
    return out


def _blur(m: Mapping[str, float]) -> dict[Degradation, Finding]:
    z = blur_logits(m)
    margins = {k: z[k] - z["none"] for k in ("motion_blur", "defocus", "low_res")}
    best = max(margins, key=lambda k: margins[k])
    noisy = m["noise_sigma"] > BLUR_NOISE_LIMIT
    # a second blur type must also show its own signature, not just a blurry spectrum
    signature = {
        "motion_blur": m["cepstrum_peak"] >= 18.0 and m["cepstrum_peak_harmonic"] >= 1.0,
        "defocus": m["ring_strength"] >= 3.0,
        "low_res": m["resample_peak"] >= 5.0,
    }
    margin = BLUR_JPEG_MARGIN if m["jpeg_quality"] < BLUR_JPEG_QUALITY else BLUR_MARGIN
    present = {
        k: (not noisy)
        and (
            (k == best and v > margin)
            or (v > BLUR_SECOND_MARGIN and v >= margins[best] - BLUR_SECOND_GAP and signature[k])
        )
        for k, v in margins.items()
    }
    common = {"sharpness": m["sharpness"], "sharpness_mid": m["sharpness_mid"]}

    # kernel size from the cepstrum where its signature is clear; JPEG and noise fill the
    # kernel's spectral zeros, and then only a rough guess from the spectrum is left
    from_cepstrum = m["cepstrum_peak"] >= 15.0
    if from_cepstrum:
        length = m["cepstrum_peak_length"] / 0.92  # the cepstral peak sits at ~0.92 L
        angle = m["cepstrum_peak_angle"]
    else:
        length, angle = 9.0, m["sharpness_min_angle"]
    motion_ev = {
        **common,
        "blur_length": length,
        "blur_angle": angle,
        "anisotropy": m["anisotropy"],
        "cepstrum_peak": m["cepstrum_peak"],
        "blur_length_from_cepstrum": float(from_cepstrum),
        "blur_score": margins["motion_blur"],
    }
    from_ring = m["ring_strength"] >= 3.0
    if from_ring:
        radius = m["ring_radius"] / 1.9  # a disc of radius r rings the cepstrum at ~1.9 r
    else:  # least squares on the calibration photos, rmse ~0.6 px
        radius = float(np.clip(0.9 - 1.85 * m["sharpness_mid"], 1.0, 8.0))
    defocus_ev = {
        **common,
        "defocus_radius": radius,
        "ring_strength": m["ring_strength"],
        "defocus_radius_from_ring": float(from_ring),
        "blur_score": margins["defocus"],
    }
    factor = lowres_factor(m)
    lowres_ev = {
        **common,
        "lowres_factor": factor,
        "resample_peak": m["resample_peak"],
        "resample_freq": m["resample_freq"],
        "blur_score": margins["low_res"],
    }
    sev = {
        "motion_blur": (length - 5.0) / 20.0,
        "defocus": (radius - 1.5) / 4.5,
        "low_res": (factor - 1.5) / 2.5,
    }
    # a second blur type is the less certain call: never rank it above the best one
    top = float(np.clip(sev[best], MIN_SEVERITY, 1.0))
    sev = {k: v if k == best else min(v, 0.9 * top) for k, v in sev.items()}
    return {
        Degradation.MOTION_BLUR: _finding(Degradation.MOTION_BLUR, present["motion_blur"], sev["motion_blur"], motion_ev),
        Degradation.DEFOCUS: _finding(Degradation.DEFOCUS, present["defocus"], sev["defocus"], defocus_ev),
        Degradation.LOW_RES: _finding(Degradation.LOW_RES, present["low_res"], sev["low_res"], lowres_ev),
    }


def lowres_factor(m: Mapping[str, float]) -> float:
    """Upsampling factor from the interpolation period (1 when no periodicity stands out).

    A factor f puts the peak at 1/f cycles/px for f >= 2 and, aliased, at 1 - 1/f below 2; the
    spectral sharpness tells the two apart (an image upscaled by less than 2 keeps energy in the
    high band).
    """
    p = m["resample_freq"]
    if m["resample_peak"] < 3.0 or p <= 0:
        # no interpolation period: guess from how much of the high band is gone
        return float(np.clip(0.7 - 0.95 * m["sharpness"], 1.0, 6.0))
    above_two = 1.0 / p
    below_two = 1.0 / max(1.0 - p, 1e-3)
    return float(below_two if m["sharpness"] > -1.0 and below_two >= 1.2 else above_two)
