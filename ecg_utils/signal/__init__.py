"""Signal: from samples to beats, label-free and causal where a stream needs it.

Modules: `filters` (stream filters and resampling), `detect` (the R-peak detector), `quality` (the signal-quality
gate), `noise` (EC57 noise mixing), `preprocess` (band-pass, beat windows, RR features), `context` (the patient's
running template), `dataset` (every MIT-BIH beat through this stage, cached for training), `record_files` (the same beats as a folder per
record, read as needed). Imports only `data`.
"""
