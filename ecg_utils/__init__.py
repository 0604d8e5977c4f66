"""Heartbeat classification on MIT-BIH with a hybrid CNN–LSTM: the tested package behind the notebooks and tools.

Subpackages follow a beat from file to class, and import downward only (tests/test_layout.py checks it):
`data` (databases, records in any format, AAMI classes, splits) → `signal` (filters, R-peak detector, quality gate,
noise mixing, beat windows, RR features, running template) → `model` (architectures, checkpoints, training, ONNX
export, inference, the shipped model) → `classify` and `streaming` (a whole record, or a live stream, to classes)
→ `evaluate` (protocols, real time, noise, plots, report tables) and `serve` (web service, app). At the top: the
command lines `predict` and `bench`; beside everything: `errors`, `paths`, `atomic`, `params`, `metrics`.
"""

import warnings

# wfdb 4.3.1 calls a pandas API that pandas 3.1 deprecates, warning on every import; the
# warning is about wfdb's code, not ours, and would otherwise clutter every notebook.
warnings.filterwarnings("ignore", message="The inplace keyword", module=r"wfdb\.")

__version__ = "0.1.0"
