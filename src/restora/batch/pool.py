"""One runner for many independent jobs: in this process, or in a pool of worker processes.

A job is the arguments of one call of a top-level function (``fn(*job)``). Each job ends as a
:class:`Done` holding its value or its error: a job that raises fails alone and the others go on.
A worker process that dies (a segfault in a native library, the OOM killer) breaks the pool; the
jobs that were running are tried once more in a fresh pool, and a job running at two such
deaths is failed with a message saying so. Which jobs were running is known exactly (each job sets
a flag in shared memory when it starts), so jobs merely queued behind a crash are never blamed.

``restora bench mio``, ``restora bench real``, ``restora synth`` and ``restora run`` run their
work through :func:`run_jobs`; the worker processes are made by :mod:`restora.batch.workers`.

Examples:
    >>> from restora.batch import run_jobs
    >>> done = run_jobs(divmod, [(7, 2), (1, 0)])
    >>> done[0].value, done[1].ok, done[1].error
    ((3, 1), False, 'ZeroDivisionError: integer division or modulo by zero')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from restora.errors import RestoraError

MAX_ATTEMPTS = 2
"""A job in flight when a worker process died is retried in a fresh pool up to this many tries."""


@dataclass
class Done:
    """One finished job: its place in the input order, its arguments, and its value or error."""

    index: int
    job: tuple[Any, ...]
    value: Any = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_error(e: BaseException) -> str:
    """A one-line message: restora's own errors say what is wrong; others name their type."""
    if isinstance(e, RestoraError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    *,
    workers: int = 1,
    on_done: Callable[[Done], None] | None = None,
) -> list[Done]:
    """Run ``fn(*job)`` for every job; return one :class:`Done` per job, in input order.

    ``workers <= 1`` runs the jobs here, one after another (``fn`` may be any callable). More
    workers run them in that many spawned processes (``fn`` and the jobs must be picklable: a
    top-level function, or a ``functools.partial`` of one). ``on_done`` is called in this
    process as each job finishes (completion order). ``KeyboardInterrupt`` is not caught: the
    jobs not yet finished are cancelled and it propagates.

    Examples:
        >>> [d.value for d in run_jobs(pow, [(2, 3), (3, 2)], workers=1)]
        [8, 9]
    """
    with JobPool(workers) as pool:
        return pool.run(fn, jobs, on_done=on_done)


class JobPool:
    """:func:`run_jobs` over several calls with the same worker processes (their tools and models
    stay loaded between calls). Use it as a context manager.

    Examples:
        >>> with JobPool(workers=1) as pool:
        ...     first = pool.run(abs, [(-1,)])
        ...     second = pool.run(abs, [(-2,)])
        >>> first[0].value, second[0].value
        (1, 2)
    """

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))
        self._ctx = get_context("spawn")
        self._executor: ProcessPoolExecutor | None = None
        self._started: Any = None

    def __enter__(self) -> JobPool:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(block=exc_type is None)

    def close(self, block: bool = True) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=block, cancel_futures=True)
            self._executor = None

    def run(
        self,
        fn: Callable[..., Any],
        jobs: Sequence[tuple[Any, ...]],
        *,
        on_done: Callable[[Done], None] | None = None,
    ) -> list[Done]:
        """One :class:`Done` per job, in input order (see :func:`run_jobs`)."""
        jobs = [tuple(j) for j in jobs]
        if self.workers <= 1:
            return _run_here(fn, jobs, on_done)
        return self._run_pool(fn, jobs, on_done)

    def _pool(self, n_jobs: int) -> ProcessPoolExecutor:
        if self._started is None or len(self._started) < n_jobs:
            self.close()  # the shared flags are made with the processes: a bigger call needs new ones
            self._started = self._ctx.Array("b", max(n_jobs, 64), lock=False)
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=self._ctx, initializer=_init_worker, initargs=(self._started,)
            )
        return self._executor

    def _run_pool(
        self, fn: Callable[..., Any], jobs: list[tuple[Any, ...]], on_done: Callable[[Done], None] | None
    ) -> list[Done]:
        results: dict[int, Done] = {}
        deaths = dict.fromkeys(range(len(jobs)), 0)  # worker deaths while the job was running
        todo = list(range(len(jobs)))
        while todo:
            pool = self._pool(len(jobs))
            started = self._started
            for i in todo:
                started[i] = 0
            broken = False
            try:
                futures: dict[Future, int] = {pool.submit(_call, fn, i, jobs[i]): i for i in todo}
                pending = set(futures)
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        i = futures[fut]
                        try:
                            value, seconds = fut.result()
                            done = Done(i, jobs[i], value=value, seconds=seconds)
                        except BrokenProcessPool:
                            broken = True
                            continue  # decided below, with every job the dead pool took down
                        except Exception as e:  # noqa: BLE001 - the job's failure is its result
                            done = Done(i, jobs[i], error=describe_error(e))
                        results[i] = done
                        if on_done is not None:
                            on_done(done)
            except BaseException:
                self.close(block=False)
                raise
            if broken:
                self.close(block=False)  # a fresh pool for what is left
            todo = [i for i in todo if i not in results]
            for i in list(todo):
                if not started[i]:
                    continue  # never started: simply submitted again
                deaths[i] += 1
                if deaths[i] >= MAX_ATTEMPTS:
                    todo.remove(i)
                    results[i] = Done(
                        i,
                        jobs[i],
                        error=f"the worker process died while running this job, {deaths[i]} times (a crash in a native library, or out of memory)",
                    )
                    if on_done is not None:
                        on_done(results[i])
        return [results[i] for i in range(len(jobs))]


_STARTED: Any = None  # in a worker: the shared flags, one per job, set when a job starts


def _init_worker(started: Any) -> None:
    from restora.batch.workers import worker_init

    global _STARTED
    _STARTED = started
    worker_init()


def _call(fn: Callable[..., Any], index: int, job: tuple[Any, ...]) -> tuple[Any, float]:
    if _STARTED is not None:
        _STARTED[index] = 1  # shared memory: visible to the parent even if this process dies next
    t0 = time.perf_counter()
    return fn(*job), time.perf_counter() - t0


def _run_here(fn: Callable[..., Any], jobs: list[tuple[Any, ...]], on_done: Callable[[Done], None] | None) -> list[Done]:
    out = []
    for i, job in enumerate(jobs):
        t0 = time.perf_counter()
        try:
            done = Done(i, job, value=fn(*job), seconds=time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - one job's failure is its result; the rest go on
            done = Done(i, job, error=describe_error(e), seconds=time.perf_counter() - t0)
        out.append(done)
        if on_done is not None:
            on_done(done)
    return out
