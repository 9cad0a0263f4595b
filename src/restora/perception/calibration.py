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
    (1.122, -0.1827, -0.5719, -0.3669),
    (1.017, -1.082, -1.15, 1.216),
    (-0.2141, 1.121, -0.608, -0.2991),
    (-0.2446, -0.3377, 0.02231, 0.56),
    (-0.6951, -0.2416, 0.8385, 0.09827),
    (-1.339, 1.424, -0.6447, 0.5605),
    (-0.01479, 0.1439, -0.04428, -0.08486),
    (-0.5078, -0.6046, -0.5426, 1.655),
)
BLUR_BIAS = (7.194, -6.302, 1.008, -1.9)

# The same features for JPEG-compressed images (a quantisation comb was found): JPEG alone
# against blur followed by JPEG. Low resolution is judged by the plain model there.
BLUR_JPEG_CLASSES = ("none", "motion_blur", "defocus")
BLUR_JPEG_WEIGHTS = (
    (2.536, 0.5695, -3.106),
    (3.192, -0.9607, -2.231),
    (-0.5282, 0.1536, 0.3745),
    (-1.309, 1.961, -0.6513),
    (-0.3028, -0.02731, 0.3301),
    (-0.2404, 1.299, -1.059),
    (0.06069, 0.01048, -0.07117),
    (-0.8291, 0.5546, 0.2744),
)
BLUR_JPEG_BIAS = (6.955, -3.455, -3.5)

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
    "log_rain_energy": 0.9577,
    "log_rain_z": -0.04149,
    "rain_fraction": 80.06,
    "log_thin_lines": 1.368,
    "noise_sigma": -0.06785,
}
RAIN_BIAS = -8.048
