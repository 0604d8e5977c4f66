"""Benchmarks printed by `make bench` (`python -m ecg_utils.bench`): figures, not pass/fail tests.

Measures, in one run on this machine: wfdb alone reading all records and their annotations,
building the beat dataset from the raw files (cold, no cache), a cache hit, each model's
training and inference throughput, the R-peak detector's accuracy and speed, PyTorch vs ONNX
Runtime (throughput, single-beat latency, peak memory) and the streaming classifier (speed as a
multiple of real time, latency, peak memory), and scale-out (an archive on 1 and 2 worker processes and a Dask
LocalCluster of 2, training on 1 and 2 processes under torchrun, and a full fold training on 2 processes scored
beside the published fold model). Inference and streaming run on one thread, each in a
fresh process so that its peak memory is its own and an ONNX process never loads PyTorch.
"""
