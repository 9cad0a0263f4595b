"""Calibrated constants for :mod:`restora.perception.decide`.

Written by ``scripts/calibrate_perception.py --fit --write`` from synthetic single degradations
(:mod:`restora.degrade`) of 40 photos drawn (seeded) from the training pool, clean/cbsd68 and
clean/live1 (center crops of 160 and 256 px and the full photos). The benchmark's kodak24 and
set5_hr and scikit-image's photos are held out to check it: never calibrate on them. Edit by
re-running the script, not by hand (hand-set thresholds are in :mod:`.decide`).
"""

# Multinomial logistic model over the blur family: logits = features @ BLUR_WEIGHTS + BLUR_BIAS,
# classes BLUR_CLASSES, features BLUR_FEATURES (see decide.blur_features).
BLUR_CLASSES = ("none", "motion_blur", "defocus", "low_res")
BLUR_FEATURES = (
    "sharpness",
    "sharpness_mid",
    "sharpness_spread",
    "anisotropy",
    "log_ring",
    "log_cepstrum_peak",
    "cepstrum_harmonic",
    "log_resample_peak",
)
BLUR_WEIGHTS = (
    (1.052, -0.14, -0.4845, -0.4271),
    (0.7844, -0.8766, -0.9789, 1.071),
    (-0.3106, 1.53, -0.8444, -0.3747),
    (0.01788, -0.4857, 0.2037, 0.2641),
    (-0.7679, -0.1688, 0.8637, 0.07308),
    (-1.269, 1.245, -0.5601, 0.5849),
    (-0.06727, 0.1623, -0.03733, -0.05767),
    (-0.2428, -0.6819, -0.558, 1.483),
)
BLUR_BIAS = (6.755, -6.024, 1.143, -1.874)

# The same features for JPEG-compressed images (a quantisation comb was found): JPEG alone
# against blur followed by JPEG. Low resolution is judged by the plain model there.
BLUR_JPEG_CLASSES = ("none", "motion_blur", "defocus")
BLUR_JPEG_WEIGHTS = (
    (2.062, 0.3673, -2.429),
    (2.37, -0.8491, -1.521),
    (-1.458, 0.9344, 0.5238),
    (-0.3954, 1.333, -0.9373),
    (-0.1001, -0.1831, 0.2832),
    (-0.8407, 1.652, -0.8112),
    (0.02089, -0.04448, 0.02359),
    (-0.6343, 0.3734, 0.2609),
)
BLUR_JPEG_BIAS = (8.14, -5.252, -2.888)

# Linear scores (present when > 0): sum(weight * feature) + bias.
HAZE_WEIGHTS = {
    "black_level": 11.59,
    "dark_channel_p10": 9.129,
    "dark_channel_median": 4.367,
    "saturation": -6.56,
    "contrast": -2.001,
}
HAZE_BIAS = -7.95
RAIN_WEIGHTS = {
    "log_rain_energy": 0.891,
    "log_rain_z": 0.2372,
    "rain_fraction": 100.3,
    "log_thin_lines": 1.231,
    "noise_sigma": -0.07499,
}
RAIN_BIAS = -8.135
