"""``restora batch --engine ray``: the same batch on Ray Data.

The images go through ``Dataset.map_batches`` with a callable class (:class:`RayRestorer`) on a
fixed-size actor pool (``ActorPoolStrategy(size=workers)``, one image per batch, ``num_cpus=1``
and ``num_gpus=gpus_per_worker`` per actor): each actor loads the tools and models once and runs
the same per-image work as a local worker (:class:`restora.batch.job.Restorer`), writing the
image's files and receipt straight into OUT. Actors return each result as a JSON string; only
the driver writes the ledger, so no SQLite file is ever written from several machines.

Without ``address`` a private local Ray instance is started (127.0.0.1, no dashboard, its temp
dir under ``OUT/restora-batch/ray`` or, where that path is too long for Ray's sockets, a short
folder in the system temp dir) and stopped at the end. With ``address`` (``auto``, or
``ray://head:10001``) the batch joins that cluster: every node needs restora installed (the
same version) and OUT and the inputs on shared storage at the same paths.

Examples:
    >>> RayEngine(BatchSettings(), Path("out"), workers=4).run(jobs, ledger.claim, record, StopFlag())  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from restora.batch.job import BatchSettings, Job, Restorer, work_dir
from restora.errors import RestoraError

MAX_SOCKET_DIR = 40
"""Ray's unix sockets live under its temp dir, below a ~62-character session path
(``session_<date>_<time>_<pid>/sockets/plasma_store``): with the 107-byte limit, a temp dir
longer than this goes to the system temp dir instead."""


def check_ray() -> None:
    """An error saying how to install Ray when it is not importable."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise RestoraError("--engine ray needs Ray Data: pip install 'restora[ray]'") from None


class RayRestorer:
    """The ``map_batches`` callable class: one per actor, holding the loaded tools."""

    def __init__(self, restorer: type[Restorer], settings: BatchSettings, outdir: str) -> None:
        from restora.batch.workers import worker_init

        worker_init()
        self.restorer = restorer(settings, Path(outdir))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        results = [json.dumps(self.restorer.process(Job(**json.loads(str(s))))) for s in batch["job"]]
        return {"result": np.array(results, dtype=object)}


class RayEngine:
    """Run jobs on Ray Data; same interface as :class:`restora.batch.engine.LocalEngine`."""

    def __init__(
        self, settings: BatchSettings, outdir: Path, workers: int = 1, address: str | None = None, gpus_per_worker: float = 0.0, restorer: type[Restorer] = Restorer
    ) -> None:
        self.settings = settings
        self.outdir = Path(outdir).resolve()
        self.workers = max(1, int(workers))
        self.address = address
        self.gpus = float(gpus_per_worker)
        self.restorer = restorer

    def _init(self) -> bool:
        """Start or join Ray; True when this call started it (and must stop it)."""
        import ray

        if ray.is_initialized():
            return False
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        if self.address:
            ray.init(address=self.address, log_to_driver=False, logging_level="warning")
            return True
        temp = work_dir(self.outdir) / "ray"
        if len(str(temp)) > MAX_SOCKET_DIR:
            temp = Path(tempfile.mkdtemp(prefix="restora-ray-"))
        temp.mkdir(parents=True, exist_ok=True)
        ray.init(
            num_cpus=max(self.workers, os.cpu_count() or 1),
            num_gpus=None,
            include_dashboard=False,
            _temp_dir=str(temp),
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            logging_level="warning",
        )
        return True

    def run(self, jobs: list[Job], claim: Any, record: Any, stop: Any) -> None:
        import ray
        import ray.data

        started = self._init()
        try:
            import logging

            logging.getLogger("ray.data").setLevel(logging.WARNING)
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            for job in jobs:
                claim(job.source)  # handed to Ray; a kill leaves them running: redone, or recovered from receipts
            ds = ray.data.from_items([{"job": json.dumps(asdict(j))} for j in jobs], override_num_blocks=len(jobs))
            ds = ds.map_batches(
                RayRestorer,
                fn_constructor_kwargs={"restorer": self.restorer, "settings": self.settings, "outdir": str(self.outdir)},
                batch_size=1,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.workers),
                num_cpus=1,
                num_gpus=self.gpus or None,
            )
            for row in ds.iter_rows():
                record(json.loads(str(row["result"])))
                if stop.pressed:
                    break  # the images in flight finish in their actors; their receipts record them next run
        finally:
            if started:
                ray.shutdown()
