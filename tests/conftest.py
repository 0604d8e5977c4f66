"""Shared fixtures: the real MIT-BIH copy, writable copies of a few records, the full dataset."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ecg_utils.data.splits import inter_patient_split
from ecg_utils.paths import DEFAULT_MITDB_DIR, PROJ_ROOT, project_path
from ecg_utils.signal.dataset import build_dataset, load_dataset
from ecg_utils.signal.preprocess import PreprocessConfig

SHARED_MITDB = PROJ_ROOT.parent / "shared" / "data" / "mitdb"
SHARED_NSTDB = PROJ_ROOT.parent / "shared" / "data" / "nstdb"


def _find_mitdb() -> Path | None:
    if os.environ.get("MITDB_DIR"):
        return project_path(os.environ["MITDB_DIR"])
    for candidate in (DEFAULT_MITDB_DIR, SHARED_MITDB):
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def mitdb_dir() -> Path:
    """The real database; missing data fails in CI and skips elsewhere."""
    path = _find_mitdb()
    if path is None or not path.is_dir():
        message = "MIT-BIH database not found: run `make data` or set MITDB_DIR"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def nstdb_dir() -> Path:
    """The noise stress test database; missing data fails in CI and skips elsewhere."""
    from ecg_utils.data.nstdb import DEFAULT_NSTDB_DIR

    candidates = [project_path(os.environ["NSTDB_DIR"])] if os.environ.get("NSTDB_DIR") else [DEFAULT_NSTDB_DIR,
                                                                                              SHARED_NSTDB]
    path = next((c for c in candidates if c.is_dir()), None)
    if path is None:
        message = "noise stress test database not found: run `make data` or set NSTDB_DIR"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def copy_records(mitdb_dir: Path, tmp_path: Path):
    """Copy the files of some records (plus RECORDS and SHA256SUMS.txt) into a writable folder."""

    def copy(records: list[str], sums: bool = True) -> Path:
        dest = tmp_path / "mitdb"
        dest.mkdir(exist_ok=True)
        names = [f"{r}.{ext}" for r in records for ext in ("hea", "dat", "atr")] + ["RECORDS"]
        names += ["SHA256SUMS.txt"] if sums else []
        for name in names:
            shutil.copyfile(mitdb_dir / name, dest / name)
        return dest

    return copy


@pytest.fixture(scope="session")
def full_dataset(mitdb_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The dataset of all 48 records with the default configuration, built once per session."""
    out = tmp_path_factory.mktemp("processed") / "beats.npz"
    return load_dataset(build_dataset(PreprocessConfig(), out, mitdb_dir=mitdb_dir, progress=False))


@pytest.fixture(scope="session")
def small(mitdb_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Real beats of 5 records and their inter-patient split, fold 0 of 2: DS1 119, 208 (train), 101, 106
    (validation), DS2 100."""
    out = tmp_path_factory.mktemp("small") / "beats.npz"
    config = PreprocessConfig(records=["100", "101", "106", "119", "208"])
    ds = load_dataset(build_dataset(config, out, mitdb_dir=mitdb_dir, progress=False))
    return ds, inter_patient_split(ds.label, ds.record, folds=2, fold=0)


@pytest.fixture(scope="session")
def tiny_model(small, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small beat-sequence CNN-LSTM trained briefly on `small`: a model that tells classes apart, in seconds."""
    from ecg_utils.model.training import TrainConfig, train

    ds, split = small
    run = tmp_path_factory.mktemp("tiny_run")
    config = TrainConfig(model_params={"channels": (8, 16, 16), "context": 4, "dim": 16, "hidden": 16, "head": 16},
                         epochs=4, normal_keep=0.2, lr=5e-3, batch_size=64, chunk=16)
    train(config, ds, split, run, progress=False)
    return run / "best.pt"


@pytest.fixture(scope="session")
def tiny_rhythm_model(small, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tiny_model` with rhythm context: it reads all six RR features (`preprocess.RR_FEATURES`)."""
    from ecg_utils.model.training import TrainConfig, train

    ds, split = small
    run = tmp_path_factory.mktemp("tiny_rhythm_run")
    config = TrainConfig(model_params={"channels": (8, 16, 16), "context": 4, "dim": 16, "hidden": 16, "head": 16,
                                       "rhythm": True},
                         epochs=2, normal_keep=0.2, lr=5e-3, batch_size=64, chunk=16)
    train(config, ds, split, run, progress=False)
    return run / "best.pt"


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model: Path) -> Path:
    from ecg_utils.model.export import export_onnx

    return export_onnx(tiny_model, tiny_model.with_name("model.onnx"))


@pytest.fixture(scope="session")
def rec100(mitdb_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Record 100 cut to its first 5 minutes (fast enough for every pipeline test), at 360 Hz and resampled
    to 250 Hz, with its annotations."""
    from tests.synthetic_records import cut_and_resample

    return cut_and_resample(mitdb_dir, "100", 300, tmp_path_factory.mktemp("records"))


def pytest_terminal_summary(terminalreporter) -> None:
    """Say how many tests skipped and why that is allowed here: only outside CI, for data or tools not installed."""
    skipped = len(terminalreporter.stats.get("skipped", []))
    if skipped:
        terminalreporter.write_line(f"{skipped} tests skipped (data, chromium or .venv missing); with CI set they fail")
