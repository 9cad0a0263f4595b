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
    "jpeg_strength",
)
BLUR_WEIGHTS = (
    (1.541, 0.2281, -1.212, -0.557),
    (1.746, -1.087, -1.807, 1.149),
    (-0.1026, 0.5665, -0.3009, -0.1631),
    (-0.9214, 0.9648, -0.2772, 0.2338),
    (-0.5724, -0.2033, 0.5842, 0.1914),
    (-1.094, 1.535, -0.9494, 0.5079),
    (0.02995, 0.05628, -0.04489, -0.04135),
    (-1.01, 0.02889, -0.4974, 1.478),
    (-1.157, 1.723, 2.746, -3.312),
)
BLUR_BIAS = (7.541, -5.321, -0.01302, -2.207)

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
