"""The checkpoint format: typed, versioned, readable without training's dependencies, and clear when it is not."""

import json
import subprocess
import sys

import pytest
import torch

from ecg_utils.errors import DataError
from ecg_utils.model.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    ensemble_checkpoint,
    load_model,
    read_checkpoint,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def ckpt(tiny_model) -> Checkpoint:
    return read_checkpoint(tiny_model)


def test_fields_are_read_by_name(ckpt, tiny_model):
    assert ckpt.format_version == FORMAT_VERSION and ckpt.model_name == "cnn_lstm"
    assert ckpt.protocol == "inter_patient" and ckpt.records("test") == ["100"]
    assert ckpt.classes == ["N", "S", "V", "F", "Q"]
    # the stored validation figure is the best epoch's, as the run's history has it
    history = json.loads((tiny_model.parent / "history.json").read_text())
    best = max(history, key=lambda row: row["val_macro_f1"])
    assert ckpt.val_macro_f1 == best["val_macro_f1"] and ckpt.epoch == best["epoch"]
    assert "seconds" not in ckpt.val and "train_seconds" not in ckpt.val and ckpt.preprocess.fs == 360


def test_round_trip_and_files_of_the_per_beat_models(ckpt, tmp_path):
    save_checkpoint(ckpt, tmp_path / "a.pt")
    model, again = load_model(tmp_path / "a.pt")
    assert again.to_dict().keys() == ckpt.to_dict().keys() and again.epoch == ckpt.epoch and not model.training
    for version in (0, 1):  # the per-beat models' formats (0: no version field)
        legacy = {k: v for k, v in ckpt.to_dict().items() if k != "format_version"} | (
            {"format_version": version} if version else {})
        torch.save(legacy, tmp_path / "old.pt")
        with pytest.raises(DataError, match=f"per-beat model \\(checkpoint format {version}\\).*train it again"):
            read_checkpoint(tmp_path / "old.pt")


def test_ensemble_of_fold_models(ckpt, tmp_path):
    save_checkpoint(ckpt, tmp_path / "a.pt")
    other = Checkpoint(**{**ckpt.to_dict(), "epoch": ckpt.epoch + 1, "val": {k: 0.5 for k in ckpt.val}})
    save_checkpoint(other, tmp_path / "b.pt")
    ens = ensemble_checkpoint([tmp_path / "a.pt", tmp_path / "b.pt"])
    save_checkpoint(ens, tmp_path / "ens.pt")
    model, again = load_model(tmp_path / "ens.pt")
    assert again.is_ensemble and again.model_params["members"] == 2 and again.n_params == 2 * ckpt.n_params
    assert model.n_params == again.n_params and again.records("test") == ckpt.records("test")
    assert again.val_macro_f1 == pytest.approx((ckpt.val_macro_f1 + 0.5) / 2)
    assert len(again.train_config["members"]) == 2
    gru = Checkpoint(**{**ckpt.to_dict(), "train_config": {**ckpt.train_config, "model": "gru"}})
    save_checkpoint(gru, tmp_path / "gru.pt")
    with pytest.raises(DataError, match="not a member like"):
        ensemble_checkpoint([tmp_path / "a.pt", tmp_path / "gru.pt"])


def test_unreadable_checkpoints_say_what_to_do(ckpt, tmp_path):
    torch.save({**ckpt.to_dict(), "format_version": FORMAT_VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(DataError, match="newer than this ecg_utils reads"):
        read_checkpoint(tmp_path / "new.pt")
    torch.save({"model_state": ckpt.model_state}, tmp_path / "bare.pt")
    with pytest.raises(DataError, match="lacks .*train_config.*not a checkpoint of this repo"):
        read_checkpoint(tmp_path / "bare.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(DataError, match="holds a list"):
        read_checkpoint(tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    other = {**ckpt.to_dict(), "train_config": {**ckpt.train_config, "model": "gru"}}
    torch.save(other, tmp_path / "other.pt")
    with pytest.raises(DataError, match="does not fit this repo's 'gru' model"):
        load_model(tmp_path / "other.pt")


def test_reading_a_checkpoint_loads_neither_training_nor_scikit_learn(tiny_model):
    code = (f"import sys; from ecg_utils.model.inference import load_classifier; load_classifier({str(tiny_model)!r}); "
            "print(sorted(m for m in ('sklearn', 'ecg_utils.model.training', 'ecg_utils.evaluate.protocols') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
