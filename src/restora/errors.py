"""Exceptions raised by the library. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations


class RestoraError(Exception):
    """Base class of every error restora raises on purpose."""


class ImageLoadError(RestoraError):
    """An input file could not be read as an image (empty, truncated, not an image, too large)."""


class InvalidImageError(RestoraError, ValueError):
    """An in-memory image breaks the image contract (:func:`restora.imageio.check_image`)."""


class ImageTooLargeError(ImageLoadError):
    """An input image exceeds the pixel limit (decompression-bomb guard)."""


class UnknownToolError(RestoraError, KeyError):
    """A tool name that is not in the registry; the message names the closest ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ToolError(RestoraError):
    """A tool failed to run, or returned an invalid image."""


class WeightsNotFoundError(RestoraError):
    """A model card's weight files are missing; the message names the card and how to provide them."""


class ChecksumError(RestoraError):
    """A weight file does not match its card's sha256."""


class PlannerError(RestoraError):
    """A planner could not produce a valid step."""
