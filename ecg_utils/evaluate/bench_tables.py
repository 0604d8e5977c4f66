"""docs/benchmarks.md's tables from reports/bench.json (`make bench`), each figure beside its target, so that no speed
figure is typed by hand. One function per part of the benchmark; `report.sections` calls them."""

from __future__ import annotations

from typing import Any

# The targets the benchmark prints, judged here on the stored figures.
STREAM_TARGETS = {1.0: 3000.0, 0.1: 1000.0}  # x real time by chunk length (s)
RSS_GROWTH_MB, LONG_S, LONG_RSS_MB, RATIO = 2.0, 15.0, 500.0, 1.0
UPLOADS_PER_S, STREAM_P99_S = 4.0, 2.5


def met(ok: bool) -> str:
    """A target's verdict in the tables."""
    return "met" if ok else "not met"


def _when(part: dict[str, Any]) -> str:
    return f"`make bench`, {part['measured']}, {part['cores']} cores"


def data_markdown(d: dict[str, Any]) -> str:
    return "\n".join([
        f"| data pipeline, {d['records']} records (best of {d['repeat']}; {_when(d)}) | | target |",
        "| --- | ---: | --- |",
        f"| wfdb alone: read all records (both leads) and their annotations | {d['wfdb_read_s']:.2f} s | |",
        (f"| build the dataset from the raw files (cold, no cache) | {d['build_cold_s']:.2f} s | < 10 s: "
        f"{met(d['build_cold_s'] < 10)} |"),
        (f"| cache hit: check only / and load all arrays | {1e3 * d['cache_hit_s']:.1f} ms / "
        f"{1e3 * d['cache_hit_and_load_s']:.0f} ms | < 2 s: {met(d['cache_hit_and_load_s'] < 2)} |"),
        f"| the dataset file | {d['dataset_mb']:.1f} MB | |"])


def models_markdown(m: dict[str, Any]) -> str:
    names = {"cnn_lstm": "CNN–LSTM", "gru": "CNN–GRU", "cnn": "CNN"}
    rows = [f"| {names.get(k, k)} | {r['params']:,} | {r['train_beats_per_s']:,.0f} beats/s | "
            f"{r['infer_beats_per_s']:,.0f} beats/s |" for k, r in m["models"].items()]
    return "\n".join([(f"| model as notebook 02 trains it, {m['threads']} threads, one member (beats in runs of 32 "
                       f"with their sequences; {_when(m)}) | parameters | training (batch 256) | inference (batch 1024) |"),
                      "| --- | ---: | ---: | ---: |", *rows])


def detector_markdown(d: dict[str, Any]) -> str:
    return (f"The R-peak detector on the 48 records ({_when(d)}): Se {100 * d['se']:.2f} %, +P {100 * d['ppv']:.2f} % "
            f"(EC57 counting; target ≥ 99.5 % each: {met(min(d['se'], d['ppv']) >= 0.995)}), "
            f"{d['s_per_record']:.2f} s per 30-minute record ({d['x_real_time']:,.0f} × real time).")


