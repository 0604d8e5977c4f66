"""ONNX export: ONNX Runtime gives PyTorch's probabilities on real beats, and the file says how to feed it."""

import numpy as np
import onnxruntime as ort
import pytest

from ecg_utils.errors import DataError
from ecg_utils.model.checkpoint import ensemble_checkpoint, load_model, save_checkpoint
from ecg_utils.model.export import GRAPH_VERSION, export_onnx, main, max_difference, read_metadata
from ecg_utils.model.sources import SequenceData


@pytest.fixture(scope="module")
def exported(tiny_model, tiny_onnx):
    return tiny_model, tiny_onnx


@pytest.mark.parametrize("batch", [1, 256])
def test_onnx_runtime_matches_pytorch_on_real_beats(small, exported, batch):
    """A chunk of consecutive test beats with the encodings before it: the probabilities of the model as trained
    (each beat's window of encodings, classified) within 1e-4, the same classes, each beat encoded once."""
    from ecg_utils.model.wide import reference

    ds, split = small
    ckpt, onnx_path = exported
    model, _ = load_model(ckpt)
    data = SequenceData.from_dataset(ds)
    rows = split.test[:batch + model.context - 1]
    history = reference(model, data.x[rows[:model.context - 1]], data.rr[rows[:model.context - 1]])[1]
    x, rr = data.x[rows[model.context - 1:]], data.rr[rows[model.context - 1:]]
    ref, ref_enc = (t.numpy() for t in reference(model, x, rr, history))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out, out_enc = session.run(None, {"x": x.numpy(), "rr": rr[:, :4].numpy(), "history": history.numpy()})
    assert out.shape == (batch, 5) and out_enc.shape == (batch, model.dim)
    assert np.abs(out - ref).max() < 1e-4 and np.abs(out_enc - ref_enc).max() < 1e-4
    np.testing.assert_array_equal(out.argmax(1), ref.argmax(1))
    assert batch == 1 or len({tuple(p.round(3)) for p in out}) > 1  # real beats, different answers


def test_an_ensemble_exports_as_one_model(tiny_model, tmp_path):
    save_checkpoint(ensemble_checkpoint([tiny_model, tiny_model]), tmp_path / "ens.pt")
    out = export_onnx(tmp_path / "ens.pt", tmp_path / "ens.onnx")
    meta = read_metadata(out)
    assert meta["dim"] == 2 * read_metadata(tiny_model.with_name("model.onnx"))["dim"]
    assert max(max_difference(tmp_path / "ens.pt", out, n) for n in (1, 256)) < 1e-4


def test_metadata_says_how_to_prepare_inputs(small, exported):
    ds, _ = small
    meta = read_metadata(exported[1])
    assert meta["classes"] == ["N", "S", "V", "F", "Q"]
    assert (meta["fs"], meta["window"], meta["before"]) == (360.0, 252, 90)
    assert meta["rr_features"] == ["pre_rr", "post_rr", "local_rr", "mean_rr"]
    assert meta["preprocess_config"] == ds.config and meta["normalize"] == "record"
    assert meta["model"] == "cnn_lstm" and meta["protocol"] == "inter_patient"
    assert (meta["context"], meta["dim"], meta["graph"]) == (4, 16, GRAPH_VERSION)


def test_a_rhythm_model_exports_with_its_six_rr_features(tiny_rhythm_model, tmp_path):
    from ecg_utils.model.inference import load_classifier

    out = export_onnx(tiny_rhythm_model, tmp_path / "rhythm.onnx")
    assert read_metadata(out)["rr_features"] == ["pre_rr", "post_rr", "local_rr", "mean_rr", "sinus_rr", "irregularity"]
    assert load_classifier(out).rhythm and load_classifier(tiny_rhythm_model).rhythm
    assert max(max_difference(tiny_rhythm_model, out, n) for n in (1, 256)) < 1e-4


