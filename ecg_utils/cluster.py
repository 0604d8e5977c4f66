"""What a Dask cluster needs from this package: a worker plugin that loads the run's model once in each worker.

Kept apart from `archive` so that classifying on this machine never imports `distributed`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

from distributed import Worker, WorkerPlugin

from ecg_utils.model.inference import load_once

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD = 32 * 1024 * 1024  # the ceiling of glibc's own dynamic mmap threshold on 64-bit machines


def restore_malloc_thresholds() -> bool:
    """Undo, in this worker process, what the nanny's MALLOC_TRIM_THRESHOLD_ does to a record's classification.

    Dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_=65536 (`distributed.nanny.pre-spawn-environ`) so
    that freed memory goes back to the system. Setting any malloc threshold switches off glibc's dynamic mmap
    threshold, so each array above 128 KiB that a record's filters and windows allocate is mapped, zero-filled and
    unmapped anew: on the 2-core reference machine the archive's tasks ran about 40 % longer on a LocalCluster than
    in plain processes. This sets the thresholds glibc's dynamic rule settles on for such arrays (mmap 32 MiB, trim
    twice that; a worker may then keep up to 64 MiB freed heap). Only where the variable is set and the C library is
    glibc; returns whether it did."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD))


class ModelPlugin(WorkerPlugin):
    """Carries the model's bytes to each worker once and loads them there, when the worker starts or joins later.

    The archive's tasks then depend on no data, so the scheduler queues them and hands each worker the next one as it
    frees up.
    """

    name = "ecg-utils-model"

    def __init__(self, model: bytes, sha: str, suffix: str, threads: int | None) -> None:
        self.model, self.sha, self.suffix, self.threads = model, sha, suffix, threads

    def setup(self, worker: Worker) -> None:
        restore_malloc_thresholds()
        load_once(self.model, self.sha, self.suffix, self.threads)
