"""The web service: every format gives predict's beats, the stream gives the streaming classifier's, bad requests get 4xx."""

import io
import json
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
import wfdb
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from ecg_utils.classify import classify_record
from ecg_utils.model.inference import load_classifier
from ecg_utils.model.shipped import MODEL_PATH, sha256
from ecg_utils.paths import REPORTS_DIR
from ecg_utils.serve.client import beats_frame
from ecg_utils.serve.service import FIELDS, Settings, create_app
from ecg_utils.streaming import StreamingClassifier
from tests.synthetic_records import write_csv, write_edf, write_record

SECONDS = 120


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings())) as c:
        yield c


@pytest.fixture(scope="module")
def rec(mitdb_dir, tmp_path_factory):
    """The first 2 minutes of record 119 (many V beats) as WFDB (with .atr), EDF and CSV."""
    folder = tmp_path_factory.mktemp("svc")
    full = wfdb.rdrecord(str(mitdb_dir / "119"), sampto=SECONDS * 360)
    ann = wfdb.rdann(str(mitdb_dir / "119"), "atr", sampto=SECONDS * 360)
    x = full.p_signal[:, 0]
    path = write_record(folder, "r119", x, 360, ann.sample, ann.symbol)
    return {"wfdb": path, "edf": write_edf(folder / "r119.edf", full.p_signal, 360, full.sig_name),
            "csv": write_csv(folder / "r119.csv", full.p_signal, full.sig_name, fs=360), "x": x}


def wfdb_files(path, with_atr=True):
    exts = ("hea", "dat", "atr") if with_atr else ("hea", "dat")
    return [("files", (f"{path.name}.{e}", path.with_name(f"{path.name}.{e}").read_bytes())) for e in exts]


def expected(path, **kw) -> pd.DataFrame:
    return classify_record(path, load_classifier(MODEL_PATH), progress=False, **kw).beats


def test_flat_and_clipped_stretches_are_reported_not_classified(client, rec, tmp_path):
    """Lead off for 20 s and a clipped stretch: no beats in the flat line, its length in the answer, clipped beats Q."""
    x = rec["x"].copy()
    x[30 * 360: 50 * 360] = x[30 * 360]
    x[70 * 360: 90 * 360] = np.minimum(x[70 * 360: 90 * 360], np.median(x) + 0.3 * (x.max() - np.median(x)))
    path = write_csv(tmp_path / "bad.csv", x[:, None], ["MLII"], fs=360)
    r = client.post("/v1/classify", files=[("files", ("bad.csv", path.read_bytes()))], data={"fs": "360"})
    assert r.status_code == 200, r.text
    answer = r.json()
    beats = beats_frame(answer)
    assert answer["flat_s"] == pytest.approx(20.0, abs=0.01) and answer["unreadable"]["clipped"] > 10
    assert beats[(beats.time_s > 30.3) & (beats.time_s < 49.7)].empty
    assert (beats.pred[beats.unreadable != ""] == "Q").all()
    inside = beats.unreadable[(beats.time_s > 71) & (beats.time_s < 89)]
    assert (inside == "clipped").mean() > 0.8  # beats whose R wave stays under the clip level are not clipped
    clipped = beats[beats.unreadable == "clipped"]
    assert clipped.time_s.between(69.5, 90.5).all()


