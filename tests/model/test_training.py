import numpy as np
import pandas as pd
import pytest
import torch

from ecg_utils.metrics import accuracy, macro_f1
from ecg_utils.model import training
from ecg_utils.model.checkpoint import FORMAT_VERSION, load_model
from ecg_utils.model.sources import SequenceData
from ecg_utils.model.training import TrainConfig, class_counts, class_weights, context_index, epoch_chunks, train

TINY = {"channels": (8, 16, 16), "context": 4, "dim": 16, "hidden": 16, "head": 16}


def _config(**kw):
    return TrainConfig(**{"model": "cnn_lstm", "model_params": TINY, "epochs": 4, "batch_size": 64, "chunk": 16,
                          "normal_keep": 0.2, "lr": 5e-3, "patience": 10, **kw})


def _history(run_dir):
    return pd.read_csv(run_dir / "history.csv").drop(columns=["train_seconds", "seconds"])


def _weights(path):
    return torch.load(path, weights_only=True)["model_state"]


def test_short_run_on_real_beats_lowers_the_loss(small, tmp_path):
    ds, split = small
    result = train(_config(), ds, split, tmp_path / "run", progress=False)
    h = result.history
    assert len(h) == 4 and h.train_loss.iloc[-1] < 0.7 * h.train_loss.iloc[0]
    # better than calling every validation beat N (86.5 % of them): accuracy and macro F1 clear that baseline
    y = ds.label[split.val]
    all_n = np.full(len(y), "N")
    assert h.val_acc.iloc[-1] > accuracy(y, all_n) + 0.05 and h.val_macro_f1.iloc[-1] > macro_f1(y, all_n) + 0.15
    model, ckpt = load_model(tmp_path / "run" / "best.pt")
    assert ckpt.epoch == result.best_epoch and ckpt.records("test") == ["100"] and ckpt.format_version == FORMAT_VERSION
    assert list(ckpt.preprocess.records) == ["100", "101", "106", "119", "208"]
    assert not model.training and ckpt.n_params == model.n_params and ckpt.val_macro_f1 == result.best_val_macro_f1


def test_same_seed_same_history_and_weights(small, tmp_path):
    ds, split = small
    a = train(_config(epochs=2), ds, split, tmp_path / "a", progress=False)
    b = train(_config(epochs=2), ds, split, tmp_path / "b", progress=False)
    pd.testing.assert_frame_equal(_history(a.run_dir), _history(b.run_dir))
    for k, v in _weights(a.run_dir / "best.pt").items():
        assert torch.equal(v, _weights(b.run_dir / "best.pt")[k]), k
    # The checkpoint records no wall-clock time: the same run writes the same file.
    assert (a.run_dir / "best.pt").read_bytes() == (b.run_dir / "best.pt").read_bytes()
    c = train(_config(epochs=2, seed=1), ds, split, tmp_path / "c", progress=False)
    assert not _history(c.run_dir).equals(_history(a.run_dir))


@pytest.mark.parametrize("rhythm_weight", [0.0, 0.5])
def test_killed_run_resumes_to_the_same_result(small, tmp_path, monkeypatch, rhythm_weight):
    ds, split = small
    full = train(_config(rhythm_weight=rhythm_weight), ds, split, tmp_path / "full", progress=False)

    real, calls = training._write_history, []

    def killed_after_epoch_2(run_dir, history):
        real(run_dir, history)
        calls.append(len(history))
        if len(history) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_write_history", killed_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(_config(rhythm_weight=rhythm_weight), ds, split, tmp_path / "killed", progress=False)
    assert len(pd.read_csv(tmp_path / "killed" / "history.csv")) == 2
    train(_config(rhythm_weight=rhythm_weight), ds, split, tmp_path / "killed", progress=False)
    assert calls == [1, 2, 3, 4]  # epochs 3 and 4 ran after the restart, 1 and 2 did not run again
    pd.testing.assert_frame_equal(_history(full.run_dir), _history(tmp_path / "killed"))
    for name in ("best.pt", "last.pt"):
        for k, v in _weights(full.run_dir / name).items():
            assert torch.equal(v, _weights(tmp_path / "killed" / name)[k]), (name, k)


def test_finished_run_is_not_trained_again(small, tmp_path, monkeypatch):
    ds, split = small
    first = train(_config(epochs=2), ds, split, tmp_path / "run", progress=False)
    monkeypatch.setattr(training, "_write_history", lambda *a: pytest.fail("trained again"))
    again = train(_config(epochs=2), ds, split, tmp_path / "run", progress=False)
    assert again.best_epoch == first.best_epoch and len(again.history) == 2


