"""Traces: versioned JSONL records of every agent step (see :mod:`restora.traces.schema`)."""

from restora.traces.io import TraceWriter, read_trace
from restora.traces.schema import (
    SCHEMA_VERSION,
    ActionRecord,
    EndRecord,
    StartRecord,
    StepRecord,
    TraceRecord,
)

__all__ = [
    "SCHEMA_VERSION",
    "ActionRecord",
    "EndRecord",
    "StartRecord",
    "StepRecord",
    "TraceRecord",
    "TraceWriter",
    "read_trace",
]
