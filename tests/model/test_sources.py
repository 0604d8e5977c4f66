"""Beat sources: the per-record form gives training what the in-memory dataset gives, so a training from it is the
same training; under two processes each reads only its own records."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ecg_utils.model.sources import RecordSource, SequenceData
from ecg_utils.model.training import TrainConfig, record_shards, train
from ecg_utils.signal.dataset import PreprocessConfig
from ecg_utils.signal.record_files import build_record_files

TINY = TrainConfig(model_params={"channels": (8, 16, 16), "context": 4, "dim": 16, "hidden": 16, "head": 16},
                   epochs=2, normal_keep=0.2, lr=5e-3, batch_size=64, chunk=16, threads=1)


@pytest.fixture(scope="module")
def per_record(small, mitdb_dir, tmp_path_factory):
    """`small`'s records in the per-record form."""
    ds, _ = small
    folder = tmp_path_factory.mktemp("sources") / "records"
    return build_record_files(PreprocessConfig(records=sorted(set(ds.record), key=list(ds.record).index)), folder,
                              mitdb_dir=mitdb_dir, progress=False)


def test_the_record_source_gives_what_the_dataset_gives(small, per_record):
    ds, _ = small
    memory, files = SequenceData.from_dataset(ds), RecordSource(per_record)
    assert len(files) == len(memory) and files.config == memory.config
    assert np.array_equal(files.label, memory.label) and np.array_equal(files.record, memory.record)
    assert torch.equal(files.y, memory.y) and np.array_equal(files.start, memory.start)
    assert torch.equal(files.rhythm, memory.rhythm)
    rows = np.sort(np.random.default_rng(0).choice(len(ds), 700, replace=False))  # every record, runs and gaps
    for a, b in zip(files.inputs(rows), memory.inputs(rows)):
        assert torch.equal(a, b)


def _weights(run) -> str:
    state = torch.load(run / "best.pt", weights_only=True)["model_state"]
    return hashlib.sha256(b"".join(v.numpy().tobytes() for v in state.values())).hexdigest()


def test_training_from_the_per_record_form_is_the_same_training(small, per_record, tmp_path):
    ds, split = small
    a = train(TINY, ds, split, tmp_path / "memory", progress=False)
    b = train(TINY, RecordSource(per_record), split, tmp_path / "records", progress=False)
    assert _weights(a.run_dir) == _weights(b.run_dir)
    assert a.history.drop(columns=["train_seconds", "seconds"]).equals(b.history.drop(columns=["train_seconds", "seconds"]))
    assert (a.run_dir / "config.json").read_text() == (b.run_dir / "config.json").read_text()  # either resumes


def test_record_shards_deal_whole_records_evenly():
    start = np.repeat([0, 100, 150, 400, 420], [100, 50, 250, 20, 80])  # five records of 100, 50, 250, 20, 80 beats
    rows = np.arange(500)
    shards = record_shards(rows, start, 2)
    assert np.array_equal(np.sort(np.concatenate(shards)), rows)
    assert [sorted(set(start[s])) for s in shards] == [[150], [0, 100, 400, 420]]  # 250 beats against 250
    assert record_shards(rows, start, 1)[0] is rows
    with pytest.raises(ValueError, match="6 processes for 5 training records"):
        record_shards(rows, start, 6)


class CountingSource(RecordSource):
    """A record source that remembers which records it read."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.read: set[str] = set()

    def inputs(self, rows):
        self.read.update(self.record[rows])
        return super().inputs(rows)


def _train_on_rank(rank: int, world: int, folder: str, per_record, split) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    source = CountingSource(per_record)
    train(TINY, source, split, f"{folder}/run", progress=False)
    Path(f"{folder}/read{rank}.json").write_text(json.dumps(sorted(str(r) for r in source.read)))
    dist.destroy_process_group()


def test_each_process_reads_only_its_own_records(small, per_record, tmp_path):
    _, split = small
    torch.multiprocessing.spawn(_train_on_rank, args=(2, str(tmp_path), per_record, split), nprocs=2)
    source = RecordSource(per_record)
    shards = [sorted(set(source.record[s])) for s in record_shards(split.train, source.start, 2)]
    validation = sorted(set(source.record[split.val]))
    read = [json.loads((tmp_path / f"read{r}.json").read_text()) for r in (0, 1)]
    assert shards == [["208"], ["119"]]  # 208 has more training beats
    assert read[1] == shards[1]  # rank 1 trains only; it never opened another record
    assert read[0] == sorted(shards[0] + validation)  # rank 0 also validates
