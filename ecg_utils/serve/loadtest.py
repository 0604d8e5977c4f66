"""Load on the web service, for `make bench`: concurrent uploads and concurrent real-time streams.

Starts the service (published model) on a free loopback port in its own process, then
- `clients` clients upload 30-minute MIT-BIH records, `per_client` each, all at once: records per second,
  p50 / p99 request latency, failed requests, the server's peak memory;
- `streams` WebSocket clients each send a record at real time in chunks of `chunk_s` seconds: p99 beat latency
  (from the moment the R peak happened, in real time, to the beat's message) and the server's CPU use. A
  client that sends 1 s chunks adds up to 1 s of waiting to every beat; devices send smaller packets.
Every request goes to 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ecg_utils.data.mitdb import resolve_mitdb_dir
from ecg_utils.data.records import read_record
from ecg_utils.model.shipped import model_info
from ecg_utils.serve.client import ApiClient, ApiError

RECORDS = ("100", "119", "208", "232")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the tests' servers use it too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The service in a child process, watched with psutil (peak RSS, CPU)."""

    def __init__(self) -> None:
        import psutil

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "ecg_utils.serve.service", "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ApiClient(self.url, timeout_s=2).health()
                return
            except ApiError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("the service did not start within 60 s")

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(next(x for x in f if x.startswith("VmHWM:")).split()[1]) / 1e3

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench_uploads(url: str, clients: int = 8, per_client: int = 3, adapt: bool = True) -> dict[str, float]:
    """`clients` clients at once, each uploading `per_client` 30-minute records one after another, in whole-record
    mode (the service's default) or with the model as trained (`adapt=False`)."""
    root = resolve_mitdb_dir()
    bodies = {r: [(f"{r}.{e}", (root / f"{r}.{e}").read_bytes()) for e in ("hea", "dat")] for r in RECORDS}
    latencies: list[float] = []
    failures = 0

    def client(i: int) -> None:
        nonlocal failures
        api = ApiClient(url, timeout_s=300)
        for k in range(per_client):
            files = bodies[RECORDS[(i + k) % len(RECORDS)]]
            t0 = time.perf_counter()
            try:
                api.classify(files, adapt=adapt)
                latencies.append(time.perf_counter() - t0)
            except ApiError:
                failures += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    return {"requests": clients * per_client, "records_per_s": len(latencies) / wall, "wall_s": wall,
            "p50_s": float(np.percentile(latencies, 50)), "p99_s": float(np.percentile(latencies, 99)),
            "failed": failures}


def bench_streams(url: str, streams: int = 50, seconds: float = 60.0, chunk_s: float = 1.0) -> dict[str, float]:
    """`streams` clients, each sending `seconds` of a record at real time in chunks of `chunk_s` seconds."""
    from websockets.sync.client import connect

    root = resolve_mitdb_dir()
    signals = [read_record(root / r, annotator=None).signal[: round(seconds * 360)].astype("<f4") for r in RECORDS]
    latencies: list[float] = []
    own: list[float] = []  # the stream's own latency (samples from the R peak to the chunk's end), as the answer says
    errors: list[str] = []
    lock = threading.Lock()

    step = round(chunk_s * 360)

    def stream(i: int) -> None:
        x = signals[i % len(signals)]
        sent_at: list[float] = []  # wall time each chunk was sent
        try:
            with connect(f"ws{url[4:]}/v1/stream?fs=360", max_size=None, open_timeout=30) as ws:
                done = threading.Event()

                def receive() -> None:
                    for message in ws:
                        beat = json.loads(message)
                        now = time.perf_counter()
                        if "error" in beat:
                            errors.append(beat["error"])
                            continue
                        # The R peak happened (in real time) where it lies within the chunk that held it.
                        k = int(beat["sample"] // step)
                        with lock:
                            latencies.append(now - (sent_at[k] - (step - (beat["sample"] - k * step)) / 360))
                            own.append(beat["latency_s"])
                    done.set()

                reader = threading.Thread(target=receive, daemon=True)
                reader.start()
                start = time.perf_counter() + (i % 10) * 0.1  # spread the clients over the second
                for k in range(0, len(x), step):
                    time.sleep(max(0.0, start + (k + step) / 360 - time.perf_counter()))  # the chunk's last sample
                    sent_at.append(time.perf_counter())
                    ws.send(x[k:k + step].tobytes())
                ws.send("end")
                done.wait(30)
        except (OSError, TimeoutError) as exc:
            errors.append(str(exc))

    with ThreadPoolExecutor(streams) as pool:
        list(pool.map(stream, range(streams)))
    lat, own_lat = np.asarray(latencies), np.asarray(own)

    def p(a: np.ndarray, q: float) -> float:
        return float(np.percentile(a, q)) if len(a) else float("nan")

    # The stream's own p99 (counted in samples, as in `make bench`'s streaming rows) beside the p99 measured here on
    # the wall clock: what the service and the network add is the difference.
    return {"streams": streams, "beats": len(lat), "errors": len(errors), "p50_s": p(lat, 50), "p99_s": p(lat, 99),
            "p99_stream_s": p(own_lat, 99)}


def print_service(clients: int = 8, per_client: int = 3, streams: int = 50, seconds: float = 60.0,
                  chunks_s: tuple[float, ...] = (1.0, 0.25)) -> dict:
    server = Server()
    runs = []
    try:
        up = bench_uploads(server.url, clients, per_client)
        upload_rss = server.peak_rss_mb()
        # The model as trained is a row of its own only where the shipped model carries a whole-record setting.
        as_trained = (bench_uploads(server.url, clients, per_client, adapt=False)
                      if model_info().get("whole_record") else None)
        for chunk_s in chunks_s:
            server.ps.cpu_percent(None)
            st = bench_streams(server.url, streams, seconds, chunk_s)
            runs.append((chunk_s, st, server.ps.cpu_percent(None), server.peak_rss_mb()))
    finally:
        server.stop()
    print(f"web service (published model, {Path(sys.executable).name}, one uvicorn process, 2 worker threads):")
    print(f"  {clients} clients x {per_client} uploads of 30-min records: {up['records_per_s']:.2f} records/s, "
          f"latency p50 {up['p50_s']:.1f} s / p99 {up['p99_s']:.1f} s, failed {up['failed']} (target 0), "
          f"server peak RSS {upload_rss:.0f} MB; target >= 4 records/s")
    if as_trained:
        print(f"  the same with adapt=false (the model as trained): {as_trained['records_per_s']:.2f} records/s, "
              f"latency p50 {as_trained['p50_s']:.1f} s / p99 {as_trained['p99_s']:.1f} s, failed {as_trained['failed']}")
    for chunk_s, st, cpu, rss in runs:
        print(f"  {st['streams']} WebSocket streams at real time for {seconds:g} s in {chunk_s:g} s chunks: "
              f"{st['beats']:,} beats, latency from the R peak p50 {st['p50_s']:.2f} s / p99 {st['p99_s']:.2f} s "
              f"(target p99 < 2.5 s; the stream's own p99 {st['p99_stream_s']:.2f} s), errors {st['errors']}, server CPU {cpu:.0f} % of one core, peak RSS {rss:.0f} MB")
    return {"clients": clients, "per_client": per_client, "uploads": up,
            **({"uploads_as_trained": as_trained} if as_trained else {}),
            "upload_peak_rss_mb": upload_rss,
            "seconds": seconds, "streams": [{"chunk_s": c, **st, "cpu_percent": cpu, "peak_rss_mb": rss}
                                            for c, st, cpu, rss in runs]}
