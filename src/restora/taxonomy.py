"""The names restora uses for what is wrong with an image and for what a tool does about it.

Degradation names follow the benchmark protocol (``../shared/BENCHMARK.md``); each has exactly one
restoration task that undoes it.
"""

from __future__ import annotations

from enum import StrEnum


class Degradation(StrEnum):
    NOISE = "noise"
    MOTION_BLUR = "motion_blur"
    DEFOCUS = "defocus"
    HAZE = "haze"
    RAIN = "rain"
    DARK = "dark"
    JPEG = "jpeg"
    LOW_RES = "low_res"


class Task(StrEnum):
    DENOISE = "denoise"
    MOTION_DEBLUR = "motion_deblur"
    DEFOCUS_DEBLUR = "defocus_deblur"
    DEHAZE = "dehaze"
    DERAIN = "derain"
    LOW_LIGHT = "low_light"
    DEJPEG = "dejpeg"
    SUPER_RESOLUTION = "super_resolution"


TASK_FOR: dict[Degradation, Task] = {
    Degradation.NOISE: Task.DENOISE,
    Degradation.MOTION_BLUR: Task.MOTION_DEBLUR,
    Degradation.DEFOCUS: Task.DEFOCUS_DEBLUR,
    Degradation.HAZE: Task.DEHAZE,
    Degradation.RAIN: Task.DERAIN,
    Degradation.DARK: Task.LOW_LIGHT,
    Degradation.JPEG: Task.DEJPEG,
    Degradation.LOW_RES: Task.SUPER_RESOLUTION,
}
DEGRADATION_FOR: dict[Task, Degradation] = {t: d for d, t in TASK_FOR.items()}

# Order in which degradations form (scene, then imaging, then compression); restoring goes the
# other way. Used by the heuristic planner and the benchmark's `fixed` strategy.
FORMATION_ORDER: tuple[Degradation, ...] = (
    Degradation.HAZE,
    Degradation.RAIN,
    Degradation.DARK,
    Degradation.MOTION_BLUR,
    Degradation.DEFOCUS,
    Degradation.NOISE,
    Degradation.LOW_RES,
    Degradation.JPEG,
)
RESTORATION_ORDER: tuple[Task, ...] = tuple(TASK_FOR[d] for d in reversed(FORMATION_ORDER))

TONE_TASKS: tuple[str, ...] = ("low_light", "dehaze")
"""Tasks whose tools are tone curves (gain, gamma, contrast stretch): they scale everything that is
already in the picture, rain streaks and noise included, and create none of it. Their output can
look like what the other one fixes (brightened shadows read as lifted blacks, that is haze)."""
