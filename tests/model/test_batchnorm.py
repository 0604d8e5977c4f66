"""Adapting the exported graph to a record without PyTorch gives the model `adapt_batchnorm` gives in PyTorch."""

import numpy as np
import pytest

from ecg_utils.errors import DataError
from ecg_utils.model.batchnorm import Adaptation, StatisticsMeter, decode_norms, measured_rows, pack, unpack
from ecg_utils.model.checkpoint import ensemble_checkpoint, save_checkpoint
from ecg_utils.model.export import export_onnx
from ecg_utils.model.inference import load_classifier
from ecg_utils.model.sources import SequenceData


@pytest.fixture(scope="module")
def ensemble(tiny_model, tiny_rhythm_model, tmp_path_factory):
    """A two-member ensemble (the same run twice is enough to exercise the member axis) as checkpoint and export."""
    folder = tmp_path_factory.mktemp("ens")
    save_checkpoint(ensemble_checkpoint([tiny_model, tiny_model]), folder / "ens.pt")
    return folder / "ens.pt", export_onnx(folder / "ens.pt", folder / "ens.onnx", Adaptation("all", 0.5))


def _record(small, classifier, record="100"):
    """All beats of one DS2 record as the classifier takes them (each beat beside its running template)."""
    ds, _ = small
    data = SequenceData.from_dataset(ds)
    rows = np.flatnonzero(ds.record == record)
    return data.x[rows].numpy(), data.rr[rows].numpy()[:, :4]


def _probabilities(classifier, x, rr):
    history = np.zeros((classifier.context - 1, classifier.dim), np.float32)
    return classifier.run(x, rr, history)[0]


@pytest.mark.parametrize("layers,weight", [("all", 0.5), ("conv", 1.0), ("rr", 0.25)])
def test_onnx_runtime_adapts_as_pytorch_does(small, ensemble, layers, weight):
    ckpt, onnx_path = ensemble
    torch_clf, onnx_clf = load_classifier(ckpt), load_classifier(onnx_path)
    x, rr = _record(small, onnx_clf)
    adaptation = Adaptation(layers, weight, max_beats=1000)  # record 100 has more beats: evenly spaced ones measured
    assert len(x) > 1000
    before = _probabilities(onnx_clf, x, rr)
    ours = _probabilities(onnx_clf.adapt(x, rr, adaptation), x, rr)
    ref = _probabilities(torch_clf.adapt(x, rr, adaptation), x, rr)
    assert np.abs(ours - ref).max() < 1e-4
    assert np.mean(ours.argmax(1) == ref.argmax(1)) == 1.0
    assert np.abs(ours - before).max() > 1e-3  # the adaptation changed the model
    np.testing.assert_array_equal(_probabilities(onnx_clf, x, rr), before)  # and left the loaded one as it was


def test_weight_zero_is_the_model_as_trained(small, ensemble):
    onnx_clf = load_classifier(ensemble[1])
    x, rr = _record(small, onnx_clf)
    same = onnx_clf.adapt(x, rr, Adaptation("all", 0.0))
    assert np.abs(_probabilities(same, x, rr) - _probabilities(onnx_clf, x, rr)).max() < 1e-5


def test_the_export_carries_the_published_setting_and_the_norms(ensemble, tiny_onnx):
    clf = load_classifier(ensemble[1])
    assert clf.adaptation == Adaptation("all", 0.5)
    assert load_classifier(tiny_onnx).adaptation is None  # exported without a setting: used as trained by default
    norms = decode_norms(clf._norms)
    assert [c["w"] for c in norms["convs"]] == ["conv0_w", "conv1_w", "conv2_w"]
    assert norms["convs"][0]["gamma"].shape == (16,) and norms["rr"]["w_rr"].shape == (2, 16, 8)  # 4 RR intervals, 4 ratios


