"""Evaluate: what the models are worth, measured and written to `reports/`.

Modules: `protocols` (test-set and cross-validation scoring, EC57 figures, prediction files), `by_record` (EC57
gross and average statistics, the per-record table, leave one record out, errors by rhythm), `realtime` (reference,
detected and streamed beats), `robustness` (the noise stress test and the gate's calibration), `plots` (the
notebooks' figures), `report` (README's tables from `reports/`, `python -m ecg_utils.evaluate.report`). Sits beside
`serve`, never imported by it.
"""
