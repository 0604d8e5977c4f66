"""Tested helpers behind the notebooks and the tools: MIT-BIH data, records in any format, preprocessing,
models, evaluation, noise and a signal-quality gate, and the published model served from the command line, as a
stream or over the web."""

import warnings

# wfdb 4.3.1 calls a pandas API that pandas 3.1 deprecates, warning on every import; the
# warning is about wfdb's code, not ours, and would otherwise clutter every notebook.
warnings.filterwarnings("ignore", message="The inplace keyword", module=r"wfdb\.")

__version__ = "0.1.0"
