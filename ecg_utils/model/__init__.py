"""Model: the beat classifiers and their life from training to the shipped file.

Modules: `architectures` (CNN–LSTM, CNN–GRU, CNN; `MODELS` registers a model), `checkpoint` (the one checkpoint
format), `sources` (what training reads: a dataset in memory, or a folder per record read as needed), `training` (in
one process or under torchrun), `wide` (the inference form: an ensemble's members in wide operators, each
beat encoded once), `export` (ONNX, `python -m ecg_utils.model.export`), `inference` (one interface over PyTorch
and ONNX Runtime), `publish` (ships the published model, `python -m ecg_utils.model.publish`), `shipped` (where the
shipped model is). Imports `data` and `signal`; the inference path loads neither PyTorch nor scikit-learn for ONNX.
"""
