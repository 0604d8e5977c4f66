"""The per-record form of the beat dataset: a folder per record, each read only when training needs its beats.

`dataset` keeps every beat in one `.npz` that is loaded whole: MIT-BIH's 100,000 beats take about 150 MB, but a
corpus of thousands of patients would not fit. Here each record's model inputs are `.npy` files of their own, which
`RecordFiles` opens memory-mapped: a training step reads the pages of the beats it uses and nothing else. The beats
are the ones `dataset` builds (the same `process_record`, the same running template, `context.record_inputs`).

Layout (another corpus writes the same from its own reader, through `write_record` and `write_index`):
`index.json` (the preprocessing configuration, the records in order, their beat counts) and, per record, a folder
with `inputs.npy` (n, 2, window) float32, `rr.npy` (n, 6) float32, `label.npy` (n,) AAMI letters, `sample.npy` (n,)
and `meta.json`. Each record's folder is written whole, then renamed into place, so an interrupted build keeps the
records it finished and a re-run builds only the others.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ecg_utils.atomic import write_json
from ecg_utils.data.mitdb import resolve_mitdb_dir
from ecg_utils.errors import DataError
from ecg_utils.paths import project_path
from ecg_utils.signal.context import record_inputs
from ecg_utils.signal.dataset import cache_key, process_record
from ecg_utils.signal.preprocess import PreprocessConfig

#: Where `build_record_files` writes MIT-BIH's per-record form unless told otherwise.
DEFAULT_RECORD_FILES = "data/processed/mitdb_records"
ARRAYS = ("inputs", "rr", "label", "sample", "rhythm")
#: Records whose arrays stay mapped at once; older ones are unmapped (a corpus has more records than file handles).
OPEN_RECORDS = 64


def _record_dir(root: Path, name: str) -> Path:
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise DataError(f"record name {name!r} cannot name a folder; give records plain names (no '/', no leading '.')")
    return root / name


def write_record(root: str | Path, name: str, arrays: dict[str, np.ndarray], key: str) -> None:
    """Write one record's arrays (`ARRAYS`, rows in beat order) into `root/name/`, atomically: a reader finds the
    whole folder or none."""
    root = Path(root)
    final = _record_dir(root, name)
    lengths = {len(arrays[a]) for a in ARRAYS}
    if len(lengths) != 1:
        raise ValueError(f"record {name}: its arrays differ in length ({', '.join(f'{a} {len(arrays[a])}' for a in ARRAYS)})")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        for a in ARRAYS:
            np.save(tmp / f"{a}.npy", np.ascontiguousarray(arrays[a]), allow_pickle=False)
        write_json(tmp / "meta.json", {"cache_key": key, "beats": lengths.pop()})
        os.chmod(tmp, 0o755)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _record_is_current(root: Path, name: str, key: str) -> bool:
    try:
        meta = json.loads((_record_dir(root, name) / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("cache_key") == key and all((root / name / f"{a}.npy").is_file() for a in ARRAYS)


def write_index(root: str | Path, config: dict, records: list[str], key: str) -> None:
    """The folder's `index.json`: what `RecordFiles` reads first (the records, in order, and their beat counts)."""
    root = Path(root)
    beats = [json.loads((_record_dir(root, r) / "meta.json").read_text())["beats"] for r in records]
    write_json(root / "index.json", {"cache_key": key, "config": config, "records": records, "beats": beats})


def build_record_files(config: PreprocessConfig | None = None, out: str | Path = DEFAULT_RECORD_FILES,
                       mitdb_dir: str | Path | None = None, force: bool = False, progress: bool = True) -> Path:
    """Write MIT-BIH's beats in the per-record form, one record in memory at a time; a record already written with
    this configuration is kept (unless `force`). Returns the folder."""
    config = config or PreprocessConfig()
    out, key = project_path(out), cache_key(config)
    root = None
    for name in tqdm(config.records, desc="records", disable=not progress):
        if not force and _record_is_current(out, name, key):
            continue
        root = root or resolve_mitdb_dir(mitdb_dir)
        beats, _ = process_record(root, name, config)
        inputs = record_inputs(beats["signal"], beats["record"], config.template_beats)
        write_record(out, name, {"inputs": inputs, "rr": beats["rr"].astype(np.float32), "label": beats["label"],
                                 "sample": beats["sample"], "rhythm": beats["rhythm"]}, key)
    write_index(out, config.to_dict(), list(config.records), key)
    return out


@dataclass(frozen=True)
class RecordFiles:
    """A per-record folder, opened: the index in memory, each record's arrays memory-mapped when first asked for."""

    root: Path
    config: dict
    records: tuple[str, ...]
    beats: tuple[int, ...]

    @classmethod
    def open(cls, root: str | Path) -> RecordFiles:
        root = project_path(root)
        try:
            index = json.loads((root / "index.json").read_text())
            records, beats, config = tuple(index["records"]), tuple(int(b) for b in index["beats"]), index["config"]
        except FileNotFoundError:
            raise DataError(f"no per-record beats at {root} (index.json is missing): build them with "
                            "ecg_utils.signal.record_files.build_record_files") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{root / 'index.json'} is damaged ({exc}); rebuild the folder with build_record_files "
                            "(force=True)") from None
        return cls(root, config, records, beats)

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """One record's arrays (`ARRAYS`), memory-mapped: reading rows of them reads only those rows' pages."""
        return _mapped(self.root, name)

    def labels(self) -> np.ndarray:
        """Every beat's AAMI letter, records in index order (a byte or so per beat: what drawing an epoch needs)."""
        return self._column("label")

    def rhythms(self) -> np.ndarray:
        """Every beat's annotated rhythm, records in index order (the auxiliary training target)."""
        return self._column("rhythm")

    def _column(self, array: str) -> np.ndarray:
        parts = [np.asarray(self.arrays(r)[array]) for r in self.records]
        return np.concatenate(parts) if parts else np.zeros(0, "<U1")


@functools.lru_cache(maxsize=OPEN_RECORDS)
def _mapped(root: Path, name: str) -> dict[str, np.ndarray]:
    folder = _record_dir(root, name)
    try:
        return {a: np.load(folder / f"{a}.npy", mmap_mode="r", allow_pickle=False) for a in ARRAYS}
    except (OSError, ValueError) as exc:
        raise DataError(f"record {name} in {root} cannot be read ({exc}); rebuild it with build_record_files "
                        "(it rebuilds what is missing or damaged)") from None
