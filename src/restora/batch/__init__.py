"""Running many independent jobs: one runner (:func:`run_jobs`, here or in worker processes, where
one failure fails one job), the worker processes' per-process tools (:mod:`restora.batch.workers`),
and output names that are a pure function of the input path (:mod:`restora.batch.names`).

Examples:
    >>> from restora.batch import run_jobs
    >>> [d.value for d in run_jobs(max, [(1, 2), (5, 3)])]
    [2, 5]
"""

from restora.batch.names import Input, NameClashError, expand_inputs, output_name
from restora.batch.pool import Done, JobPool, describe_error, run_jobs

__all__ = ["Done", "JobPool", "Input", "NameClashError", "describe_error", "expand_inputs", "output_name", "run_jobs"]
