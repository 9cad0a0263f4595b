"""The batch ledger: one SQLite row per input (WAL mode), written by the driver alone, and the
lock that keeps two batches off one output folder.

A row's state is ``pending``, ``running`` (handed to a worker), ``done`` (its outputs were renamed
into place before the row said so), ``failed`` (with the error) or ``skipped`` (never to be tried:
the input is gone, or shares an output name with another). A rerun on the same output folder
(:meth:`Ledger.sync`) keeps ``done`` rows whose file is unchanged (same size and mtime), makes
``running`` and ``failed`` rows pending again (``failed`` ones until they failed
:data:`RETRY_LIMIT` times; ``redo="failed"`` retries them all, ``redo="all"`` redoes everything)
and adds files that are new. Rows not done whose file is no longer among the inputs become
``skipped``.

Examples:
    >>> from restora.batch.job import Job
    >>> with Ledger.open(Path(tmp) / "ledger.sqlite") as led:                 # doctest: +SKIP
    ...     led.sync([Job("in/a.png", "a", 120, 1)], redo=None)
    ...     led.claim("in/a.png")
    ...     led.finish({"source": "in/a.png", "state": "done", "output": "out/a.png"})
    ...     led.counts()
    {'done': 1}
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from restora.errors import RestoraError

STATES = ("pending", "running", "done", "failed", "skipped")
RETRY_LIMIT = 3
"""A failed input is retried by later runs until it has failed this many times (then only
``--redo failed`` tries it again)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    source     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'skipped')),
    output     TEXT,
    found      TEXT NOT NULL DEFAULT '[]',
    kept       TEXT NOT NULL DEFAULT '[]',
    plan       TEXT NOT NULL DEFAULT '[]',
    notes      TEXT NOT NULL DEFAULT '[]',
    tool_calls INTEGER NOT NULL DEFAULT 0,
    seconds    REAL NOT NULL DEFAULT 0,
    error      TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    failures   INTEGER NOT NULL DEFAULT 0,
    done_count INTEGER NOT NULL DEFAULT 0,
    updated    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_state ON files (state);
"""


class LedgerError(RestoraError):
    """The ledger cannot be used as asked (other settings, unwritable, corrupt)."""


class BatchLockedError(RestoraError):
    """Another batch holds the output folder's lock."""


