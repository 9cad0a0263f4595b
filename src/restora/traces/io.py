"""Writing and reading trace files.

Examples:
    >>> with TraceWriter("out/photo.trace.jsonl") as w:     # doctest: +SKIP
    ...     w.write(start_record)
    >>> read_trace("out/photo.trace.jsonl")                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import TypeAdapter

from restora.errors import RestoraError
from restora.imageio import write_text_atomic
from restora.traces.schema import TraceRecord

_ADAPTER: TypeAdapter = TypeAdapter(TraceRecord)


class TraceWriter:
    """Collects records and writes them atomically to ``path`` when closed.

    Records are also appended to ``<path>.part`` as they come (so a crash leaves a readable
    partial trace beside, never under the final name).
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path is not None else None
        self.records: list = []
        self._part = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._part = open(self.path.with_name(self.path.name + ".part"), "w", encoding="utf-8")

    def write(self, record) -> None:
        self.records.append(record)
        if self._part is not None:
            self._part.write(record.model_dump_json() + "\n")
            self._part.flush()

    def close(self, commit: bool = True) -> None:
        if self._part is None:
            return
        part_path = Path(self._part.name)
        self._part.close()
        self._part = None
        if commit and self.path is not None:
            write_text_atomic(self.path, "".join(r.model_dump_json() + "\n" for r in self.records))
            part_path.unlink(missing_ok=True)

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(commit=exc_type is None)


def read_trace(path: str | os.PathLike) -> list:
    """Parse a trace file into records, validating each line against the schema."""
    records = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(_ADAPTER.validate_json(line))
        except ValueError as e:
            raise RestoraError(f"{path}:{i}: not a valid trace record: {e}") from e
    return records