def test_cli(exported, tmp_path, capsys):
    assert main(["--model", str(exported[0]), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "max |difference| vs PyTorch on random inputs, batch 1 and 256" in capsys.readouterr().out
    assert main(["--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.onnx")]) == 1
    assert "no checkpoint at" in capsys.readouterr().err


def test_export_carries_no_paths_of_the_exporting_machine(exported):
    """The exporter's per-node debug records (stack traces with file paths) are dropped before shipping."""
    import onnx

    checkpoint, path = exported
    proto = onnx.load(str(path))
    assert not any(len(n.metadata_props) for n in proto.graph.node)
    raw = path.read_bytes()
    assert b"site-packages" not in raw and b"ecg_utils/model/architectures.py" not in raw
    assert str(checkpoint.parent).encode() not in raw


@pytest.fixture(scope="module")
def version2_file(exported, tmp_path_factory):
    """`tiny_onnx` as graph version 2 wrote it: same weights and metadata, the recurrence unrolled."""
    import onnx

    from ecg_utils.model.export import _write
    from tests.model.version2 import Version2

    checkpoint, path = exported
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props} | {"graph": "2"}
    return _write(Version2(load_model(checkpoint)[0]).eval(), meta, tmp_path_factory.mktemp("v2") / "v2.onnx")


def test_a_version2_export_upgrades_with_its_weights_and_metadata(exported, version2_file, tmp_path):
    """No checkpoint needed: the upgraded file can run each member's recurrence as one native operator (short chunks;
    version 2 always unrolled it into a dozen operators a step), gives version 2's answers and PyTorch's at 1 and 256
    beats (either branch), and keeps every metadata field but the version."""
    import onnx

    from ecg_utils.model.export import onnx_difference, upgrade_onnx
    from ecg_utils.model.inference import load_classifier

    checkpoint, _ = exported
    with pytest.raises(DataError, match=r"v2\.onnx holds graph version 2.*--upgrade"):
        load_classifier(version2_file)
    out, _ = upgrade_onnx(version2_file, tmp_path / "v3.onnx")
    old, new = onnx.load(str(version2_file)), onnx.load(str(out))
    branches = {a.name: [n.op_type for n in a.g.node] for n in new.graph.node if n.op_type == "If" for a in n.attribute}
    assert branches["then_branch"].count("LSTM") == 1 and "LSTM" not in branches["else_branch"]
    assert len(branches["then_branch"]) < len(branches["else_branch"])
    assert "LSTM" not in [n.op_type for n in old.graph.node] and "If" not in [n.op_type for n in old.graph.node]
    assert max(onnx_difference(version2_file, out, n) for n in (1, 256)) < 1e-5
    assert max(max_difference(checkpoint, out, n) for n in (1, 256)) < 1e-4
    before, after = read_metadata(version2_file), read_metadata(out)
    assert after["graph"] == GRAPH_VERSION and before.pop("graph") == 2
    assert {k: v for k, v in after.items() if k not in ("graph", "adapter")} == {
        k: v for k, v in before.items() if k != "adapter"}
    assert after["adapter"]  # cut from the new graph, for adapting with ONNX Runtime alone
    assert load_classifier(out).context == 4


def test_only_older_exports_upgrade(exported, tmp_path, capsys):
    from ecg_utils.model.export import upgrade_onnx

    with pytest.raises(DataError, match=r"holds graph version 3 in this ecg_utils' form already"):
        upgrade_onnx(exported[1], tmp_path / "x.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 100)
    assert main(["--upgrade", str(bad), "--out", str(tmp_path / "x.onnx")]) == 1
    assert "bad.onnx is not an ONNX export of this repo" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_a_version3_export_without_the_adapter_gets_it_graph_and_weights_untouched(exported, tmp_path):
    """An export made before the `adapter` metadata existed (the published model of 2026-12-06) is given it: the same
    graph and weights, every other metadata field as it was, the adapter the export itself writes."""
    import onnx

    from ecg_utils.model.export import upgrade_onnx

    proto = onnx.load(str(exported[1]))
    meta = {p.key: p.value for p in proto.metadata_props}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {k: v for k, v in meta.items() if k != "adapter"})
    older = tmp_path / "older.onnx"
    older.write_bytes(proto.SerializeToString())
    out, diff = upgrade_onnx(older, older)  # in place, as publish --upgrade does
    new = onnx.load(str(out))
    assert diff == 0.0 and new.graph == onnx.load(str(exported[1])).graph
    assert {p.key: p.value for p in new.metadata_props} == meta  # the adapter as the export wrote it


def test_cli_upgrade(version2_file, tmp_path, capsys):
    assert main(["--upgrade", str(version2_file), "--out", str(tmp_path / "v3.onnx")]) == 0
    assert "graph version 3); max |difference| vs" in capsys.readouterr().out
    assert read_metadata(tmp_path / "v3.onnx")["graph"] == GRAPH_VERSION
