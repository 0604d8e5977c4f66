"""What a Dask cluster needs from this package: a worker plugin that loads the run's model once in each worker.

Kept apart from `archive` so that classifying on this machine never imports `distributed`.
"""

from __future__ import annotations

from distributed import Worker, WorkerPlugin

from ecg_utils.model.inference import load_once


class ModelPlugin(WorkerPlugin):
    """Carries the model's bytes to each worker once and loads them there, when the worker starts or joins later.

    The archive's tasks then depend on no data, so the scheduler queues them and hands each worker the next one as it
    frees up.
    """

    name = "ecg-utils-model"

    def __init__(self, model: bytes, sha: str, suffix: str, threads: int | None) -> None:
        self.model, self.sha, self.suffix, self.threads = model, sha, suffix, threads

    def setup(self, worker: Worker) -> None:
        load_once(self.model, self.sha, self.suffix, self.threads)
