"""Learned perception: a compact network trained by ``restora train perception`` on degradations
restora synthesizes, read as a :class:`~restora.perception.DegradationReport`.

The network (a torchvision architecture) gives, per degradation, a presence logit and a severity,
plus the measures tools need (noise sigma, JPEG quality, motion-blur length, defocus radius,
low-res factor). It looks at crops at native resolution, never a downscale (which hides noise
and blocking): a large image is read in up to ``max_crops`` crops spread over it, and their
outputs are averaged (presence logits and severities; the median for measures). A finding is
present when its probability reaches the threshold calibrated on the validation split of the
training run (in ``model.json``).

The classical estimators still run: their measurements stay the evidence tools read (the
learned measures are added as ``learned_*`` and fill in what the classical ones lack; for noise,
tools get the larger of the two sigmas, as the white-noise estimate misses in-camera noise), the
whole frame's tone (:data:`WHOLE_IMAGE`: dark, haze) is decided by them (dark only where the
network agrees: :data:`BOTH_READINGS`), what they read strongly
and the network misses is added (:data:`CLASSICAL_ALONE`: JPEG, upscaling), and the
report page shows both.

A dim picture's noise is read as a person sees it, brightened (``view_noise``; on by
default, :data:`VIEW_NOISE`): where the picture's :func:`~restora.perception.measures.view_gain`
is above 1, the network reads the crops a second time through
:func:`~restora.perception.measures.to_view`, and the noise finding is that reading's (its sigma back in the picture's units, divided by the view's slope at
the picture's median; the reading as it is stays in the evidence as ``unviewed_probability``). The
noise of a dim high-ISO photo is a few grey levels, which the network, taught on normally exposed
pictures, reads as clean (p 0.03 on a polyu chair shot whose noise SRMD takes out for +2.5 dB; 0.54
viewed). What this does at the network's threshold on synthesized dim pictures, with and without
noise: ``python scripts/view_noise.py`` (README, "Dim pictures viewed brightened").

Examples:
    >>> from restora.perception.learned import LearnedPerception
    >>> perceive = LearnedPerception.load("out/perception")          # doctest: +SKIP
    >>> report = perceive(image)                                      # doctest: +SKIP
    >>> report.findings["noise"].evidence["probability"]             # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from restora.errors import RestoraError
from restora.perception.measures import LUMA, to_view, view_gain, view_slope
from restora.perception.report import DegradationReport, Finding
from restora.taxonomy import Degradation

DEGRADATIONS: tuple[str, ...] = tuple(d.value for d in Degradation)
"""The presence/severity outputs, in order."""

MEASURES: dict[str, tuple[str, str, float, float]] = {
    # name: (degradation, label key, low, high) -- regressed as (value - low) / (high - low)
    "noise_sigma": ("noise", "sigma", 0.0, 60.0),
    "jpeg_quality": ("jpeg", "quality", 0.0, 100.0),
    "blur_length": ("motion_blur", "length", 0.0, 30.0),
    "defocus_radius": ("defocus", "radius", 0.0, 8.0),
    "lowres_factor": ("low_res", "factor", 1.0, 4.0),
}
"""What tools need, learned where the degradation is present (native units after decoding)."""


N_OUT = 2 * len(DEGRADATIONS) + len(MEASURES)

VIEW_NOISE = True
"""Whether a dim picture's noise is read viewed brightened (module docstring) unless the caller or
the run's ``model.json`` says otherwise. On since 2026-12-07, with the denoise guard's family for
dim pictures (``denoise@dim`` in :mod:`restora.quality.guard`'s file) and the agent's rule that a
dim picture denoised on the guard's vouch stays dim (:func:`restora.agent.nodes.vouch_withheld`):
README, "Dim pictures viewed brightened"."""

WHOLE_IMAGE: tuple[str, ...] = ("dark", "haze")
"""Degradations of the whole frame's tone, decided by the classical whole-image estimators when
they run: a native-resolution crop cannot tell an under-exposed photo from the shadows of a dim
but well-exposed room (the network read a third of real indoor camera photos as dark, and the
brightening that followed cost 6-8 dB), nor a hazy scene from a pale wall. The network's reading
stays in the evidence (``learned_probability``)."""

EITHER_READING: dict[str, float] = {"haze": 0.71}
"""Of :data:`WHOLE_IMAGE`, those also found when the network alone finds them, at a stricter
threshold than its own: haze. The classical haze score misses synthetic haze over dark or colourful
scenes, which the network finds. The threshold is the lowest at which the network alone adds at
most 1% false alarms to the classical reading on the shipped network's synthesized validation
split (``python scripts/readings.py --n 3000``: recall 0.65 -> 0.81, false alarms 0.067 -> 0.075;
at the network's own threshold, 0.47, it added 3.1%, and read a soft, clean kodak crop as hazy).
The false alarms it adds barely change between 0.71 and 0.86 (1.1% and 1.0% on 1500 samples,
which put it at 0.86), so the estimate needs the 3000. Rerun for the network retrained with
starry-sky negatives (3000 samples): 0.69 (recall 0.64 -> 0.81, false alarms 0.065 -> 0.075), kept
at 0.71. The measures tools read stay the classical
ones (the severity is the network's when only it found the haze, marked ``found_by_network``).
Dark is never found by the network alone (above), and needs its agreement
(:data:`BOTH_READINGS`). The value is the shipped network's; another run's ``model.json`` may
carry its own ``either_reading`` (the script takes the model to read)."""

BOTH_READINGS: tuple[str, ...] = ("dark",)
"""Of :data:`WHOLE_IMAGE`, those found only when the network agrees with the classical estimators
(at its own calibrated threshold): dark. A night sky is as dim as an under-exposed photo by the
whole-image statistics (scikit-image's ``hubble_deep_field``: mean luma 0.08, 99th percentile
0.43; brightened, it ends 8-18 dB below its input in ``bench mio``). The network reads that photo
as not dark (0.18) and the dark photos of ``real_nogt/lowlight_dicm`` as dark (0.98-1.00). On the
shipped network's synthesized validation split (``python scripts/readings.py --n 3000``) requiring
both keeps 481 of the classical reading's 488 dark samples and drops 51 of its 79 false alarms
(recall / false alarms 0.900 / 0.032 -> 0.887 / 0.011). It does not settle the night sky: the
network reads most degraded crops of it as dark too. Another run's ``model.json`` may carry its
own ``both_readings``."""

CLASSICAL_ALONE: dict[str, float] = {"jpeg": 0.22, "low_res": 0.06}
"""Of the findings the network decides, those also found when the classical estimators alone find
them with at least this severity. The network misses much of what they read reliably: strong JPEG
under noise (the quantisation comb), upscaled photos. Each value is the loosest at which the
classical reading alone adds at most 1% false alarms to the network's on the shipped network's
synthesized validation split, kept where it adds at least 3 points of recall
(``python scripts/readings.py --n 3000``). Recall / false alarms, network -> either: jpeg
0.51 / 0.042 -> 0.74 / 0.051, low_res 0.28 / 0.032 -> 0.43 / 0.042 (defocus, noise, motion blur
and rain gain 1-2 points: not added). Rerun for the network retrained with starry-sky negatives
(3000 samples): jpeg 0.20, low_res 0.07 (kept as they are), and noise now qualifies at any
classical finding (recall 0.79 -> 0.83, false alarms 0.007 -> 0.013). Not added: on the quick
``bench mio`` setting it lost 0.04 dB on kodak24 (two noise+JPEG crops 2.1-2.7 dB: after waifu2x
the denoiser took the classical sigma, lower than the network's) and gained 0.06 on the
scikit-image photos. Such a finding is marked ``found_by_classical`` and takes
the classical severity; the measures tools read are the classical ones there. Another run's
``model.json`` may carry its own ``classical_alone``."""


def build_model(arch: str):
    """A torchvision architecture with random weights and :data:`N_OUT` outputs."""
    import torchvision

    try:
        return torchvision.models.get_model(arch, weights=None, num_classes=N_OUT)
    except ValueError as e:
        raise ValueError(f"unknown architecture {arch!r}: {e} (e.g. mobilenet_v3_small, resnet18)") from None


def split_outputs(out):
    """Network output -> (presence logits, severity in [0, 1], measures in [0, 1])."""
    import torch

    k = len(DEGRADATIONS)
    return out[:, :k], torch.sigmoid(out[:, k : 2 * k]), torch.sigmoid(out[:, 2 * k :])


def normalize_input(x):
    """The network's input: RGB in [0, 1] centred on 0."""
    return x - 0.5


def crop_boxes(height: int, width: int, size: int, max_crops: int = 8) -> list[tuple[int, int, int, int]]:
    """Up to ``max_crops`` (y, x, h, w) boxes of ``size`` px spread evenly over the image (a grid,
    corners included); the whole image when it is not larger than ``1.5 * size``.

    Examples:
        >>> crop_boxes(100, 150, 128)
        [(0, 0, 100, 150)]
        >>> len(crop_boxes(1000, 1500, 128, max_crops=6))
        6
    """
    if height <= 1.5 * size and width <= 1.5 * size:
        return [(0, 0, height, width)]
    h, w = min(size, height), min(size, width)
    rows = max(1, round((max_crops * height / width) ** 0.5))
    cols = max(1, max_crops // rows)
    ys = np.linspace(0, height - h, rows).round().astype(int) if rows > 1 else [max(0, (height - h) // 2)]
    xs = np.linspace(0, width - w, cols).round().astype(int) if cols > 1 else [max(0, (width - w) // 2)]
    return [(int(y), int(x), h, w) for y in ys for x in xs][:max_crops]


class LearnedPerception:
    """A trained perception network as a ``perceive`` callable (image -> DegradationReport).

    Use :meth:`load` on a run folder of ``restora train perception`` (``model.safetensors`` and
    ``model.json``).
    """

    def __init__(
        self,
        model: Any,
        card: dict[str, Any],
        *,
        max_crops: int = 8,
        classical: bool = True,
        whole_image: tuple[str, ...] = WHOLE_IMAGE,
        either_reading: dict[str, float] | None = None,
        classical_alone: dict[str, float] | None = None,
        both_readings: tuple[str, ...] | None = None,
        view_noise: bool | None = None,
    ) -> None:
        self.model = model
        self.card = card
        self.thresholds = np.array([float(card["thresholds"][d]) for d in DEGRADATIONS], np.float32)
        self.crop = int(card["crop"])
        self.max_crops = int(max_crops)
        self.classical = classical
        self.whole_image = tuple(whole_image)  # decided by the classical estimators when they run
        # ... or by the network alone above these: set for the shipped network; a run's model.json may carry its own
        self.either_reading = dict(either_reading if either_reading is not None else card.get("either_reading", EITHER_READING))
        self.both_readings = tuple(both_readings if both_readings is not None else card.get("both_readings", BOTH_READINGS))
        self.classical_alone = dict(classical_alone if classical_alone is not None else card.get("classical_alone", CLASSICAL_ALONE))
        # read a dim picture's noise brightened (module docstring); a run's model.json may carry its own
        self.view_noise = bool(view_noise if view_noise is not None else card.get("view_noise", VIEW_NOISE))
        self.name = f"learned:{card.get('arch', '?')}"

    @classmethod
    def load(cls, folder: str | os.PathLike, **kwargs: Any) -> LearnedPerception:
        """The network of a run folder; a clear error when its files are missing or do not fit."""
        from safetensors.torch import load_file

        folder = Path(folder)
        weights, card_path = folder / "model.safetensors", folder / "model.json"
        if not weights.is_file() or not card_path.is_file():
            raise RestoraError(f"{folder}: not a perception model (needs model.safetensors and model.json from `restora train perception`)")
        card = json.loads(card_path.read_text())
        if card.get("kind") != "restora-perception":
            raise RestoraError(f"{card_path}: kind {card.get('kind')!r} is not a restora perception model")
        if card["outputs"]["presence_logits"] != list(DEGRADATIONS):
            raise RestoraError(f"{card_path}: made for degradations {card['outputs']['presence_logits']}, this restora has {list(DEGRADATIONS)}")
        expected = card.get("sha256")
        if expected is not None:  # a shipped model's card names its weights' checksum
            import hashlib

            digest = hashlib.sha256(weights.read_bytes()).hexdigest()
            if digest != expected:
                raise RestoraError(f"{weights}: sha256 {digest[:12]}... does not match its card's {str(expected)[:12]}... (damaged or replaced)")
        model = build_model(card["arch"])
        try:
            model.load_state_dict(load_file(str(weights)))
        except RuntimeError as e:
            raise RestoraError(f"{weights}: does not fit {card['arch']}: {str(e).splitlines()[0]}") from None
        model.eval()
        return cls(model, card, **kwargs)

    def predict(self, image: np.ndarray, gain: float = 1.0) -> dict[str, Any]:
        """Probabilities, severities and measures (native units), averaged over the crops read;
        ``gain`` > 1 reads the crops as viewed brightened (:func:`~restora.perception.measures.to_view`)."""
        import torch

        boxes = crop_boxes(image.shape[0], image.shape[1], self.crop, self.max_crops)
        batch = to_view(np.stack([image[y : y + h, x : x + w] for y, x, h, w in boxes]), gain)  # crop_boxes: all one size
        with torch.inference_mode():
            out = self.model(normalize_input(torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))))
            logits, sev, meas = split_outputs(out)
            prob = torch.sigmoid(logits.mean(0)).numpy()
            sev = sev.mean(0).numpy()
            meas = meas.median(0).values.numpy()
        measures = {name: float(lo + m * (hi - lo)) for m, (name, (_, _, lo, hi)) in zip(meas, MEASURES.items(), strict=True)}
        return {"probability": prob, "severity": sev, "measures": measures, "crops": boxes}

    def __call__(self, image: np.ndarray) -> DegradationReport:
        t0 = time.perf_counter()
        pred = self.predict(image)
        gain = view_gain(image[::4, ::4]) if self.view_noise else 1.0
        viewed = self.predict(image, gain) if gain > 1.0 else None
        classical = None
        if self.classical:
            from restora.perception import perceive

            classical = perceive(image)
        findings = {}
        for j, d in enumerate(DEGRADATIONS):
            p = float(pred["probability"][j])
            sev_j = float(pred["severity"][j])
            measures = pred["measures"]
            evidence = dict(classical.findings[d].evidence) if classical is not None else {}
            if d == "noise" and viewed is not None:
                # a dim picture's noise is read where a person sees it: brightened (view_gain); the
                # sigma back in the picture's own units, at the slope of the view at its median
                evidence["unviewed_probability"] = round(p, 4)
                evidence["view_gain"] = round(gain, 3)
                p, sev_j = float(viewed["probability"][j]), float(viewed["severity"][j])
                slope = view_slope(gain, float(np.median(image[::4, ::4] @ LUMA)))
                measures = {**measures, "noise_sigma": viewed["measures"]["noise_sigma"] / slope}
            present = p >= float(self.thresholds[j])
            if d == "noise" and viewed is not None and present and float(pred["probability"][j]) < float(self.thresholds[j]):
                evidence["only_viewed"] = 1.0  # found on the brightened view alone
            for name, (deg, _, _, _) in MEASURES.items():
                if deg == d:
                    evidence[f"learned_{name}"] = round(measures[name], 4)
                    evidence.setdefault(name, round(measures[name], 4))
            if d == "noise" and classical is not None and "noise_sigma" in evidence:
                # the white-noise estimate reads in-camera (demosaicked, smoothed) noise far too low;
                # the network was trained on that noise too: tools get the larger of the two
                evidence["classical_noise_sigma"] = evidence["noise_sigma"]
                if present:
                    evidence["noise_sigma"] = round(max(float(evidence["noise_sigma"]), measures["noise_sigma"]), 4)
            if d in self.whole_image and classical is not None:
                # a property of the whole frame: decided by the whole-image estimators, the network's
                # reading of its crops kept as evidence
                evidence["learned_probability"] = round(p, 4)
                evidence["whole_image"] = 1.0  # decided by the classical whole-image measures
                found = classical.findings[d].present or p >= self.either_reading.get(d, float("inf"))
                if d in self.both_readings and found and not present:  # the network, at its own threshold, does not agree
                    found = False
                    evidence["not_confirmed_by_network"] = 1.0
                severity = classical.findings[d].severity
                if found and not classical.findings[d].present:
                    evidence["found_by_network"] = 1.0
                    severity = round(float(np.clip(sev_j, 0.0, 1.0)), 4)
                findings[d] = Finding(degradation=Degradation(d), present=found, severity=severity, evidence=evidence)
                continue
            evidence["probability"] = round(p, 4)
            severity = round(float(np.clip(sev_j, 0.0, 1.0)), 4)
            if not present and classical is not None and classical.findings[d].present and classical.findings[d].severity >= self.classical_alone.get(d, float("inf")):
                present, severity = True, classical.findings[d].severity
                evidence["found_by_classical"] = 1.0
            findings[d] = Finding(degradation=Degradation(d), present=present, severity=severity, evidence=evidence)
        h, w = image.shape[:2]
        report = DegradationReport(findings=findings, width=w, height=h, seconds=round(time.perf_counter() - t0, 4))
        return report.judged_by(classical)  # the whole-image estimators judge steps, not the network that chose them
