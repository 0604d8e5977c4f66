"""The Streamlit app: `streamlit run ecg_utils/serve/app.py` (or `make serve`), a client of the web service.

Beats are classified by the service (`ECG_API_URL`, default http://127.0.0.1:8000); the app only reads
the record's samples to draw them. Upload a record (WFDB files or a zip of them, EDF, CSV) or pick one
from a local MIT-BIH copy (`MITDB_DIR` or data/raw/mitdb), see the beats per class, move through the
record on ECG paper, download the beats as CSV, or stream the record live through the WebSocket.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ecg_utils.classify import mode_text
from ecg_utils.data.aami import CLASS_NAMES
from ecg_utils.data.readers import RecordSource, open_record
from ecg_utils.data.records import DEFAULT_LEADS, choose_lead
from ecg_utils.errors import DataError, LeadError
from ecg_utils.paths import DEFAULT_MITDB_DIR
from ecg_utils.serve.client import ApiClient, ApiError, beats_frame
from ecg_utils.serve.strip import counts_table, next_beat, strip_figure
from ecg_utils.serve.uploads import Limits, max_upload_mb, receive_files
from ecg_utils.serve.wording import in_app_terms

WINDOW_S = 10.0  # seconds of signal on screen
LIVE_S = 60.0  # seconds streamed in live mode
APP_FOLDER = "ecg-app-"  # prefix of the sessions' folders in the temporary directory
STALE_S = 24 * 3600.0
AUTO_LEAD = "automatic"

st.set_page_config(page_title="ECG beat classifier", layout="wide")
state = st.session_state


def local_mitdb() -> Path | None:
    folder = Path(os.environ.get("MITDB_DIR") or DEFAULT_MITDB_DIR)
    return folder if folder.is_dir() and any(folder.glob("*.hea")) else None


def upload_folder() -> Path:
    """This session's folder for the record on screen (its signal is read from here to draw it). Folders of
    sessions idle for a day are deleted when a new session starts: Streamlit says nothing when a session ends."""
    if "folder" not in state:
        for stale in Path(tempfile.gettempdir()).glob(f"{APP_FOLDER}*"):
            if time.time() - stale.stat().st_mtime > STALE_S:
                shutil.rmtree(stale, ignore_errors=True)
        state.folder = tempfile.mkdtemp(prefix=APP_FOLDER)
    return Path(state.folder)


def record_leads(files: list[tuple[str, bytes]], fs: float) -> tuple[list[str], str | None]:
    """The leads of the record in `files` (read from its header; kept per set of files), or the reader's complaint.
    The files are written to this session's folder once, so the list does not cost an upload on every rerun."""
    key = (tuple((n, len(b)) for n, b in files), fs)
    if state.get("leads_key") != key:
        folder = upload_folder() / "pending"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            path, kind = receive_files([(n, io.BytesIO(b)) for n, b in files], folder, Limits.of_mb(max_upload_mb()))
            state.leads = list(open_record(path, fs=fs or 360.0 if kind == "csv" else None).leads), None
        except LeadError as exc:  # several leads, none preferred: list them all the same
            state.leads = list(exc.available), None
        except Exception as exc:  # noqa: BLE001 - the service will refuse it with the reason; show it now
            state.leads = [], str(exc)
        state.leads_key = key
    return state.leads


def open_source(record: dict) -> RecordSource:
    return open_record(record["path"], lead=record["lead"], fs=record["fs"] if record["format"] == "csv" else None)


with st.sidebar:
    st.header("Service")
    api = ApiClient(st.text_input("API URL", os.environ.get("ECG_API_URL", "http://127.0.0.1:8000")),
                    os.environ.get("ECG_API_TOKEN") or st.text_input("token (if the service needs one)",
                                                                     type="password") or None)
    try:
        model = api.model()
        st.caption(f"model `{model['file']}` ({model['protocol'] or 'custom'}), {model['fs']:g} Hz, "
                   f"sha256 {model['sha256'][:12]}…")
    except ApiError as exc:
        st.error(str(exc))

