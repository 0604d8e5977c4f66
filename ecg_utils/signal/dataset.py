"""The beat dataset: build it from the raw records once, cache it as one .npz, load it.

The cache is keyed by the preprocessing configuration (and FORMAT_VERSION for code changes):
the same configuration re-run is a cache hit, anything else rebuilds. The file is written
atomically, so an interrupted build leaves the previous file or none.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ecg_utils.atomic import atomic_open
from ecg_utils.data.aami import beat_mask, to_aami
from ecg_utils.data.mitdb import resolve_mitdb_dir
from ecg_utils.data.records import MITDB_FIX, read_record
from ecg_utils.errors import DataError
from ecg_utils.paths import DEFAULT_DATASET, project_path
from ecg_utils.signal.preprocess import RR_FEATURES, PreprocessConfig, prepare_beats

#: Bump when the code changes what a configuration produces, so old caches rebuild.
FORMAT_VERSION = 3  # 2: the rhythm pair of RR features; 3: each beat's annotated rhythm


@dataclass(frozen=True)
class BeatDataset:
    """All beats of the processed records, row-aligned arrays."""

    signal: np.ndarray  # (n, window) float32, normalised
    label: np.ndarray  # (n,) AAMI class letter
    symbol: np.ndarray  # (n,) MIT-BIH annotation symbol
    record: np.ndarray  # (n,) record name
    sample: np.ndarray  # (n,) R-peak sample index in the record
    rr: np.ndarray  # (n, 6) RR features (intervals in seconds), columns RR_FEATURES
    lead: np.ndarray  # (n,) lead the window was cut from
    rhythm: np.ndarray  # (n,) reference rhythm annotation in force at the beat ("(N", "(AFIB" …; "unannotated")
    dropped: pd.DataFrame  # beats left out at the record edges: record, sample, symbol, label, reason
    config: dict
    versions: dict

    def __len__(self) -> int:
        return len(self.label)

    def table(self) -> pd.DataFrame:
        """One row per beat without the signal: for counting, grouping and joining predictions."""
        df = pd.DataFrame({"record": self.record, "sample": self.sample, "symbol": self.symbol,
                           "label": self.label, "lead": self.lead})
        return df.join(pd.DataFrame(self.rr, columns=list(RR_FEATURES)))


def process_record(root: Path, name: str, config: PreprocessConfig) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Filter one record, cut a window around every reference beat, compute RR features, note its rhythm."""
    rec = read_record(root / name, config.leads, config.fs, fix=MITDB_FIX)
    is_beat = beat_mask(rec.ann_symbol)
    samples, symbols = rec.ann_sample[is_beat], rec.ann_symbol[is_beat]
    try:
        windows, keep, rr = prepare_beats(rec.signal, rec.fs, samples, config)
    except ValueError as exc:
        raise DataError(f"record {name} ({rec.lead}): {exc}") from None
    labels = to_aami(symbols)
    n = int(keep.sum())
    beats = {
        "signal": windows,
        "label": labels[keep],
        "symbol": symbols[keep].astype("<U1"),
        "record": np.full(n, name, dtype="<U8"),
        "sample": samples[keep],
        "rr": rr[keep],
        "lead": np.full(n, rec.lead, dtype="<U8"),
        "rhythm": rec.rhythms().at(samples[keep]).astype(str),
    }
    drop_samples = samples[~keep]
    dropped = pd.DataFrame({
        "record": name,
        "sample": drop_samples,
        "symbol": symbols[~keep],
        "label": labels[~keep],
        "reason": np.where(drop_samples < config.before, "window starts before the record", "window ends after the record"),
    })
    return beats, dropped


def _versions() -> dict[str, str]:
    import scipy
    import wfdb

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "wfdb": wfdb.__version__, "pandas": pd.__version__}


def cache_key(config: PreprocessConfig) -> str:
    """What identifies a build: the configuration and FORMAT_VERSION (the per-record form uses it too)."""
    return json.dumps({"format": FORMAT_VERSION, **config.to_dict()}, sort_keys=True)


def dataset_is_current(path: str | Path, config: PreprocessConfig) -> bool:
    """True when `path` holds a dataset built with exactly `config` (reads only its key)."""
    path = project_path(path)
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as npz:
            return str(npz["cache_key"]) == cache_key(config)
    except (OSError, ValueError, KeyError):  # unreadable or foreign file: rebuild it
        return False


def stored_config(path: str | Path) -> dict[str, Any]:
    """The preprocessing configuration a dataset was built with (reads only that entry, not the beats)."""
    with np.load(project_path(path), allow_pickle=False) as npz:
        return json.loads(str(npz["config"]))


def build_dataset(
    config: PreprocessConfig | None = None,
    out: str | Path = DEFAULT_DATASET,
    mitdb_dir: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Build the beat dataset into `out` unless a current one is there; returns the path."""
    config = config or PreprocessConfig()
    out = project_path(out)
    if not force and dataset_is_current(out, config):
        return out
    root = resolve_mitdb_dir(mitdb_dir)
    parts, drops = [], []
    for name in tqdm(config.records, desc="records", disable=not progress):
        beats, dropped = process_record(root, name, config)
        parts.append(beats)
        drops.append(dropped)
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    dropped = pd.concat(drops, ignore_index=True)
    with atomic_open(out, "wb") as handle:
        np.savez(
            handle,
            **arrays,
            rr_names=np.array(RR_FEATURES),
            **{f"dropped_{c}": dropped[c].to_numpy().astype(str if c != "sample" else np.int64) for c in dropped},
            cache_key=np.array(cache_key(config)),
            config=np.array(json.dumps(config.to_dict())),
            versions=np.array(json.dumps(_versions())),
        )
    return out


def load_dataset(path: str | Path = DEFAULT_DATASET) -> BeatDataset:
    """Load a dataset written by build_dataset."""
    path = project_path(path)
    if not path.is_file():
        raise DataError(f"no beat dataset at {path}: run notebook 01 (or `make reproduce`) to build it")
    with np.load(path, allow_pickle=False) as npz:
        if "rhythm" not in npz:
            raise DataError(f"{path} was built by an older version of this package (it has no rhythm per beat): "
                            "rebuild it with notebook 01 (or ecg_utils.signal.dataset.build_dataset)")
        dropped = pd.DataFrame({c: npz[f"dropped_{c}"] for c in ("record", "sample", "symbol", "label", "reason")})
        return BeatDataset(
            signal=npz["signal"], label=npz["label"], symbol=npz["symbol"], record=npz["record"],
            sample=npz["sample"], rr=npz["rr"], lead=npz["lead"], rhythm=npz["rhythm"], dropped=dropped,
            config=json.loads(str(npz["config"])), versions=json.loads(str(npz["versions"])),
        )
