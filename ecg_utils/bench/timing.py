"""Timing and memory helpers shared by the benchmarks."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of `repeat` runs in seconds: the least disturbed by other load on the machine."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc), MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """Highest resident memory of this process so far (VmHWM, which unlike ru_maxrss starts afresh at
    exec rather than carrying the parent's peak over), MB."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1e3


def fresh(fn: Callable[..., dict], *args: object) -> dict:
    """Run `fn(*args)` in a new Python process, so its peak memory is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)
