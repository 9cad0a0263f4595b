"""The inputs of a batch: files and folders walked recursively, never through a symlink.

A folder's images keep their path below it as their output name (OUT mirrors the tree); a file
given by itself is named by its stem (:mod:`restora.batch.names`). ``globs`` and ``excludes``
are shell patterns matched, case-insensitively, against the path below the folder given and
against the file's name (``*.jpg``, ``2019/*``, ``*/drafts/*``); an excluded folder is not
entered. Symlinked files and folders found inside an input are skipped (a link can point
outside the inputs, or make a cycle); the output folder, when it lies inside an input, is
skipped too. Two inputs that would share an output name: the first in path order is kept, the
other is *skipped* with the reason (a batch of 20,000 files is not refused for one clash).

Examples:
    >>> jobs, skipped = scan_inputs([Path("scans")], Path("out"), globs=["*.tif"], excludes=["*/rejects/*"])  # doctest: +SKIP
    >>> jobs[0].name, jobs[0].source                                                                          # doctest: +SKIP
    ('1998/roll1/001', '/home/me/scans/1998/roll1/001.tif')
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from restora.batch.job import Job
from restora.batch.names import output_name
from restora.data import IMAGE_SUFFIXES
from restora.errors import RestoraError


def _matches(rel: str, patterns: list[str]) -> bool:
    rel = rel.lower()
    base = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p.lower()) or fnmatch.fnmatchcase(base, p.lower()) for p in patterns)


def _job(path: Path, name: Path) -> Job:
    st = path.stat()
    return Job(source=os.path.abspath(path), name=name.as_posix(), size=st.st_size, mtime_ns=st.st_mtime_ns)


def scan_inputs(
    inputs: list[Path], outdir: Path, globs: list[str] | None = None, excludes: list[str] | None = None
) -> tuple[list[Job], dict[str, tuple[Job, str]]]:
    """The jobs of a batch in path order, and the inputs skipped (source -> (job, reason)).

    A missing input is an error; so is a folder holding no image the patterns select.
    """
    excludes = list(excludes or [])
    out_real = os.path.realpath(outdir)
    found: list[Job] = []
    for root in map(Path, inputs):
        if not root.exists():
            raise RestoraError(f"{root}: no such file or folder")
        if root.is_file():
            found.append(_job(root, output_name(root)))
            continue
        before = len(found)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(dirpath)
            keep = []
            for d in sorted(dirnames):
                full = here / d
                rel = full.relative_to(root).as_posix()
                if full.is_symlink() or os.path.realpath(full) == out_real or _matches(rel, excludes):
                    continue
                keep.append(d)
            dirnames[:] = keep  # os.walk enters only these
            for f in sorted(filenames):
                full = here / f
                rel = full.relative_to(root).as_posix()
                if full.is_symlink() or not full.is_file():
                    continue
                if globs:
                    if not _matches(rel, globs):
                        continue
                elif full.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if _matches(rel, excludes):
                    continue
                found.append(_job(full, output_name(full, root)))
        if len(found) == before:
            what = f"matching {', '.join(globs)}" if globs else f"({', '.join(sorted(IMAGE_SUFFIXES))})"
            raise RestoraError(f"no images in folder {root} {what}, in subfolders too")
    found.sort(key=lambda j: j.source)
    jobs: list[Job] = []
    skipped: dict[str, tuple[Job, str]] = {}
    by_name: dict[str, str] = {}
    seen: set[str] = set()
    for job in found:
        if job.source in seen:
            continue  # the same file reached twice (a file and its folder both given)
        seen.add(job.source)
        other = by_name.get(job.name.lower())
        if other is not None:
            skipped[job.source] = (job, f"would be written as {job.name!r} like {other}; rename one or run it separately")
            continue
        by_name[job.name.lower()] = job.source
        jobs.append(job)
    return jobs, skipped