st.title("ECG beat classifier")
st.caption("A research tool, not a medical device. Classes: " + "; ".join(f"**{c}** {n}" for c, n in CLASS_NAMES.items()))

source_kind = st.radio("Record", ["upload", "MIT-BIH (local copy)"] if local_mitdb() else ["upload"], horizontal=True)
files: list[tuple[str, bytes]] = []
if source_kind == "upload":
    uploaded = st.file_uploader("WFDB files (.hea, .dat, .atr) or a .zip of them, one .edf, or one .csv",
                                accept_multiple_files=True, type=["hea", "dat", "atr", "zip", "edf", "csv"])
    files = [(f.name, f.getvalue()) for f in uploaded or []]
else:
    folder = local_mitdb()
    name = st.selectbox("MIT-BIH record", sorted(p.stem for p in folder.glob("*.hea")))
    files = [(f"{name}.{ext}", (folder / f"{name}.{ext}").read_bytes()) for ext in ("hea", "dat", "atr")
             if (folder / f"{name}.{ext}").is_file()]

col_a, col_b, col_c = st.columns(3)
fs = col_c.number_input("sampling rate for CSV (Hz)", min_value=0.0, value=360.0)
leads, problem = record_leads(files, fs) if files else ([], None)
preferred_leads = list(model["leads"]) if "model" in globals() else list(DEFAULT_LEADS)
preferred = ", ".join(preferred_leads)
lead_choice = col_a.selectbox("lead", [AUTO_LEAD, *leads], help=f"automatic: the first of {preferred} that the "
                              "record has, or its only lead; otherwise choose one of the record's own leads")
lead = None if lead_choice == AUTO_LEAD else lead_choice
beats_from = col_b.selectbox("beats", ["detect", "atr"], help="detect: the R-peak detector; atr: the record's "
                                                             "reference annotations (WFDB .atr)")
# Whole-record mode is a choice only for a model that carries a setting for it; another is used as trained.
adapt = True
if "model" in globals() and model.get("adaptation") is None:
    st.caption("This model carries no whole-record setting: it classifies every record as trained, as the live "
               "stream does.")
else:
    adapt = st.checkbox("whole-record mode", value=True,
                        help="adapt the model's batch norms to this record's own beats before classifying them (no "
                             "label is read); off: the model as trained, as the live stream runs it")
if problem:
    st.error(problem)

if st.button("Classify", type="primary", disabled=not files):
    with st.spinner("classifying…"):
        try:
            if lead is None and len(leads) > 1:
                try:
                    choose_lead(leads, preferred_leads)
                except LeadError:
                    raise DataError(f"this record has none of the leads the model prefers ({preferred}); choose one "
                                    f"of its leads ({', '.join(leads)}) in the 'lead' list above") from None
            answer = api.classify(files, fs=fs or None, lead=lead, beats=beats_from, adapt=adapt)
            folder = upload_folder() / "record"  # only the record on screen is kept
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            path, _ = receive_files([(n, io.BytesIO(b)) for n, b in files], folder, Limits.of_mb(max_upload_mb()))
            state.record = {"path": str(path), "lead": answer["lead"], "fs": answer["fs"], "format": answer["format"]}
            state.answer, state.beats, state.start = answer, beats_frame(answer), 0.0
        except (ApiError, DataError) as exc:
            state.pop("answer", None)
            st.error(in_app_terms(str(exc)))