def test_a_model_without_norms_says_how_to_get_them(small, tiny_onnx, tmp_path):
    import onnx

    proto = onnx.load(str(tiny_onnx))
    kept = [p for p in proto.metadata_props if p.key != "norms"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(tmp_path / "old.onnx"))
    clf = load_classifier(tmp_path / "old.onnx")
    x, rr = _record(small, clf)
    with pytest.raises(DataError, match="export it again"):
        clf.adapt(x, rr, Adaptation("all", 0.5))


def test_statistics_in_pieces_are_the_statistics_of_the_whole():
    y = np.random.default_rng(0).normal(2.0, 3.0, (50, 4, 9)).astype(np.float32)
    meter = StatisticsMeter()
    for i in range(0, 50, 7):
        meter.add(y[i:i + 7])
    mean, biased, unbiased = meter.moments()
    flat = y.transpose(1, 0, 2).reshape(4, -1).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(1), rtol=1e-10)
    np.testing.assert_allclose(biased, flat.var(1), rtol=1e-8)
    np.testing.assert_allclose(unbiased, flat.var(1, ddof=1), rtol=1e-8)


def test_packed_arrays_are_exact_and_settings_are_checked():
    a = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)
    assert np.array_equal(unpack(pack(a)), a)
    assert len(measured_rows(10_000, 100)) == 100
    for bad in ({"layers": "head", "weight": 0.5}, {"layers": "all", "weight": 1.5}, {"layers": "all", "weight": 0.5,
                                                                                      "max_beats": 1}):
        with pytest.raises(ValueError):
            Adaptation(**bad)


def _without_adapter(path, out, adapter=None):
    """`path` as an export made before the `adapter` metadata existed (or with `adapter` as that metadata)."""
    import onnx

    proto = onnx.load(str(path))
    kept = {p.key: p.value for p in proto.metadata_props if p.key != "adapter"}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, kept | ({"adapter": adapter} if adapter is not None else {}))
    out.write_bytes(proto.SerializeToString())
    return out


def test_the_exported_adapter_is_what_an_older_export_cuts_at_run_time(small, ensemble, tmp_path):
    """The weights and prefix graphs the export carries give the adapted probabilities, bit for bit, that an export
    without them gets from the graph at run time (the onnx package)."""
    shipped, older = load_classifier(ensemble[1]), load_classifier(_without_adapter(ensemble[1], tmp_path / "old.onnx"))
    assert shipped._adapter_text is not None and older._adapter_text is None
    x, rr = _record(small, shipped)
    setting = Adaptation("all", 0.5, max_beats=1000)
    np.testing.assert_array_equal(_probabilities(shipped.adapt(x, rr, setting), x, rr),
                                  _probabilities(older.adapt(x, rr, setting), x, rr))


def test_adapting_an_export_needs_onnx_runtime_only(small, ensemble, tmp_path):
    """In a fresh process, loading the export and adapting it to a record never imports the onnx package (about a
    second to import, a third of classifying a 30-minute record)."""
    import subprocess
    import sys

    x, rr = _record(small, load_classifier(ensemble[1]))
    np.savez(tmp_path / "beats.npz", x=x, rr=rr)
    code = ("import sys, numpy as np\n"
            "from ecg_utils.model.batchnorm import Adaptation\n"
            "from ecg_utils.model.inference import load_classifier\n"
            f"d = np.load({str(tmp_path / 'beats.npz')!r})\n"
            f"clf = load_classifier({str(ensemble[1])!r}).adapt(d['x'], d['rr'], Adaptation('all', 0.5))\n"
            "print('onnx' in sys.modules, len(clf._replaced) > 0)\n")  # adapted weights in place, no onnx
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("adapter", ["not json", '{"initial": {}, "prefixes": [{"model": "AAAA", "inputs": []}]}'])
def test_damaged_adapter_metadata_is_named_with_the_fix(small, ensemble, tmp_path, adapter):
    clf = load_classifier(_without_adapter(ensemble[1], tmp_path / "damaged.onnx", adapter))
    x, rr = _record(small, clf)
    with pytest.raises(DataError, match=r"damaged\.onnx: its `adapter` metadata is damaged .*export it again.*--no-adapt"):
        clf.adapt(x, rr, Adaptation("all", 0.5))
