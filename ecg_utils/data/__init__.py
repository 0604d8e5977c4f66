"""Data: the databases on disk (PhysioNet downloads and checksums, MIT-BIH, the noise stress test), records read
by lead name in any format (WFDB, EDF, CSV), the AAMI class mapping and the two protocols' splits.

Modules: `physionet` (verified downloads), `mitdb` and `nstdb` (`python -m ecg_utils.data.mitdb`, `.nstdb`: the
data step), `records` (one WFDB record, lead by name), `readers` (any format, block by block), `aami` (symbols to
N, S, V, F, Q), `splits` (intra-patient, DS1 → DS2, DS1's patient-wise folds). Imports nothing above it.
"""