def test_openapi_documents_the_form(client):
    spec = client.get("/v1/openapi.json").json()
    schema = spec["paths"]["/v1/classify"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert tuple(schema["properties"]) == FIELDS and schema["required"] == ["files"]
    assert client.get("/v1/docs").status_code == 200


def test_health_and_model(client):
    assert client.get("/v1/health").json()["status"] == "ok"
    info = client.get("/v1/model").json()
    assert info["sha256"] == sha256(MODEL_PATH) and info["classes"] == ["N", "S", "V", "F", "Q"]
    published = json.loads((REPORTS_DIR / "metrics.json").read_text())["inter_patient"]["cnn_lstm"]
    assert info["protocol"] == "inter_patient" and info["published"]
    assert info["published_figures"]["accuracy"] == published["accuracy"]
    assert info["fs"] == 360 and info["window"] == 252


@pytest.mark.parametrize("beats", ["detect", "atr"])
def test_wfdb_upload_gives_predicts_beats(client, rec, beats):
    r = client.post("/v1/classify", files=wfdb_files(rec["wfdb"]), data={"beats": beats})
    assert r.status_code == 200, r.text
    answer = r.json()
    got = beats_frame(answer)
    pd.testing.assert_frame_equal(got, expected(rec["wfdb"], beats=beats), check_dtype=False)
    assert answer["record"] == "r119" and answer["lead"] == "MLII" and answer["fs"] == 360
    assert sum(answer["counts"].values()) == len(got) == answer["beats_classified"]
    assert answer["counts"]["V"] > 10 and 40 < answer["heart_rate_bpm"] < 120
    if load_classifier(MODEL_PATH).adaptation is None:  # a model without a whole-record setting: used as trained
        assert answer["adaptation"] is None and client.get("/v1/model").json()["adaptation"] is None
    else:  # whole-record mode by default: every beat of 2 minutes measured
        assert answer["adaptation"]["beats_measured"] == len(got)


def test_a_model_with_a_whole_record_setting_adapts_by_default_and_says_so(tiny_model, rec, tmp_path):
    """For a model exported with a setting, `/v1/classify` adapts by default (the answer says how) and `adapt=false`
    gives the model as trained; `/v1/model` names the setting; both are `predict`'s beats."""
    from ecg_utils.model.batchnorm import Adaptation
    from ecg_utils.model.export import export_onnx

    model = export_onnx(tiny_model, tmp_path / "adaptive.onnx", Adaptation("all", 0.5))
    with TestClient(create_app(Settings(model=model))) as c:
        assert c.get("/v1/model").json()["adaptation"] == {"layers": "all", "weight": 0.5, "max_beats": 4096}
        adapted = c.post("/v1/classify", files=wfdb_files(rec["wfdb"])).json()
        trained = c.post("/v1/classify", files=wfdb_files(rec["wfdb"]), data={"adapt": "false"}).json()
    clf = load_classifier(model)
    assert adapted["adaptation"]["beats_measured"] == len(adapted["beats"]) and trained["adaptation"] is None
    for answer, adapt in ((adapted, True), (trained, False)):
        want = classify_record(rec["wfdb"], clf, progress=False, adapt=adapt).beats
        pd.testing.assert_frame_equal(beats_frame(answer), want, check_dtype=False)
    assert not beats_frame(adapted)[["p_N", "p_S", "p_V"]].equals(beats_frame(trained)[["p_N", "p_S", "p_V"]])


def test_adapt_false_gives_the_model_as_trained(client, rec):
    r = client.post("/v1/classify", files=wfdb_files(rec["wfdb"]), data={"adapt": "false"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["adaptation"] is None
    pd.testing.assert_frame_equal(beats_frame(answer), expected(rec["wfdb"], adapt=False), check_dtype=False)


def test_zip_edf_and_csv_uploads(client, rec):
    want = expected(rec["wfdb"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for _, (name, body) in wfdb_files(rec["wfdb"], with_atr=False):
            z.writestr(name, body)
    answers = {
        "zip": client.post("/v1/classify", files=[("files", ("r119.zip", buf.getvalue()))]),
        "edf": client.post("/v1/classify", files=[("files", ("r119.edf", rec["edf"].read_bytes()))]),
        "csv": client.post("/v1/classify", files=[("files", ("r119.csv", rec["csv"].read_bytes()))],
                           data={"fs": "360", "lead": "MLII"}),
    }
    for kind, r in answers.items():
        assert r.status_code == 200, (kind, r.text)
        got = beats_frame(r.json())
        assert (got["sample"].to_numpy() == want["sample"].to_numpy()).all(), kind
        assert (got["pred"] == want["pred"]).mean() > 0.99, kind  # EDF stores 16-bit samples: tiny differences
    pd.testing.assert_frame_equal(beats_frame(answers["zip"].json()), want, check_dtype=False)
    assert answers["edf"].json()["lead"] == "MLII" and answers["edf"].json()["format"] == "edf"


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in entries.items():
            z.writestr(name, body)
    return buf.getvalue()


@pytest.mark.parametrize(("files", "data", "status", "message"), [
    ([], {"fs": "360"}, 415, "send the record as multipart/form-data, in the field 'files'"),
    ([("fs", (None, "360"))], {}, 400, "no file in the request"),
    ([("files", ("r.csv", b""))], {"fs": "360"}, 400, "file 'r.csv' is empty"),
    ([("files", ("notes.txt", b"hello"))], {}, 415, r"no record in the upload \(notes.txt\)"),
    ([("files", ("../r.csv", b"MLII\n1\n"))], {"fs": "360"}, 400, r"file name '\.\./r\.csv' has a path component"),
    ([("files", ("/etc/r.csv", b"MLII\n1\n"))], {"fs": "360"}, 400, "has a path component"),
    ([("files", ("up.zip", _zip({"../../evil.hea": b"x"})))], {}, 400, r"'\.\./\.\./evil\.hea' has a path component"),
    ([("files", ("r" * 300 + ".csv", b"MLII\n1\n"))], {"fs": "360"}, 400, "304 characters long; at most 128"),
    ([("files", ("up.zip", _zip({"/abs/evil.csv": b"x"})))], {}, 400, "has a path component"),
    ([("files", ("up.zip", b"PK not really"))], {}, 400, "up.zip is not a readable zip file"),
    ([("files", ("r.csv", b"MLII\n1\n2\n"))], {}, 400, "a CSV file needs its sampling rate; send the field fs"),
    ([("files", ("r.csv", b"MLII\n1\n2\n"))], {"fs": "0"}, 422, r"sampling rate 0\.0 Hz"),
    ([("files", ("r.csv", b"MLII\n1\n2\n"))], {"fs": "fast"}, 400, "fs='fast' is not a number"),
    ([("files", ("r.csv", b"MLII\n1\n2\n"))], {"fs": "360"}, 422, "shorter than one beat window"),
    ([("files", ("r.csv", b"MLII\n1\n2\n"))], {"fs": "360", "lead": "V9"}, 422,
     r"none of the leads \['V9'\].*send the field 'lead'"),
    ([("files", ("r.csv", b"MLII\n1\n2\n"))], {"fs": "360", "colour": "red"}, 400, r"unknown field\(s\) \['colour'\]"),
    ([("files", ("r.csv", b"MLII\n1\n2\n"))], {"fs": "360", "beats": "all"}, 400, "beats='all'"),
    ([("files", ("r.csv", b"MLII\n1\n2\n"))], {"fs": "360", "adapt": "maybe"}, 400,
     "adapt='maybe': use 'true'"),
])
def test_bad_requests(client, files, data, status, message):
    r = client.post("/v1/classify", files=files or None, data=data)
    assert r.status_code == status, r.text
    assert re.search(message, r.json()["detail"]), r.json()


def test_bad_records(client, rec, mitdb_dir):
    files = wfdb_files(rec["wfdb"], with_atr=False)
    hea = files[0][1][1].replace(b"r119 1 360", b"r119 1 0")
    r = client.post("/v1/classify", files=[("files", ("r119.hea", hea)), files[1]])
    assert r.status_code == 422 and "gives the sampling rate as 0 Hz" in r.json()["detail"]
    r = client.post("/v1/classify", files=[files[0], ("files", ("r119.dat", files[1][1][1][:5000]))])
    assert r.status_code == 422 and "r119.dat is truncated" in r.json()["detail"]
    r = client.post("/v1/classify", files=[files[0]])
    assert r.status_code == 422 and "signal file" in r.json()["detail"] and "is missing" in r.json()["detail"]
    evil = files[0][1][1].replace(b"r119.dat", b"../../../etc/passwd")
    r = client.post("/v1/classify", files=[("files", ("r119.hea", evil)), files[1]])
    assert r.status_code == 422 and "header r119.hea is unreadable" in r.json()["detail"]
    assert "/tmp" not in r.json()["detail"]  # server paths stay private
    r = client.post("/v1/classify", files=wfdb_files(rec["wfdb"], with_atr=False), data={"beats": "atr"})
    assert r.status_code == 422 and "has no reference annotations" in r.json()["detail"]
    r = client.post("/v1/classify", files=[("files", ("r.edf", b"0       garbage" * 30))])
    assert r.status_code == 422 and "r.edf is not a readable EDF" in r.json()["detail"]


def test_size_limits(rec, tmp_path, monkeypatch):
    small = Settings(max_upload_mb=0.05)
    body = rec["csv"].read_bytes()  # about 2 MB
    with TestClient(create_app(small)) as c:
        r = c.post("/v1/classify", files=[("files", ("r.csv", body))], data={"fs": "360"})
        assert r.status_code == 413 and "larger than the limit of 0.05 MB" in r.json()["detail"]
        # no Content-Length (chunked): counted as it arrives
        form = b"".join([b"--XX\r\nContent-Disposition: form-data; name=\"files\"; filename=\"r.csv\"\r\n\r\n",
                         body, b"\r\n--XX--\r\n"])
        r = c.post("/v1/classify", content=iter([form[i:i + 65536] for i in range(0, len(form), 65536)]),
                   headers={"content-type": "multipart/form-data; boundary=XX"})
        assert r.status_code == 413
        bomb = _zip({"r.csv": b"MLII\n" + b"0.0\n" * 200_000})  # 800 kB of text in a few kB
        assert len(bomb) < 0.05 * 1024 * 1024
        r = c.post("/v1/classify", files=[("files", ("bomb.zip", bomb))], data={"fs": "360"})
        assert r.status_code == 413 and "bomb.zip expanded is larger than the limit" in r.json()["detail"]


def test_uploads_are_deleted(client, rec, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert client.post("/v1/classify", files=wfdb_files(rec["wfdb"])).status_code == 200
    assert client.post("/v1/classify", files=[("files", ("../x.csv", b"1"))]).status_code == 400
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("ecg-upload-")]


def test_token(rec):
    with TestClient(create_app(Settings(token="s3cret"))) as c:
        assert c.get("/v1/health").status_code == 401
        assert c.get("/v1/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        with pytest.raises(WebSocketDisconnect) as info, c.websocket_connect("/v1/stream?fs=360") as ws:
            ws.receive_json()
        assert info.value.code == 1008
        with c.websocket_connect("/v1/stream?fs=360&token=s3cret") as ws:
            ws.send_text("end")


def _stream(client, x: np.ndarray, fs: float, chunk: int) -> list[dict]:
    out = []
    with client.websocket_connect(f"/v1/stream?fs={fs:g}") as ws:
        for i in range(0, len(x), chunk):
            ws.send_bytes(x[i:i + chunk].astype("<f4").tobytes())
        ws.send_text("end")
        while True:
            try:
                out.append(json.loads(ws.receive_text()))
            except WebSocketDisconnect:  # the server closes the socket after 'end'
                return out


def test_websocket_gives_the_streaming_classifiers_beats(client, rec):
    x = rec["x"].astype("<f4")
    offline = StreamingClassifier(load_classifier(MODEL_PATH), 360)
    want = [e for i in range(0, len(x), 1000) for e in offline.process(x[i:i + 1000].astype(np.float64))]
    for chunk in (360, 4321):
        got = _stream(client, x, 360, chunk)
        assert [b["sample"] for b in got] == [e.sample for e in want]
        assert [b["pred"] for b in got] == [e.pred for e in want]
        assert [b["unreadable"] for b in got] == [e.unreadable for e in want]
        assert set(got[0]) == {"sample", "time_s", "pred", "p_N", "p_S", "p_V", "p_F", "p_Q", "latency_s", "quality_db",
                               "similarity", "unreadable"}


def test_websocket_bad_input(client):
    with client.websocket_connect("/v1/stream") as ws:
        assert "give the sampling rate" in ws.receive_json()["error"]
    with client.websocket_connect("/v1/stream?fs=50") as ws:
        assert "50 Hz is outside the supported 100-10000 Hz" in ws.receive_json()["error"]
    with client.websocket_connect("/v1/stream?fs=360") as ws:
        ws.send_bytes(b"abc")
        assert "whole float32 samples" in ws.receive_json()["error"]
        ws.send_text("hello")
        assert "little-endian float32" in ws.receive_json()["error"]
        ws.send_bytes(np.array([np.nan] * 10, "<f4").tobytes())
        assert "NaN samples" in ws.receive_json()["error"]
        ws.send_text("end")


def test_the_service_loads_only_what_inference_needs(rec):
    """Serving the ONNX model never imports PyTorch or scikit-learn (memory, start-up time, attack surface)."""
    import subprocess
    import sys

    code = f"""
import sys
from fastapi.testclient import TestClient
from ecg_utils.serve.service import FIELDS, Settings, create_app
with TestClient(create_app(Settings())) as c:
    files = [("files", (n, open({str(rec["wfdb"])!r} + "." + n.split(".")[1], "rb").read())) for n in ("r119.hea", "r119.dat")]
    assert c.post("/v1/classify", files=files).status_code == 200
assert "torch" not in sys.modules and "sklearn" not in sys.modules, sorted(m for m in sys.modules if m in ("torch", "sklearn"))
"""
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


_NAMES = st.sampled_from(["r.hea", "r.dat", "r.atr", "r.edf", "r.csv", "r.zip", "r.bin", "../r.hea", "a/b.csv",
                          "C:\\r.edf", ".", "", "r.HEA", "..", "r" * 300 + ".csv", "r\x00.csv"])


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.tuples(_NAMES, st.binary(max_size=3000)), min_size=1, max_size=4),
       fields=st.dictionaries(st.sampled_from(["fs", "lead", "beats", "x"]),
                              st.sampled_from(["360", "0", "-1", "nan", "inf", "1e9", "MLII", "atr", "", "é"]),
                              max_size=3))
def test_hostile_uploads_never_get_a_500(client, files, fields):
    """Random names, bytes and fields: every answer is a 2xx or a 4xx with a message, never a server error."""
    r = client.post("/v1/classify", files=[("files", (n, b)) for n, b in files], data=fields)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.json()["detail"]


def test_hostile_record_headers_never_get_a_500(client, rec):
    """A real signal file with damaged headers: read as the header says (a header cut after a valid field is still
    a valid header) or refused with a 4xx and its reason, never a 500."""
    hea = rec["wfdb"].with_name("r119.hea").read_bytes()
    dat = rec["wfdb"].with_name("r119.dat").read_bytes()
    for bad in (hea.replace(b"360", b"-360"), hea.replace(b"360", b"nan"), hea.replace(b"r119.dat", b""),
                hea.replace(b" 16 ", b" 999 "), hea[: len(hea) // 2], b"\xff\xfe" * 40, hea.replace(b"r119 1", b"r119 0"),
                hea.replace(b"43200", b"999999999")):
        r = client.post("/v1/classify", files=[("files", ("r119.hea", bad)), ("files", ("r119.dat", dat))])
        assert r.status_code == 200 or (400 <= r.status_code < 500 and r.json()["detail"]), (bad[:60], r.text[:300])


def test_streams_are_not_queued_behind_uploads(rec, monkeypatch):
    """With every upload worker busy, a live stream still gets its beats (its chunks have a queue of their own)."""
    import threading

    from ecg_utils.serve import service

    busy, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow_classify(*args: object) -> bytes:
        busy.set()
        release.wait(20)
        finished.set()
        return b"{}"

    monkeypatch.setattr(service, "_classify", slow_classify)
    with TestClient(create_app(Settings(workers=1))) as c:
        upload = threading.Thread(target=lambda: c.post("/v1/classify", files=[("files", ("r.csv", b"MLII\n1\n"))]))
        upload.start()
        assert busy.wait(30)
        try:
            beats = _stream(c, rec["x"][: 360 * 30], 360, 1000)
            assert len(beats) > 20 and not finished.is_set()  # streamed while the upload still held the worker
        finally:
            release.set()
            upload.join(60)


def test_bad_settings_are_named_at_start(monkeypatch, capsys):
    from ecg_utils.serve.service import main

    monkeypatch.setenv("ECG_WORKERS", "two")
    assert main([]) == 2 and "ECG_WORKERS='two'; give the number" in capsys.readouterr().err
    monkeypatch.setenv("ECG_WORKERS", "2")
    monkeypatch.setenv("ECG_MAX_UPLOAD_MB", "-5")
    assert main([]) == 2 and "ECG_MAX_UPLOAD_MB='-5'" in capsys.readouterr().err
