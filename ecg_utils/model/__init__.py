"""Model: the beat classifiers and their life from training to the shipped file.

Modules: `architectures` (CNN–LSTM, CNN–GRU, CNN; `MODELS` registers a model), `checkpoint` (the one checkpoint
format), `training`, `export` (ONNX, `python -m ecg_utils.model.export`), `inference` (one interface over PyTorch
and ONNX Runtime), `publish` (ships the published model, `python -m ecg_utils.model.publish`), `shipped` (where the
shipped model is). Imports `data` and `signal`; the inference path loads neither PyTorch nor scikit-learn for ONNX.
"""