if "answer" in state:
    answer, beats, record = state.answer, state.beats, state.record
    st.subheader(f"Record {answer['record']} · lead {answer['lead']} · {answer['fs']:g} Hz · "
                 f"{answer['duration_s'] / 60:.1f} min")
    left, right = st.columns([3, 2])
    m = left.columns(2)
    m[0].metric("beats classified", f"{answer['beats_classified']:,}")
    m[1].metric("heart rate (median)", f"{answer['heart_rate_bpm']} bpm" if answer["heart_rate_bpm"] else "–")
    skipped = answer["skipped"]
    m[0].metric("S / V beats", f"{answer['counts']['S']:,} / {answer['counts']['V']:,}")
    m[1].metric("beats skipped", f"{skipped['nan'] + skipped['edge']}")
    gated = answer["unreadable"]
    left.caption(f"skipped: {skipped['nan']} beats whose window touches missing (NaN) samples, {skipped['edge']} "
                 f"whose window runs past the record's ends. Unreadable, shown as Q: {gated['noise']} in noise, "
                 f"{gated['flat']} on a flat line, {gated['clipped']} in clipping; {answer['flat_s']:.1f} s of flat line.")
    mode = mode_text(answer.get("adaptation"))
    left.caption(mode[0].upper() + mode[1:] + ".")
    if answer.get("gaps"):
        left.caption(f"{len(answer['gaps'])} gaps in the recording (EDF+D): each stretch was classified on its own; "
                     "times count from the recording's start, gaps included.")
    right.dataframe(counts_table(answer).T, width="stretch")

    tab_strip, tab_table, tab_live = st.tabs(["strip", "beats", "live"])
    with tab_strip:
        duration = answer["duration_s"]
        nav = st.columns([1, 1, 1, 4])
        if nav[0].button("◀ back"):
            state.start = max(0.0, state.start - WINDOW_S)
        if nav[1].button("forward ▶"):
            state.start = min(max(0.0, duration - WINDOW_S), state.start + WINDOW_S)
        if nav[2].button("next S/V beat"):
            t = next_beat(beats, state.start + WINDOW_S / 2)
            if t is None:
                st.info("no S or V beat after this point")
            else:
                state.start = max(0.0, t - WINDOW_S / 2)
        state.start = nav[3].slider("start (s)", 0.0, max(0.0, duration - WINDOW_S), float(state.start), step=1.0)
        try:
            source = open_source(record)
            a = int(state.start * source.fs)
            x = source.read(a, min(source.n_samples, a + int(WINDOW_S * source.fs)))
            st.plotly_chart(strip_figure(x, source.fs, a / source.fs, beats, source.lead), width="stretch")
        except DataError as exc:
            st.error(str(exc))
    with tab_table:
        st.dataframe(beats, width="stretch", height=360)
        st.download_button("download beats (CSV)", beats.to_csv(index=False).encode(),
                           file_name=f"{answer['record']}_beats.csv", mime="text/csv")
    with tab_live:
        st.write(f"Streams the first {LIVE_S:g} s of the record through the service's WebSocket, 10× faster than "
                 "real time; beats appear as the service classifies them.")
        if st.button("start live stream"):
            source = open_source(record)
            x = source.read(0, min(source.n_samples, int(LIVE_S * source.fs)))
            chart, status = st.empty(), st.empty()
            got: list[dict] = []
            t0 = time.perf_counter()
            try:
                for i, beat in enumerate(api.stream(x, source.fs, chunk_s=0.5)):
                    got.append(beat)
                    lag = beat["time_s"] / 10 - (time.perf_counter() - t0)
                    if lag > 0:
                        time.sleep(lag)
                    if i % 5 == 0:
                        live = pd.DataFrame(got)
                        end = beat["time_s"]
                        lo = max(0.0, end - WINDOW_S)
                        chart.plotly_chart(strip_figure(x[int(lo * source.fs): int(end * source.fs) + 1], source.fs,
                                                        lo, live, source.lead), width="stretch", key=f"live{i}")
                        status.write(f"{len(got)} beats streamed; last {beat['pred']} at {end:.1f} s, latency "
                                     f"{beat['latency_s']:.2f} s")
                live = pd.DataFrame(got)
                status.write(f"{len(got)} beats streamed: " + ", ".join(
                    f"{c} {n}" for c, n in live["pred"].value_counts().items()) if len(got) else "no beats")
            except (ApiError, OSError) as exc:
                st.error(f"live stream failed: {exc}")
