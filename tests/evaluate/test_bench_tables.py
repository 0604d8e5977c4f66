"""docs/benchmarks.md's tables from `make bench`'s figures: each target judged met or not on the stored figure."""

from ecg_utils.evaluate.bench_tables import inference_markdown, long_markdown, service_markdown

STAMP = {"measured": "2026-12-05", "cores": 2}


def _stream(backend, chunk, seconds, growth=0.5):
    return {"backend": backend, "chunk_s": chunk, "seconds": seconds, "x_real_time": 1800 / seconds, "beats": 2270,
            "latency_p50": 1.5, "latency_p99": 2.4, "peak_rss_mb": 230.0, "rss_growth_mb": growth, "minutes": 30.0}


def test_inference_targets_and_the_models_share():
    inf = {**STAMP, "backends": {"onnxruntime": {"beats_per_s": 7000.0, "p50_ms": 0.3, "p99_ms": 0.5,
                                                 "peak_rss_mb": 250.0}},
           "streams": [_stream("onnxruntime", 1.0, 0.5), _stream("signal path alone", 1.0, 0.3),
                       _stream("onnxruntime", 0.1, 2.0, growth=2.5), _stream("signal path alone", 0.1, 1.5)]}
    text = inference_markdown(inf)
    assert "| onnxruntime | 7,000 beats/s | 0.30 / 0.50 ms | 250 MB |" in text
    assert "| onnxruntime, 1 s chunks | 0.50 s | 3,600 × |" in text and "| 0.67 |" in text  # (0.5 - 0.3) / 0.3
    assert "≥ 3,000 × real time in 1 s chunks: met (3,600 ×)" in text
    assert "≥ 1,000 × real time in 0.1 s chunks: not met (900 ×)" in text
    assert "model's time ≤ the signal path's in 0.1 s chunks: met (0.33)" in text
    assert "RSS growth after minute 3 < 2 MB: not met (+2.5 MB)" in text and "2026-12-05, 2 cores" in text


def test_long_record_and_service_targets():
    run = {"seconds": 14.0, "beats": 109_543, "peak_rss_mb": 450.0}
    text = long_markdown({**STAMP, "hours": 24.0, "block_s": 600.0, "blocks": run,
                          "whole": {**run, "seconds": 13.0, "peak_rss_mb": 2300.0}, "signal": {**run, "seconds": 7.0}})
    assert "| in 10-minute blocks (`predict`'s default) | 14.0 s | 109,543 | 450 MB |" in text
    assert "≤ 15 s in blocks: met; peak RSS < 500 MB: met; no slower than the whole record: not met" in text
    assert "the model's time at most the signal path's: met (1.00)" in text
    up = {"records_per_s": 4.2, "p50_s": 3.0, "p99_s": 4.0, "failed": 1}
    streams = [{"chunk_s": 1.0, "streams": 50, "beats": 3700, "errors": 0, "p50_s": 2.0, "p99_s": 2.4,
                "cpu_percent": 15.0, "peak_rss_mb": 600.0}]
    text = service_markdown({**STAMP, "clients": 8, "per_client": 3, "uploads": up, "upload_peak_rss_mb": 680.0,
                             "seconds": 60.0, "streams": streams})
    assert "≥ 4 records/s with no failure: not met" in text and "p99 < 2.5 s in 1 s chunks: met" in text
    assert "the stream's own p99" not in text  # a report from before it was measured
    streams[0]["p99_stream_s"] = 2.38
    text = service_markdown({**STAMP, "clients": 8, "per_client": 3, "uploads": up, "upload_peak_rss_mb": 680.0,
                             "seconds": 60.0, "streams": streams})
    assert "2.00 / 2.40 s from the R peak (the stream's own p99, in samples: 2.38 s) |" in text