def inference_markdown(inf: dict[str, Any]) -> str:
    backends, streams = inf["backends"], inf["streams"]
    lines = [(f"| inference backend, one thread, fresh process each ({_when(inf)}) | 256 consecutive beats | "
             "one streamed beat, latency p50 / p99 | peak memory (RSS) |"), "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {r['beats_per_s']:,.0f} beats/s | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms | "
              f"{r['peak_rss_mb']:,.0f} MB |" for name, r in backends.items()]
    first = streams[0]
    lines += ["", (f"| streaming classifier, record 100 ({first['minutes']:.0f} min, {first['beats']:,} beats), one thread, "
                   "best of 3 | whole record | × real time | latency p50 / p99 | peak RSS | RSS growth after minute 3 "
                   "| model's time / signal path's |"), "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    verdicts = []
    for d in streams:
        alone = next(a for a in streams if a["backend"] == "signal path alone" and a["chunk_s"] == d["chunk_s"])
        ratio = None if d is alone else (d["seconds"] - alone["seconds"]) / alone["seconds"]
        lines.append(f"| {d['backend']}, {d['chunk_s']:g} s chunks | {d['seconds']:.2f} s | {d['x_real_time']:,.0f} × | "
                     f"{d['latency_p50']:.2f} / {d['latency_p99']:.2f} s | {d['peak_rss_mb']:,.0f} MB | "
                     f"{d['rss_growth_mb']:+.1f} MB | {'' if ratio is None else f'{ratio:.2f}'} |")
        if d["backend"] == "onnxruntime":
            target = STREAM_TARGETS.get(d["chunk_s"])
            if target:
                verdicts.append(f"≥ {target:,.0f} × real time in {d['chunk_s']:g} s chunks: "
                                f"{met(d['x_real_time'] >= target)} ({d['x_real_time']:,.0f} ×)")
            verdicts.append(f"model's time ≤ the signal path's in {d['chunk_s']:g} s chunks: {met(ratio <= RATIO)} "
                            f"({ratio:.2f})")
    growth = max(d["rss_growth_mb"] for d in streams if d["backend"] == "onnxruntime")
    verdicts.append(f"RSS growth after minute 3 < {RSS_GROWTH_MB:g} MB: {met(growth < RSS_GROWTH_MB)} "
                    f"({growth:+.1f} MB)")
    if {"onnxruntime", "pytorch"} <= set(backends):
        ort, pt = backends["onnxruntime"]["beats_per_s"], backends["pytorch"]["beats_per_s"]
        verdicts.append(f"ONNX Runtime at least PyTorch's throughput at 256 beats: {met(ort >= pt)}")
    return "\n".join(lines + ["", "Targets: " + "; ".join(verdicts) + "."])


def long_markdown(lr: dict[str, Any]) -> str:
    blocks, whole, alone = lr["blocks"], lr["whole"], lr["signal"]
    minutes = f"{lr['block_s'] / 60:g}-minute"
    ratio = (blocks["seconds"] - alone["seconds"]) / alone["seconds"]
    rows = [(f"in {minutes} blocks (`predict`'s default{', whole-record mode' if 'as_trained' in lr else ''})", blocks),
            *([(f"in {minutes} blocks, the model as trained (`--no-adapt`)", lr["as_trained"])] if "as_trained" in lr
              else []),
            ("the whole record in one block", whole),
            (f"in {minutes} blocks, signal path alone (the model replaced by a no-cost stand-in)", alone)]
    return "\n".join([
        (f"| one {lr['hours']:g}-hour record (the 48 MIT-BIH records end to end at 360 Hz), published model, ONNX "
         f"Runtime, one thread, fresh process each ({_when(lr)}) | time | beats | peak memory (RSS) |"),
        "| --- | ---: | ---: | ---: |",
        *[f"| {label} | {d['seconds']:.1f} s | {d['beats']:,} | {d['peak_rss_mb']:,.0f} MB |" for label, d in rows], "",
        (f"Targets: ≤ {LONG_S:g} s in blocks: {met(blocks['seconds'] <= LONG_S)}; peak RSS < {LONG_RSS_MB:g} MB: "
         f"{met(blocks['peak_rss_mb'] < LONG_RSS_MB)}; no slower than the whole record: "
         f"{met(blocks['seconds'] <= whole['seconds'])}; the model's time at most the signal path's: "
         f"{met(ratio <= RATIO)} ({ratio:.2f})."),
    ])


def service_markdown(sv: dict[str, Any]) -> str:
    up = sv["uploads"]
    lines = [f"| load ({_when(sv)}) | throughput | latency p50 / p99 | failed | server |",
             "| --- | ---: | ---: | ---: | --- |",
             (f"| {sv['clients']} clients uploading 30-minute WFDB records, {sv['per_client']} each, all at once | "
              f"{up['records_per_s']:.2f} records/s | {up['p50_s']:.1f} / {up['p99_s']:.1f} s per request | "
              f"{up['failed']} | peak RSS {sv['upload_peak_rss_mb']:,.0f} MB |")]
    if "uploads_as_trained" in sv:
        tr = sv["uploads_as_trained"]
        lines[-1] = lines[-1].replace("all at once |", "all at once, whole-record mode (the default) |")
        lines.append(f"| the same with `adapt=false` (the model as trained) | {tr['records_per_s']:.2f} records/s | "
                     f"{tr['p50_s']:.1f} / {tr['p99_s']:.1f} s per request | {tr['failed']} | |")
    for st in sv["streams"]:
        lines.append(f"| {st['streams']} WebSocket streams sent at real time for {sv['seconds']:g} s, {st['chunk_s']:g} s "
                     f"chunks ({st['beats']:,} beats) | – | {st['p50_s']:.2f} / {st['p99_s']:.2f} s from the R peak"
                     + (f" (the stream's own p99, in samples: {st['p99_stream_s']:.2f} s)" if "p99_stream_s" in st else "")
                     + " | "
                     f"{st['errors']} | {st['cpu_percent']:.0f} % of one core |")
    one_s = next((st for st in sv["streams"] if st["chunk_s"] == 1.0), None)
    verdicts = [(f"≥ {UPLOADS_PER_S:g} records/s with no failure: "
                f"{met(up['records_per_s'] >= UPLOADS_PER_S and up['failed'] == 0)}")]
    if one_s:
        verdicts.append(f"p99 < {STREAM_P99_S:g} s in 1 s chunks: {met(one_s['p99_s'] < STREAM_P99_S)}")
    return "\n".join(lines + ["", "Targets: " + "; ".join(verdicts) + "."])


#: Section name in the docs, the part of reports/bench.json it reads, and how it is written.
BENCH_SECTIONS = {"bench-data": ("data", data_markdown), "bench-models": ("models", models_markdown),
                  "bench-detector": ("detector", detector_markdown),
                  "bench-inference": ("inference", inference_markdown), "bench-long": ("long", long_markdown),
                  "bench-service": ("service", service_markdown)}
