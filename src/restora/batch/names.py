"""Where each input's outputs go: a pure function of the input path, never of processing order.

A file given by itself is named by its stem (``photos/cat.jpg`` -> ``cat``); a file found in a
folder given as input keeps its path below that folder (``photos/`` holding ``2019/cat.jpg`` ->
``2019/cat``), so the output tree mirrors the input tree. The same input always gets the same
name, whatever else is in the run, which is what lets a run be resumed or split over workers. Two
inputs that would get the same name are an error before anything runs (nothing is overwritten).

Examples:
    >>> from pathlib import Path
    >>> output_name(Path("photos/2019/cat.jpg"), root=Path("photos"))
    PosixPath('2019/cat')
    >>> output_name(Path("shots/dog.png"))
    PosixPath('dog')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from restora.data import image_files
from restora.errors import RestoraError


class NameClashError(RestoraError, ValueError):
    """Two inputs would be written under the same output name."""


@dataclass(frozen=True)
class Input:
    """One input file and the name (relative path without suffix) its outputs get."""

    path: Path
    name: Path

    def output(self, outdir: Path, suffix: str) -> Path:
        """``outdir/<name><suffix>``, e.g. ``out/2019/cat.png`` for ``suffix=".png"``."""
        return outdir / self.name.parent / (self.name.name + suffix)


def output_name(path: Path, root: Path | None = None) -> Path:
    """The output name of ``path``: relative to ``root`` (the folder it was found in) without its
    suffix, or its stem when it was given by itself."""
    rel = Path(path).relative_to(root) if root is not None else Path(Path(path).name)
    stem = rel.stem or "image"
    return rel.parent / stem


def expand_inputs(inputs: list[Path], unique: bool = True) -> list[Input]:
    """Files and folders (searched recursively for images) -> inputs with their output names.

    Raises :class:`NameClashError` naming the inputs when two would share an output name, unless
    ``unique`` is False (for commands that write no per-input files, e.g. ``restora perceive``).

    Examples:
        >>> expand_inputs([Path("a.png"), Path("b/a.jpg")])     # doctest: +SKIP
        NameClashError: a.png and b/a.jpg would both be written as 'a' ...
    """
    found: list[Input] = []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            found.extend(Input(f, output_name(f, p)) for f in image_files(p))
        else:
            found.append(Input(p, output_name(p)))
    seen: dict[Path, Path] = {}
    for item in found if unique else ():
        other = seen.get(item.name)
        if other is not None:
            raise NameClashError(
                f"{other} and {item.path} would both be written as {item.name.as_posix()!r} in the output folder; "
                "rename one, or run them separately with different --out"
            )
        seen[item.name] = item.path
    return found
