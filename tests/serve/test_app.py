"""The Streamlit app: its logic under Streamlit's AppTest, and end to end in a real browser (Debian's chromium)."""

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ecg_utils.classify import classify_record
from ecg_utils.model.inference import load_classifier
from ecg_utils.model.shipped import MODEL_PATH
from ecg_utils.paths import FIGURES_DIR, PROJ_ROOT
from ecg_utils.predict import main as predict_main
from tests.servers import api_server, app_server

APP = str(PROJ_ROOT / "ecg_utils" / "serve" / "app.py")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def api():
    with api_server() as url:
        yield url


def test_app_classifies_a_local_mitdb_record(api, mitdb_dir, monkeypatch, tmp_path):
    import tempfile
    import time

    monkeypatch.setenv("ECG_API_URL", api)
    monkeypatch.setenv("MITDB_DIR", str(mitdb_dir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale, recent = tmp_path / "ecg-app-old", tmp_path / "ecg-app-recent"  # another session's, a day old / not
    stale.mkdir()
    recent.mkdir()
    os.utime(stale, (time.time() - 2 * 86400,) * 2)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception and "MIT-BIH (local copy)" in at.radio[0].options
    at.radio[0].set_value("MIT-BIH (local copy)").run()
    record_box = next(s for s in at.selectbox if s.label == "MIT-BIH record")
    record_box.set_value("119").run()
    assert next(s for s in at.selectbox if s.label == "lead").options == ["automatic", "MLII", "V1"]
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.subheader[0].value.startswith("Record 119 · lead MLII · 360 Hz")
    want = classify_record(mitdb_dir / "119", load_classifier(MODEL_PATH), progress=False)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["beats classified"] == f"{len(want.beats):,}"
    assert metrics["beats skipped"] == str(want.n_nan + want.n_edge)
    assert metrics["S / V beats"] == f"{(want.beats.pred == 'S').sum():,} / {(want.beats.pred == 'V').sum():,}"
    mode = [c.value for c in at.caption if c.value.startswith(("Whole-record mode", "Classified by the model"))]
    if want.adaptation is None:  # a model without a whole-record setting: no box to tick, the model as trained
        assert mode == ["Classified by the model as trained (not adapted to this record), as the stream classifies."]
        assert not [c for c in at.checkbox if c.label == "whole-record mode"]
        assert any(c.value.startswith("This model carries no whole-record setting") for c in at.caption)
    else:
        assert mode == [(f"Whole-record mode: every batch norm of the model took 0.5 of its statistics from "
                         f"{want.adaptation['beats_measured']:,} of this record's beats (no label read).")], mode
        next(c for c in at.checkbox if c.label == "whole-record mode").uncheck().run()
        at.button[0].click().run()
        assert any(c.value.startswith("Classified by the model as trained") for c in at.caption)
    sessions = sorted(p.name for p in tmp_path.glob("ecg-app-*"))
    assert "ecg-app-old" not in sessions and "ecg-app-recent" in sessions and len(sessions) == 2
    ours = next(tmp_path / n for n in sessions if n != "ecg-app-recent")
    assert sorted(p.name for p in (ours / "record").iterdir()) == ["119.atr", "119.dat", "119.hea"]
    next(b for b in at.button if b.label == "next S/V beat").click().run()
    assert at.slider[0].value > 0  # moved to the first S or V beat
    # live mode: the record's first minute streamed through the WebSocket, beats counted as they arrive
    next(b for b in at.button if b.label == "start live stream").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    streamed = [m.value for m in at.markdown if "beats streamed:" in m.value]
    assert streamed and 60 <= int(streamed[-1].split()[0]) <= 90, streamed  # record 119: about 70 beats a minute


def test_app_offers_the_records_own_leads(api, mitdb_dir, monkeypatch, tmp_path):
    """A Holter-style record whose leads match none the model prefers: the app says to choose one of them in its own
    list (not the service's field), and classifies the lead chosen."""
    import wfdb

    rec = wfdb.rdrecord(str(mitdb_dir / "100"), sampto=360 * 60)
    wfdb.wrsamp("holter", fs=360, units=["mV", "mV"], sig_name=["ECG1", "ECG2"], p_signal=rec.p_signal,
                fmt=["16", "16"], write_dir=str(tmp_path))
    monkeypatch.setenv("ECG_API_URL", api)
    monkeypatch.setenv("MITDB_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.radio[0].set_value("MIT-BIH (local copy)").run()
    lead_box = next(s for s in at.selectbox if s.label == "lead")
    assert lead_box.options == ["automatic", "ECG1", "ECG2"]
    at.button[0].click().run()
    assert [e.value for e in at.error] == [(
        "this record has none of the leads the model prefers (MLII, V5, V1, V2, V4); choose one of its leads "
        "(ECG1, ECG2) in the 'lead' list above")]
    next(s for s in at.selectbox if s.label == "lead").set_value("ECG1").run()
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.subheader[0].value.startswith("Record holter · lead ECG1 · 360 Hz")


def test_app_shows_service_errors(monkeypatch):
    monkeypatch.setenv("ECG_API_URL", "http://127.0.0.1:9")  # nothing listens there
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("cannot be reached" in e.value and "make serve" in e.value for e in at.error)


def test_browser_end_to_end(api, mitdb_dir, tmp_path):
    """Upload a record in the browser, check counts and strip, download the CSV and compare it with predict's."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is not installed: apt-get install -y chromium (.ci/run does)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)

    files = [str(mitdb_dir / f"208.{e}") for e in ("hea", "dat", "atr")]
    assert predict_main([str(mitdb_dir / "208"), "--out", str(tmp_path / "predict.csv")]) == 0
    want = (tmp_path / "predict.csv").read_bytes()
    with app_server(api) as app, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(app)
            # the uploader takes what the service takes; viewer mode: no developer toolbar or Deploy button
            expect(page.get_by_text(re.compile(r"\b256 ?MB per file"))).to_be_visible(timeout=60_000)
            assert page.get_by_role("button", name="Deploy").count() == 0
            page.locator("input[type=file]").set_input_files(files)
            page.get_by_text("208.atr").wait_for(timeout=30_000)
            for _ in range(60):  # the app reruns once the files are in, then lists 208's own leads
                page.get_by_role("combobox", name="lead").click()
                if page.get_by_role("option", name="V1").count():
                    break
                page.keyboard.press("Escape")
                page.wait_for_timeout(500)
            expect(page.get_by_role("option", name="V1")).to_be_visible()
            page.get_by_role("option", name="automatic").click()
            page.get_by_role("button", name="Classify").click()
            page.get_by_text("Record 208 · lead MLII · 360 Hz").wait_for(timeout=120_000)
            beats = pd.read_csv(tmp_path / "predict.csv")
            counts = beats["pred"].value_counts()
            # the metrics follow the heading in the same rerun, but a loaded machine may deliver them seconds later
            expect(page.get_by_text(f"{len(beats):,}", exact=True).first).to_be_visible(timeout=30_000)
            expect(page.get_by_text(f"{counts.get('S', 0):,} / {counts.get('V', 0):,}", exact=True)).to_be_visible(
                timeout=30_000)
            page.get_by_role("button", name="next S/V beat").click()
            chart = page.locator("[data-testid=stPlotlyChart]").first
            for _ in range(40):  # the app reruns after the click and draws the strip anew: scroll once it stays
                try:
                    chart.scroll_into_view_if_needed(timeout=5_000)
                    break
                except PlaywrightError:
                    page.wait_for_timeout(500)
            expect(chart.locator("text=V").first).to_be_visible(timeout=30_000)  # beats marked with their class
            shot = Path(os.environ.get("APP_SCREENSHOT", tmp_path / "app.png"))
            page.screenshot(path=str(shot))
            page.get_by_role("tab", name="beats").click()
            with page.expect_download() as info:
                page.get_by_role("button", name="download beats (CSV)").click()
            got = Path(info.value.path()).read_bytes()
        finally:
            browser.close()
    assert got == want
    assert counts.get("V", 0) > 100
    assert shot.stat().st_size > 50_000


def test_screenshot_in_the_docs_exists():
    assert (FIGURES_DIR / "app.png").is_file() and "reports/figures/app.png" in (PROJ_ROOT / "docs" / "service.md").read_text()


def test_service_advice_is_put_in_the_apps_terms():
    from ecg_utils.serve.wording import in_app_terms

    assert in_app_terms("record x: none of the leads ['MLII'] is in this record; it has ['ECG1']; send the field "
                        "'lead' with one of them") == ("record x: none of the leads ['MLII'] is in this record; it has "
                                                       "['ECG1']; choose one of them in the 'lead' list")
    assert in_app_terms("r.csv: a CSV file needs its sampling rate; send the field fs (Hz)").endswith(
        "set 'sampling rate for CSV (Hz)'")
    assert in_app_terms("unrelated") == "unrelated"
