"""Calibrated constants for :mod:`restora.perception.decide`.

Written by ``scripts/calibrate_perception.py --write`` from synthetic single degradations
(:mod:`restora.degrade`) of the kodak24 photos (center crops of 160 and 256 px and the full
500 px images); set5_hr and scikit-image's photos are held out to check it. Edit by re-running
the script, not by hand (hand-set thresholds are in :mod:`.decide`).
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
    (1.125, -0.1851, -0.5712, -0.369),
    (1.013, -1.077, -1.15, 1.214),
    (-0.2335, 1.132, -0.6053, -0.2935),
    (-0.2544, -0.3345, 0.02755, 0.5614),
    (-0.6932, -0.2414, 0.8369, 0.09779),
    (-1.324, 1.415, -0.6487, 0.5575),
    (-0.01465, 0.1441, -0.0444, -0.08507),
    (-0.5076, -0.6042, -0.5426, 1.654),
)
BLUR_BIAS = (7.176, -6.295, 1.02, -1.901)

# The same features for JPEG-compressed images (a quantisation comb was found): JPEG alone
# against blur followed by JPEG. Low resolution is judged by the plain model there.
BLUR_JPEG_CLASSES = ("none", "motion_blur", "defocus")
BLUR_JPEG_WEIGHTS = (
    (2.536, 0.5694, -3.106),
    (3.192, -0.9607, -2.231),
    (-0.5286, 0.1532, 0.3754),
    (-1.309, 1.961, -0.6514),
    (-0.3031, -0.02724, 0.3303),
    (-0.2401, 1.299, -1.058),
    (0.06081, 0.01052, -0.07133),
    (-0.8288, 0.5546, 0.2741),
)
BLUR_JPEG_BIAS = (6.953, -3.453, -3.5)

# Linear scores (present when > 0): sum(weight * feature) + bias.
HAZE_WEIGHTS = {
    "black_level": 13.18,
    "dark_channel_p10": 8.827,
    "dark_channel_median": 5.759,
    "saturation": -1.431,
    "contrast": -4.696,
}
HAZE_BIAS = -9.13
RAIN_WEIGHTS = {
    "log_rain_energy": 0.9665,
    "log_rain_z": -0.04038,
    "rain_fraction": 77.22,
    "log_thin_lines": 1.394,
    "noise_sigma": -0.08317,
}
RAIN_BIAS = -7.686
