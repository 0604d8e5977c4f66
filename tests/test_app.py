"""The Streamlit app: its logic under Streamlit's AppTest, and end to end in a real browser (Debian's chromium)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ecg_utils.inference import load_classifier
from ecg_utils.paths import FIGURES_DIR, PROJ_ROOT
from ecg_utils.predict import classify_record
from ecg_utils.predict import main as predict_main
from ecg_utils.published import MODEL_PATH
from ecg_utils.strip import counts_table, next_beat, strip_figure

from .servers import api_server, app_server

APP = str(PROJ_ROOT / "ecg_utils" / "app.py")
CHROMIUM = "/usr/bin/chromium"


def test_strip_marks_beats_on_ecg_paper():
    beats = pd.DataFrame({"time_s": [0.5, 1.3, 2.1, 12.0], "pred": ["N", "V", "S", "N"]})
    fig = strip_figure(np.sin(np.arange(3600) / 30), 360, 0.0, beats, "MLII")
    marked = {t.name: list(t.x) for t in fig.data if t.mode == "markers+text"}
    assert marked == {"N": [0.5], "S": [2.1], "V": [1.3]}  # the beat at 12 s is off the strip
    for colour, (dt, dv) in (("#fbd5d5", (0.04, 0.1)), ("#f4a3a3", (0.2, 0.5))):  # minor and major grid
        lines = [s for s in fig.layout.shapes if s.line.color == colour]
        xs = sorted(s.x0 for s in lines if s.x0 == s.x1)
        ys = sorted(s.y0 for s in lines if s.y0 == s.y1)
        assert np.allclose(np.diff(xs), dt) and np.allclose(np.diff(ys), dv) and xs[-1] - xs[0] >= 9.9
    assert next_beat(beats, 0.6) == 1.3 and next_beat(beats, 2.1) is None
    table = counts_table({"counts": {"N": 3, "S": 1, "V": 0, "F": 0, "Q": 0}})
    assert table["beats"].tolist() == [3, 1, 0, 0, 0] and table["%"].tolist() == [75.0, 25.0, 0.0, 0.0, 0.0]


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
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.subheader[0].value.startswith("Record 119 · lead MLII · 360 Hz")
    want = classify_record(mitdb_dir / "119", load_classifier(MODEL_PATH), progress=False)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["beats classified"] == f"{len(want.beats):,}"
    assert metrics["beats skipped"] == str(want.n_nan + want.n_edge)
    assert metrics["S / V beats"] == f"{(want.beats.pred == 'S').sum():,} / {(want.beats.pred == 'V').sum():,}"
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
            page.locator("input[type=file]").set_input_files(files)
            page.get_by_text("208.atr").wait_for(timeout=30_000)
            page.get_by_role("button", name="Classify").click()
            page.get_by_text("Record 208 · lead MLII · 360 Hz").wait_for(timeout=120_000)
            beats = pd.read_csv(tmp_path / "predict.csv")
            counts = beats["pred"].value_counts()
            expect(page.get_by_text(f"{len(beats):,}", exact=True).first).to_be_visible()
            expect(page.get_by_text(f"{counts.get('S', 0):,} / {counts.get('V', 0):,}", exact=True)).to_be_visible()
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


def test_screenshot_in_readme_exists():
    assert (FIGURES_DIR / "app.png").is_file() and "reports/figures/app.png" in (PROJ_ROOT / "README.md").read_text()