def test_a_run_stored_before_a_setting_was_added_resumes_with_its_default(small, tmp_path, monkeypatch):
    ds, split = small
    train(_config(epochs=2), ds, split, tmp_path / "run", progress=False)
    for name in ("last.pt", "best.pt"):  # as a run trained before `rhythm_weight` existed stored itself
        state = torch.load(tmp_path / "run" / name, weights_only=True)
        del state["train_config"]["rhythm_weight"]
        torch.save(state, tmp_path / "run" / name)
    monkeypatch.setattr(training, "_write_history", lambda *a: pytest.fail("trained again"))
    again = train(_config(epochs=2), ds, split, tmp_path / "run", progress=False)
    assert len(again.history) == 2 and not (tmp_path / "run.previous").exists()


def test_the_rhythm_head_trains_beside_the_classes_and_stays_out_of_the_checkpoint(small, tmp_path):
    ds, split = small
    data = SequenceData.from_dataset(ds)
    model = training.build_model("cnn_lstm", **TINY)
    step = training.SequenceStep(model, 4)
    rows = split.train[ds.record[split.train] == "208"][:200]
    weights, total = torch.ones(5), torch.tensor(200.0)
    assert (data.rhythm[rows] >= 0).all() and len(set(data.rhythm[rows].tolist())) > 1  # 208: sinus and bigeminy
    torch.manual_seed(0)
    loss, logits = training.step_loss(step, data, rows, weights, model.context, total, rhythm_weight=0.5)
    torch.manual_seed(0)
    plain, _ = training.step_loss(training.SequenceStep(model), data, rows, weights, model.context, total)
    unknown = SequenceData(**{**data.__dict__, "rhythm": torch.full_like(data.rhythm, -1)})
    torch.manual_seed(0)
    ignored, _ = training.step_loss(step, unknown, rows, weights, model.context, total, rhythm_weight=0.5)
    shuffled = SequenceData(**{**data.__dict__, "rhythm": data.rhythm[torch.randperm(len(data.rhythm))]})
    torch.manual_seed(0)
    other, _ = training.step_loss(step, shuffled, rows, weights, model.context, total, rhythm_weight=0.5)
    # The rhythm loss adds to the class loss, reads the beats' rhythms, and beats of unknown rhythm add nothing.
    assert loss > plain and torch.isclose(ignored, plain) and not torch.isclose(other, loss)
    assert logits.shape == (200, 5)

    with_rhythm = train(_config(epochs=1, rhythm_weight=0.5), ds, split, tmp_path / "rhythm", progress=False)
    without = train(_config(epochs=1), ds, split, tmp_path / "plain", progress=False)
    a, b = _weights(with_rhythm.run_dir / "best.pt"), _weights(without.run_dir / "best.pt")
    assert a.keys() == b.keys() and not all(torch.equal(a[k], b[k]) for k in a)  # another model, the same form
    assert "rhythm_head_state" in torch.load(with_rhythm.run_dir / "last.pt", weights_only=True)
    assert load_model(with_rhythm.run_dir / "best.pt")[1].train_config["rhythm_weight"] == 0.5


def test_another_configuration_starts_over_and_keeps_the_old_run(small, tmp_path):
    ds, split = small
    train(_config(epochs=1), ds, split, tmp_path / "run", progress=False)
    old = _weights(tmp_path / "run" / "best.pt")
    with pytest.warns(UserWarning, match="does not fit this one.*moved it to run.previous"):
        result = train(_config(epochs=1, lr=1e-3), ds, split, tmp_path / "run", progress=False)
    assert len(result.history) == 1
    assert load_model(tmp_path / "run" / "best.pt")[1].train_config["lr"] == 1e-3
    previous = _weights(tmp_path / "run.previous" / "best.pt")
    assert all(torch.equal(previous[k], v) for k, v in old.items())