class Ledger:
    """The SQLite ledger of one output folder. Use :meth:`open` (a context manager)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Ledger:
        """Open (or create) the ledger at ``path``: WAL journal, full sync (a finished row
        survives a crash of the machine, not only of the process)."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(SCHEMA)
            conn.row_factory = sqlite3.Row
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"ledger {path}: {e} (a read-only or full disk, or not a restora ledger)") from e
        except OSError as e:
            raise LedgerError(f"ledger {path}: {e.strerror or e}") from e
        return cls(conn, path)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def _write(self, sql: str, args: Iterable[Any] = ()) -> None:
        try:
            self.conn.execute(sql, tuple(args))
        except sqlite3.OperationalError as e:
            raise LedgerError(f"ledger {self.path}: {e} (is the disk full or read-only?)") from e

    def _many(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Run ``statements`` in one transaction: all or nothing."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            for sql, args in statements:
                self.conn.execute(sql, args)
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise LedgerError(f"ledger {self.path}: {e} (is the disk full or read-only?)") from e

    # -- settings ------------------------------------------------------------------------------
    def check_settings(self, settings: dict[str, Any], redo: str | None) -> None:
        """Record ``settings``; a ledger made with other ones is an error unless ``redo == "all"``
        (the outputs would not all be what the settings make)."""
        now = json.dumps(settings, sort_keys=True)
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        if row is not None and row[0] != now and redo != "all":
            before = json.loads(row[0])
            diff = ", ".join(f"{k}: {before.get(k)!r} -> {settings.get(k)!r}" for k in sorted(set(before) | set(settings)) if before.get(k) != settings.get(k))
            raise LedgerError(f"{self.path.parent} was made with other settings ({diff}); use the same ones, another --out, or --redo all")
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES ('settings', ?)", (now,))

    # -- rows ----------------------------------------------------------------------------------
    def sync(self, jobs: list[Any], redo: str | None, skipped: dict[str, tuple[Any, str]] | None = None) -> dict[str, int]:
        """Bring the ledger up to date with this run's inputs (see the module doc); return how
        many rows are new, kept done, and to do."""
        if redo not in (None, "failed", "all"):
            raise ValueError(f"redo must be failed or all, got {redo!r}")
        now = time.time()
        have = {r["source"]: r for r in self.conn.execute("SELECT source, name, size, mtime_ns, state, failures, output FROM files")}
        stmts: list[tuple[str, tuple[Any, ...]]] = []
        stats = {"new": 0, "done": 0, "todo": 0, "gave_up": 0}
        for job in jobs:
            row = have.get(job.source)
            if row is None:
                stmts.append(("INSERT INTO files (source, name, size, mtime_ns, state, updated) VALUES (?, ?, ?, ?, 'pending', ?)", (job.source, job.name, job.size, job.mtime_ns, now)))
                stats["new"] += 1
                stats["todo"] += 1
                continue
            changed = (row["size"], row["mtime_ns"], row["name"]) != (job.size, job.mtime_ns, job.name)
            state = row["state"]
            if changed or redo == "all":
                new = "pending"
            elif state == "done":
                new = "done"
            elif state == "failed" and row["failures"] >= RETRY_LIMIT and redo != "failed":
                new = "failed"
                stats["gave_up"] += 1
            else:
                new = "pending"
            if new == "done" and not (row["output"] and os.path.exists(row["output"])):
                new = "pending"  # its output was removed since: made again
            if new == "done":
                stats["done"] += 1
            elif new == "pending":
                stats["todo"] += 1
            if new == "pending" and (changed or redo is not None):
                stmts.append(("UPDATE files SET name = ?, size = ?, mtime_ns = ?, state = 'pending', failures = 0, updated = ? WHERE source = ?", (job.name, job.size, job.mtime_ns, now, job.source)))
            elif new != state:
                stmts.append(("UPDATE files SET state = ?, updated = ? WHERE source = ?", (new, now, job.source)))
        listed = {job.source for job in jobs} | set(skipped or {})
        for source, row in have.items():
            if source not in listed and row["state"] != "done":  # gone, or no longer selected
                stmts.append(("UPDATE files SET state = 'skipped', error = ?, updated = ? WHERE source = ?", ("not among this run's inputs (removed, or not selected)", now, source)))
        for source, (job, reason) in (skipped or {}).items():
            stmts.append((
                "INSERT INTO files (source, name, size, mtime_ns, state, error, updated) VALUES (?, ?, ?, ?, 'skipped', ?, ?) "
                "ON CONFLICT (source) DO UPDATE SET state = 'skipped', error = excluded.error, updated = excluded.updated",
                (source, job.name, job.size, job.mtime_ns, reason, now),
            ))
        self._many(stmts)
        return stats

    def todo(self) -> list[sqlite3.Row]:
        """Rows to process, in path order."""
        return list(self.conn.execute("SELECT * FROM files WHERE state = 'pending' ORDER BY source"))

    def running(self) -> list[sqlite3.Row]:
        return list(self.conn.execute("SELECT * FROM files WHERE state = 'running' ORDER BY source"))

    def claim(self, source: str) -> None:
        """The input is handed to a worker."""
        self._write("UPDATE files SET state = 'running', attempts = attempts + 1, error = NULL, updated = ? WHERE source = ?", (time.time(), source))

    def release(self, source: str) -> None:
        """The input goes back to ``pending`` without a failure (its worker could not write)."""
        self._write("UPDATE files SET state = 'pending', updated = ? WHERE source = ?", (time.time(), source))

    def finish(self, result: dict[str, Any]) -> None:
        """Record a worker's result (:class:`restora.batch.job.Outcome` as a dict): ``done`` (its
        outputs are already in place) or ``failed``."""
        now = time.time()
        if result["state"] == "done":
            self._write(
                "UPDATE files SET state = 'done', output = ?, found = ?, kept = ?, plan = ?, notes = ?, tool_calls = ?, seconds = ?, "
                "error = NULL, done_count = done_count + 1, updated = ? WHERE source = ?",
                (
                    result.get("output"),
                    json.dumps(result.get("found", [])),
                    json.dumps(result.get("kept", [])),
                    json.dumps(result.get("plan", [])),
                    json.dumps(result.get("notes", [])),
                    int(result.get("tool_calls", 0)),
                    float(result.get("seconds", 0.0)),
                    now,
                    result["source"],
                ),
            )
        else:
            self._write(
                "UPDATE files SET state = 'failed', error = ?, seconds = ?, failures = failures + 1, updated = ? WHERE source = ?",
                (result.get("error") or "failed", float(result.get("seconds", 0.0)), now, result["source"]),
            )

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT state, COUNT(*) FROM files GROUP BY state")}

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row as a dict (JSON columns decoded), in path order."""
        for r in self.conn.execute("SELECT * FROM files ORDER BY source"):
            d = dict(r)
            for k in ("found", "kept", "plan", "notes"):
                d[k] = json.loads(d[k] or "[]")
            yield d


class BatchLock:
    """An exclusive lock on an output folder (``fcntl.flock`` on ``restora-batch/lock``): held
    while a batch runs, released by the kernel when the process ends, even by ``kill -9``.

    Examples:
        >>> with BatchLock(Path("out")):          # doctest: +SKIP
        ...     run_the_batch()
    """

    def __init__(self, outdir: Path) -> None:
        from restora.batch.job import work_dir

        self.path = work_dir(outdir) / "lock"
        self._fd: int | None = None

    def __enter__(self) -> BatchLock:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise LedgerError(f"cannot write to {self.path.parent}: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise BatchLockedError(
                f"another restora batch is writing to {self.path.parent.parent} ({holder}); wait for it to finish, or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