def test_bad_parameters(small, tmp_path):
    ds, split = small
    with pytest.raises(ValueError, match=r"unknown training parameter\(s\) \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="unknown model 'lstm'"):
        TrainConfig(model="lstm")
    with pytest.raises(ValueError, match="epochs, batch_size"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="rhythm_weight >= 0"):
        TrainConfig(rhythm_weight=-1)
    with pytest.raises(ValueError, match="rhythm_weight=0.5: model 'ensemble' has no `features`"):
        TrainConfig(model="ensemble", model_params={"model": "cnn", "model_params": {}, "members": 2},
                    rhythm_weight=0.5)
    empty = type(split)("inter_patient", split.train, np.array([], dtype=np.int64), split.test, split.records, {})
    with pytest.raises(ValueError, match="empty train or validation part"):
        train(_config(), ds, empty, tmp_path / "run", progress=False)


def test_epoch_chunks_keep_every_rare_beat_and_a_share_of_normal_chunks():
    y = np.array([0] * 40 + [1] + [0] * 19 + [0] * 40)
    start = np.repeat([0, 60], [60, 40])  # two records: rows 0-59 and 60-99
    targets = np.arange(100)
    chunks = epoch_chunks(y, start, targets, 10, 0.5, np.random.default_rng(0))
    rows = np.concatenate(chunks)
    assert 40 in rows  # the S beat's chunk is always drawn
    assert len(chunks) == 1 + round(0.5 * 9) and len(set(rows.tolist())) == len(rows)
    assert all(len(set(start[c])) == 1 and (np.diff(c) == 1).all() for c in chunks)  # one record, consecutive
    again = epoch_chunks(y, start, targets, 10, 0.5, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(chunks, again))
    w = class_weights(class_counts(torch.from_numpy(y[rows])), 0.5)
    assert w[2] == 0 and w[1] > w[0]


def test_context_index_stops_at_the_record_start():
    start = np.repeat([0, 3], [3, 4])
    idx = context_index(np.array([0, 2, 3, 6]), start, 3)
    np.testing.assert_array_equal(idx, [[-1, -1, 0], [0, 1, 2], [-1, -1, 3], [4, 5, 6]])


def test_sequence_data_holds_beat_and_template_channels(small):
    ds, _ = small
    data = SequenceData.from_dataset(ds)
    assert data.x.shape == (len(ds), 2, ds.signal.shape[1]) and len(data) == len(ds)
    first = np.flatnonzero(np.r_[True, ds.record[1:] != ds.record[:-1]])
    np.testing.assert_array_equal(data.start[first], first)
    # A record's first beat is its own template: the difference channel is zero there.
    assert float(data.x[first, 1].abs().max()) == 0.0


def test_augmentation_keeps_shape_and_is_seeded():
    x = torch.randn(16, 2, 252)
    a = training.augment_batch(x, torch.Generator().manual_seed(0))
    b = training.augment_batch(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    step = torch.zeros(1, 1, 252)
    step[..., 126:] = 1.0
    shifted = training.augment_batch(step, torch.Generator().manual_seed(3), max_shift=5)
    edge = int(torch.argmax((shifted[0, 0] > shifted[0, 0].mean()).int()))
    assert abs(edge - 126) <= 5  # the step moved by at most 5 samples, nothing wrapped around


def _teacher_saying(ds, split, cls):
    """Probabilities that put every training beat in class `cls` (NaN on the other rows, as `teacher_proba` leaves)."""
    proba = np.full((len(ds), 5), np.nan, np.float32)
    proba[split.train] = np.eye(5, dtype=np.float32)[cls]
    return proba


def test_distillation_pulls_the_student_to_its_teacher(small, tmp_path):
    # The whole loss on a teacher that calls every beat V: the student calls most validation beats V, which the
    # reference classes alone never teach it; half the loss on the reference keeps it nearer them.
    ds, split = small
    config = _config(epochs=2, distil_weight=1.0, teacher="every beat V")
    pulled = train(config, ds, split, tmp_path / "pulled", progress=False, teacher=_teacher_saying(ds, split, 2))
    model, ckpt = load_model(pulled.run_dir / "best.pt")
    data = SequenceData.from_dataset(ds)
    called_v = (training.predict_proba(model, data, split.val).argmax(axis=1) == 2).mean()
    plain = train(_config(epochs=2), ds, split, tmp_path / "plain", progress=False)
    plain_v = (training.predict_proba(load_model(plain.run_dir / "best.pt")[0], data, split.val).argmax(axis=1) == 2)
    assert called_v > 0.8 and plain_v.mean() < 0.3, (called_v, plain_v.mean())
    assert ckpt.train_config["teacher"] == "every beat V" and ckpt.train_config["distil_weight"] == 1.0


def test_distillation_reads_no_validation_row_and_checks_its_teacher(small, tmp_path):
    ds, split = small
    teacher = _teacher_saying(ds, split, 0)
    # Validation rows are NaN: a run that read one would have a NaN loss and no finite figures.
    result = train(_config(epochs=1, distil_weight=0.5, teacher="N"), ds, split, tmp_path / "a", progress=False,
                   teacher=teacher)
    assert np.isfinite(result.history.train_loss).all()
    with pytest.raises(ValueError, match="teacher named exactly when the weight is above 0"):
        TrainConfig(distil_weight=0.5)
    with pytest.raises(ValueError, match="teacher named exactly when the weight is above 0"):
        TrainConfig(teacher="x")
    with pytest.raises(ValueError, match="a weight between 0 and 1"):
        TrainConfig(distil_weight=1.5, teacher="x")
    with pytest.raises(ValueError, match="needs the teacher's probabilities"):
        train(_config(distil_weight=0.5, teacher="N"), ds, split, tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="needs the teacher's probabilities, one row of 5 per beat"):
        train(_config(distil_weight=0.5, teacher="N"), ds, split, tmp_path / "b", progress=False, teacher=teacher[:10])
    broken = teacher.copy()
    broken[split.train[3]] = np.nan
    with pytest.raises(ValueError, match="not finite rows summing to 1"):
        train(_config(distil_weight=0.5, teacher="N"), ds, split, tmp_path / "b", progress=False, teacher=broken)
    with pytest.raises(ValueError, match="distil_weight is 0"):
        train(_config(), ds, split, tmp_path / "b", progress=False, teacher=teacher)
