"""Training: seeded, resumable, over sequences of heartbeats, with class-imbalance handling and model
selection on validation only.

Sequences: a batch is a few chunks of consecutive beats of one record; every beat of a chunk (and
the `context - 1` beats before it) is encoded once, and each training beat of the chunk is classified
from its own and its predecessors' encodings, so a beat costs one encoding whatever the context length.
Imbalance: every epoch takes every chunk holding a beat other than N and a fresh random `normal_keep`
share of the chunks with N beats only, and the loss weights each class by the inverse square root of
its count in that epoch's beats; the tempered weights push recall on S and F without the unstable,
+P-destroying weights of full inverse frequency.
Auxiliary target (optional, `rhythm_weight`): a training-only head names the annotated rhythm each beat sits in, so
that the sequence model is taught what an irregular rhythm looks like (`SequenceStep`).
Distillation (optional, `distil_weight`): the loss mixes the reference class with a teacher's probabilities for each
training beat (an ensemble's, `model.distil`), so that one model learns what several agree on and costs one model's
time to run (Hinton et al. 2015, at temperature 1: the teacher is an average of probabilities already).

A run folder holds `config.json`, `history.json`/`.csv` (one row per epoch), `last.pt` (the last
epoch's checkpoint and everything needed to resume, written after every epoch) and `best.pt` (the
checkpoint of the epoch with the best validation macro F1; format in `checkpoint`). All writes are
atomic; a killed run resumes from `last.pt` and ends with the same history and weights as an
uninterrupted one (in one process, or with one thread). A folder holding a run of another configuration (or of older model code) is moved
to `<name>.previous/` and the run starts over.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import shutil
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ecg_utils.atomic import atomic_open, write_json
from ecg_utils.data.aami import CLASSES
from ecg_utils.data.rhythm_groups import RHYTHM_GROUPS, UNKNOWN
from ecg_utils.data.splits import Split
from ecg_utils.metrics import accuracy, macro_f1
from ecg_utils.model.architectures import build_model, n_params
from ecg_utils.model.checkpoint import Checkpoint, save_checkpoint
from ecg_utils.model.sources import BeatSource, as_source
from ecg_utils.params import reject_unknown
from ecg_utils.signal.dataset import BeatDataset


@dataclass(frozen=True)
class TrainConfig:
    """Every choice that shapes a training run; stored in its checkpoints."""

    model: str = "cnn_lstm"  # cnn_lstm, gru or cnn
    model_params: dict[str, Any] = field(default_factory=dict)  # hyperparameters for build_model
    epochs: int = 12  # maximum epochs
    batch_size: int = 256  # beats classified per step
    chunk: int = 32  # consecutive beats per chunk (batch_size // chunk chunks per step)
    lr: float = 3e-3  # peak learning rate of the one-cycle schedule
    weight_decay: float = 1e-2  # AdamW
    normal_keep: float = 0.5  # share of the chunks with N beats only drawn each epoch
    class_weight_power: float = 0.5  # loss weight = (count)^-power; 0 = unweighted
    augment: bool = True  # random amplitude scale, baseline offset, noise and time shift per training beat
    rhythm_weight: float = 0.0  # weight of the auxiliary loss on each beat's annotated rhythm (0: none)
    distil_weight: float = 0.0  # share of the loss taken by the teacher's probabilities (0: no teacher)
    teacher: str = ""  # what the teacher is (its members and a digest of its probabilities): a run with another resumes
    # nothing
    patience: int = 12  # epochs without a better validation macro F1 before stopping
    seed: int = 0
    threads: int = 2  # torch CPU threads (1: repeatable across processes; 2: within a process only)

    def __post_init__(self) -> None:
        model = build_model(self.model, **self.model_params)  # fails early on a bad name or hyperparameter
        if min(self.epochs, self.batch_size, self.chunk, self.patience, self.threads) < 1:
            raise ValueError("epochs, batch_size, chunk, patience and threads must be >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 < self.normal_keep <= 1 or self.rhythm_weight < 0:
            raise ValueError("need lr > 0, weight_decay >= 0, 0 < normal_keep <= 1 and rhythm_weight >= 0")
        if not 0 <= self.distil_weight <= 1 or bool(self.distil_weight) != bool(self.teacher):
            raise ValueError(f"distil_weight={self.distil_weight}, teacher={self.teacher!r}: a weight between 0 and 1, "
                             "and a teacher named exactly when the weight is above 0 (model.distil.teacher_name)")
        if self.rhythm_weight and not hasattr(model, "features"):
            raise ValueError(f"rhythm_weight={self.rhythm_weight}: model {self.model!r} has no `features` for the "
                             "auxiliary rhythm head to read; use 0 or one of this package's models")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        reject_unknown(values, cls, "training")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch: with one thread the same seed gives the same run in any process; with more,
    some CPU kernels of the sequence models sum in a varying order, so runs repeat only within a process."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def context_index(rows: np.ndarray, start: np.ndarray, context: int) -> np.ndarray:
    """(len(rows), context) rows of each beat's sequence, oldest first, the beat itself last; -1 before its
    record's first beat."""
    idx = rows[:, None] - np.arange(context - 1, -1, -1)
    return np.where(idx >= start[rows][:, None], idx, -1)


def sequence_positions(rows: np.ndarray, start: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows whose encodings the sequences of `rows` need (each once, sorted), and for every sequence step its
    position among them (`len(needed)`, a zero encoding, before a record's first beat)."""
    ctx = context_index(rows, start, context)
    needed, inverse = np.unique(ctx[ctx >= 0], return_inverse=True)
    pos = np.full(ctx.shape, len(needed))
    pos[ctx >= 0] = inverse
    return needed, pos


class SequenceStep(nn.Module):
    """A training step's computation as one `forward` (encode the needed beats, gather their sequences,
    classify), so that DistributedDataParallel sees the whole step.

    With `rhythm_groups`, an auxiliary linear head reads what the class head reads (`features`) and names the
    rhythm each beat sits in; it lives here, not in the model, so checkpoints, exports and every classifier stay
    as they are, and `forward` gives (class logits, rhythm logits)."""

    def __init__(self, model: nn.Module, rhythm_groups: int = 0) -> None:
        super().__init__()
        self.model = model
        self.rhythm_head = nn.Linear(model.features_dim, rhythm_groups) if rhythm_groups else None

    def forward(self, x: torch.Tensor, rr: torch.Tensor, pos: torch.Tensor) -> Any:
        enc = torch.cat([self.model.encode(x, rr), x.new_zeros(1, self.model.dim)])
        if self.rhythm_head is None:
            return self.model.classify(enc[pos])
        features = self.model.features(enc[pos])
        return self.model.head(features), self.rhythm_head(features)


TIMES = ("train_seconds", "seconds")  # history.csv's wall-clock columns: the training steps, the whole epoch


def encode_sequences(model: nn.Module, data: BeatSource, rows: np.ndarray, batch_size: int = 2048,
                     encodings: bool = False) -> Any:
    """Logits for `rows`, each beat encoded once: the sequences' beats are encoded, then gathered
    (zeros before a record's first beat) and classified. With `encodings`, (logits, each row's own encoding)."""
    needed, pos = sequence_positions(rows, data.start, model.context)
    encoded = []
    for i in range(0, len(needed), batch_size):
        encoded.append(model.encode(*data.inputs(needed[i:i + batch_size])))
    enc = torch.cat([*encoded, torch.zeros(1, model.dim)])
    pos = torch.from_numpy(pos)
    logits = model.classify(enc[pos])
    return (logits, enc[pos[:, -1]]) if encodings else logits  # a sequence ends with its own beat


def epoch_chunks(y: np.ndarray, start: np.ndarray, targets: np.ndarray, chunk: int, normal_keep: float,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """This epoch's chunks (arrays of target rows, consecutive within a record), shuffled: every chunk with
    a beat other than N, a random `normal_keep` share of the others."""
    targets = np.sort(targets)
    record_change = np.flatnonzero(np.diff(start[targets]) != 0) + 1
    chunks = [c for run in np.split(targets, record_change) for c in np.array_split(run, max(1, -(-len(run) // chunk)))]
    normal_only = np.array([not (y[c] != 0).any() for c in chunks], dtype=bool)
    drawn = rng.permutation(np.flatnonzero(normal_only))[:round(normal_keep * normal_only.sum())]
    keep = np.sort(np.concatenate([np.flatnonzero(~normal_only), drawn]))
    return [chunks[i] for i in rng.permutation(keep)]


def class_counts(y: torch.Tensor) -> torch.Tensor:
    """Beats per class (all of `CLASSES`, in order)."""
    return torch.bincount(y, minlength=len(CLASSES))


def class_weights(counts: torch.Tensor, power: float) -> torch.Tensor:
    """(count)^-power per class, scaled to mean 1 over the classes present; absent classes get 0."""
    counts = counts.double()
    w = torch.where(counts > 0, counts.clamp(min=1) ** -power, torch.zeros_like(counts))
    return (w / w[counts > 0].mean()).float()


def augment_batch(x: torch.Tensor, generator: torch.Generator, max_shift: int = 5) -> torch.Tensor:
    """Perturb beats the way another patient or electrode would: amplitude x0.8-1.25, baseline
    offset (sd 0.1), white noise (sd 0.03), and an R-peak position jittered by up to `max_shift`
    samples (edge values repeat, nothing wraps around). Units are the template's spread."""
    n, c, w = x.shape
    scale = torch.exp(torch.empty(n, 1, 1).uniform_(-0.223, 0.223, generator=generator))
    offset = torch.randn(n, 1, 1, generator=generator) * 0.1
    noise = torch.randn(x.shape, generator=generator) * 0.03
    shift = torch.randint(-max_shift, max_shift + 1, (n, 1, 1), generator=generator)
    idx = (torch.arange(w).view(1, 1, w) - shift).clamp(0, w - 1).expand(n, c, w)
    return torch.gather(x, 2, idx) * scale + offset + noise


@torch.inference_mode()
def predict_proba(model: nn.Module, data: BeatSource, rows: np.ndarray, batch_size: int = 4096,
                  encodings: bool = False) -> Any:
    """Class probabilities (len(rows), 5) in eval mode, each beat classified from its sequence; with `encodings`,
    (probabilities, each beat's encoding (len(rows), dim)), for methods that read both."""
    model.eval()
    if not len(rows):
        empty = np.zeros((0, len(CLASSES)), dtype=np.float32)
        return (empty, np.zeros((0, model.dim), dtype=np.float32)) if encodings else empty
    parts = [encode_sequences(model, data, rows[i:i + batch_size], encodings=True)
             for i in range(0, len(rows), batch_size)]
    proba = torch.cat([torch.softmax(logits, dim=1) for logits, _ in parts]).numpy()
    return (proba, torch.cat([enc for _, enc in parts]).numpy()) if encodings else proba


def _validate(model: nn.Module, data: BeatSource, rows: np.ndarray, weights: torch.Tensor) -> dict[str, float]:
    proba = predict_proba(model, data, rows)
    y = data.y[rows].numpy()
    logp = np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))
    w = weights.numpy()[y]
    pred = proba.argmax(axis=1)
    return {"val_loss": float(-(w * logp).sum() / w.sum()), "val_acc": accuracy(y, pred), "val_macro_f1": macro_f1(y, pred)}


def distributed_context() -> tuple[int, int]:
    """(rank, world size). Under `torchrun` (WORLD_SIZE > 1) the process group is joined here (gloo: training runs
    on CPU); a plain process is rank 0 of 1."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def record_shards(rows: np.ndarray, start: np.ndarray, world: int) -> list[np.ndarray]:
    """Each process's training rows under torchrun: whole records (so a process reads only its own), dealt largest
    first to the process with the fewest beats so far; in one process, all of `rows`."""
    if world == 1:
        return [rows]
    first, counts = np.unique(start[rows], return_counts=True)
    if len(first) < world:
        raise ValueError(f"{world} processes for {len(first)} training records: every process needs a record of its "
                         "own; run fewer processes (--nproc-per-node)")
    load, dealt = np.zeros(world, np.int64), [[] for _ in range(world)]
    for i in np.argsort(-counts, kind="stable"):
        rank = int(np.argmin(load))
        dealt[rank].append(first[i])
        load[rank] += counts[i]
    return [rows[np.isin(start[rows], d)] for d in dealt]


def step_loss(step_model: nn.Module, data: BeatSource, rows: np.ndarray, weights: torch.Tensor, context: int,
              total_weight: torch.Tensor, augment: torch.Generator | None = None, rhythm_weight: float = 0.0,
              total_beats: torch.Tensor | None = None, teacher: torch.Tensor | None = None,
              distil_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's part of one training step over its beats `rows`: their weighted loss over the whole step's
    weight `total_weight` (so the processes' parts add up to the step's weighted mean), and their logits. With a
    rhythm head (`SequenceStep`), plus `rhythm_weight` times the rhythm loss summed over the beats whose rhythm is
    known, over the step's `total_beats` (every beat of every process). With `teacher` (probabilities for every row
    of `data`), each beat's loss is 1 - `distil_weight` parts cross-entropy with its class and `distil_weight` parts
    with the teacher's probabilities, weighted by its class as the other."""
    needed, pos = sequence_positions(rows, data.start, context)
    x, rr = data.inputs(needed)
    x = augment_batch(x, augment) if augment is not None else x
    out = step_model(x, rr, torch.from_numpy(pos))
    logits = out[0] if isinstance(out, tuple) else out
    target = data.y[rows]
    losses = nn.functional.cross_entropy(logits, target, reduction="none")
    if teacher is not None and distil_weight:
        soft = -(teacher[torch.from_numpy(rows)] * nn.functional.log_softmax(logits, dim=1)).sum(dim=1)
        losses = (1 - distil_weight) * losses + distil_weight * soft
    loss = (losses * weights[target]).sum() / total_weight
    if isinstance(out, tuple):
        rhythm = nn.functional.cross_entropy(out[1], data.rhythm[rows], ignore_index=UNKNOWN, reduction="sum")
        loss = loss + rhythm_weight * rhythm / (total_beats if total_beats is not None else len(rows))
    return loss, logits


def _write_history(run_dir: Path, history: list[dict[str, float]]) -> None:
    write_json(run_dir / "history.json", history)
    with atomic_open(run_dir / "history.csv", "w") as handle:
        pd.DataFrame(history).to_csv(handle, index=False)


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    history: pd.DataFrame
    best_epoch: int
    best_val_macro_f1: float
    n_params: int


def train(config: TrainConfig, ds: BeatDataset | BeatSource, split: Split, run_dir: str | Path, resume: bool = True,
          progress: bool = True, data: BeatSource | None = None, teacher: np.ndarray | None = None) -> TrainResult:
    """Train `config.model` on `split.train`, select on `split.val`; never touches `split.test`.

    `ds`: a dataset, or any `BeatSource` (the per-record form of a corpus too big for memory). `data`: a dataset's
    model inputs (`SequenceData.from_dataset(ds)`), to build once for many runs. `teacher`: with `distil_weight`, the
    teacher's class probabilities for every row of the data (`model.distil.teacher_proba`; only training rows are
    read, never a validation row).

    Under `torchrun` each process is dealt whole training records (`record_shards`), draws its own chunks from them
    each epoch and contributes as many chunks to every step, an equal part of the epoch's chunks (a smaller share
    repeats some, as PyTorch's DistributedSampler pads; a larger one leaves some of its shuffled chunks for the next
    epoch); the class weights come from all processes' counts, each share's loss is divided by
    the whole step's weight and scaled by the world size, so DistributedDataParallel's gradient average is the
    one-process gradient of the step the processes' chunks make together. Only rank 0 writes. Batch normalisation
    sees each process's share, not the whole step (PyTorch's SyncBatchNorm needs a GPU), and the draws differ from
    one process's, which is why two processes reach one process's loss but not its weights bit for bit
    (tests/model/test_distributed.py).
    """
    run_dir = Path(run_dir)
    if len(split.train) == 0 or len(split.val) == 0:
        raise ValueError(f"{split.protocol} split has an empty train or validation part; build the dataset from "
                         "more records")
    torch.set_num_threads(config.threads)
    rank, world = distributed_context()
    data = data if data is not None else as_source(ds)
    soft = _teacher_tensor(config, teacher, split, len(data))
    meta = {"train_config": config.to_dict(), "preprocess_config": data.config,
            "split": split.to_dict(data.label), "classes": list(CLASSES)}
    y = data.y.numpy()
    shards = record_shards(split.train, data.start, world)

    seed_everything(config.seed)
    model = build_model(config.model, **config.model_params)
    step = SequenceStep(model, len(RHYTHM_GROUPS) if config.rhythm_weight else 0)
    optimizer = torch.optim.AdamW(step.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_step = max(1, config.batch_size // config.chunk // world)  # chunks per process and step
    # Every epoch draws the same number of chunks from a shard; each process takes an equal part of their sum, so an
    # epoch has the same steps whatever the number of processes (and a run resumes under another number).
    padded = math.ceil(sum(len(epoch_chunks(y, data.start, s, config.chunk, config.normal_keep,
                                            np.random.default_rng(0))) for s in shards) / world)
    steps = math.ceil(padded / per_step)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps,
                                                    pct_start=0.2)
    history: list[dict[str, float]] = []
    best_f1, best_epoch, stale, done = -1.0, 0, 0, False

    last = run_dir / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        try:
            # A stored configuration is read with today's defaults, so a setting added since keeps older runs.
            stored = {**{k: state[k] for k in meta},
                      "train_config": TrainConfig.from_dict(state["train_config"]).to_dict()}
            if stored != meta:
                raise ValueError("another training configuration, dataset or split")
            model.load_state_dict(state["model_state"])
            if step.rhythm_head is not None:
                step.rhythm_head.load_state_dict(state["rhythm_head_state"])
        except (ValueError, RuntimeError, KeyError) as exc:
            # A changed configuration or model code makes this a different run: keep the old
            # one beside it (one generation) instead of resuming something else or failing.
            if world > 1:
                dist.barrier()  # every process has read the old run before rank 0 moves it
            if rank == 0:
                aside = run_dir.with_name(run_dir.name + ".previous")
                shutil.rmtree(aside, ignore_errors=True)
                run_dir.rename(aside)
                warnings.warn(f"{run_dir} held a run that does not fit this one ({str(exc).splitlines()[0][:120]}); "
                              f"moved it to {aside.name} and starting over", stacklevel=2)
        else:
            optimizer.load_state_dict(state["optimizer_state"])
            scheduler.load_state_dict(state["scheduler_state"])
            torch.set_rng_state(state["torch_rng"])
            history, best_f1, best_epoch, stale, done = (state["history"], state["best_f1"], state["best_epoch"],
                                                         state["stale"], state["done"])
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", meta)
    step_model: nn.Module = step
    if world > 1:
        # Batch norm trains on each share's own statistics, and only rank 0's running statistics are ever saved or
        # validated: broadcasting rank 0's buffers before every step would change nothing but add a wait. Every step
        # runs the same graph with every parameter, so DDP need not search it again at each step (static_graph). The
        # gradients live in DDP's communication buckets instead of being copied in and out at every step
        # (gradient_as_bucket_view): the same values, one copy less.
        step_model = nn.parallel.DistributedDataParallel(step_model, broadcast_buffers=False, static_graph=True,
                                                         gradient_as_bucket_view=True)

    bar = tqdm(range(len(history) + 1, config.epochs + 1), desc=f"{split.protocol} {config.model}",
               disable=not progress or done or rank != 0, initial=len(history), total=config.epochs)
    for epoch in bar:
        if done:
            break
        t0 = time.perf_counter()
        # The epoch's draw depends on (seed, epoch) only (and the rank under torchrun), so a resumed run draws what
        # it would have; each process augments its share with its own stream (rank 0 alone: the one-process stream).
        gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 7_919 * rank)
        chunks = epoch_chunks(y, data.start, shards[rank], config.chunk, config.normal_keep,
                              np.random.default_rng([config.seed, epoch] + ([rank] if world > 1 else [])))
        chunks = [chunks[j % len(chunks)] for j in range(padded)]  # a larger share leaves its last, a smaller repeats
        counts = class_counts(torch.from_numpy(y[np.concatenate(chunks)]))
        if world > 1:
            dist.all_reduce(counts)
        weights = class_weights(counts, config.class_weight_power)
        model.train()
        sums = torch.zeros(3, dtype=torch.float64)  # the epoch's loss x beats, correct beats, beats
        batches = [np.concatenate(chunks[i:i + per_step]) for i in range(0, padded, per_step)]
        # Every step's weight and beats over all processes, in one exchange per epoch rather than one per step.
        totals = torch.stack([torch.stack([weights[data.y[rows]].sum(), torch.tensor(float(len(rows)))])
                              for rows in batches])
        if world > 1:
            dist.all_reduce(totals)
        for rows, total in zip(batches, totals):
            loss, logits = step_loss(step_model, data, rows, weights, model.context, total[0],
                                     gen if config.augment else None, config.rhythm_weight, total[1], soft,
                                     config.distil_weight)
            optimizer.zero_grad(set_to_none=True)
            (loss * world).backward()  # DistributedDataParallel averages over the processes
            optimizer.step()
            scheduler.step()
            sums += torch.tensor([loss.item() * float(total[1]), int((logits.argmax(1) == data.y[rows]).sum()),
                                  len(rows)], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(sums)
        train_seconds = time.perf_counter() - t0  # the epoch's training alone: what more processes share
        # Rank 0 alone validates (the other processes would read the validation records for nothing) and its
        # figures decide for all, so every process stops at the same epoch.
        row = {"epoch": epoch, "lr": scheduler.get_last_lr()[0], "train_loss": float(sums[0] / sums[2]),
               "train_acc": float(sums[1] / sums[2]), **(_validate(model, data, split.val, weights) if rank == 0 else {}),
               "train_seconds": train_seconds, "seconds": time.perf_counter() - t0}
        if world > 1:
            shared = [row]
            dist.broadcast_object_list(shared, src=0)
            row = shared[0]
        history.append(row)
        # The checkpoint keeps the epoch's figures but not its wall-clock times (history.csv has them), so
        # the same training on the same machine writes the same bytes.
        ckpt = Checkpoint(**meta, model_state=model.state_dict(), epoch=epoch,
                          val={k: v for k, v in row.items() if k not in TIMES}, n_params=n_params(model))
        if row["val_macro_f1"] > best_f1:
            best_f1, best_epoch, stale = row["val_macro_f1"], epoch, 0
            if rank == 0:
                save_checkpoint(ckpt, run_dir / "best.pt")
        else:
            stale += 1
        done = stale >= config.patience or epoch == config.epochs
        if rank == 0:
            save_checkpoint(ckpt, last, extra={
                "optimizer_state": optimizer.state_dict(), "scheduler_state": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "history": history, "best_f1": best_f1,
                "best_epoch": best_epoch, "stale": stale, "done": done,
                **({"rhythm_head_state": step.rhythm_head.state_dict()} if step.rhythm_head is not None else {})})
            _write_history(run_dir, history)
        bar.set_postfix(val_f1=f"{row['val_macro_f1']:.3f}", best=f"{best_f1:.3f}@{best_epoch}")
    bar.close()
    if world > 1:
        dist.barrier()  # rank 0's files are complete before any process returns
    return TrainResult(run_dir, pd.DataFrame(history), best_epoch, best_f1, n_params(model))


def _teacher_tensor(config: TrainConfig, teacher: np.ndarray | None, split: Split, n: int) -> torch.Tensor | None:
    """The teacher's probabilities as the loss reads them, checked: one row of 5 per beat of the data, finite and
    summing to 1 on every training row."""
    if not config.distil_weight:
        if teacher is not None:
            raise ValueError("a teacher was given but distil_weight is 0: set the weight or leave the teacher out")
        return None
    if teacher is None or np.shape(teacher) != (n, len(CLASSES)):
        raise ValueError(f"distil_weight={config.distil_weight} needs the teacher's probabilities, one row of "
                         f"{len(CLASSES)} per beat ({n} beats); got {None if teacher is None else np.shape(teacher)}")
    rows = np.asarray(teacher, np.float32)[split.train]
    if not np.isfinite(rows).all() or not np.allclose(rows.sum(axis=1), 1, atol=1e-3):
        raise ValueError("the teacher's probabilities of the training beats are not finite rows summing to 1")
    return torch.from_numpy(np.asarray(teacher, np.float32))  # other rows may be NaN: a step that read one would show


def run_config(config: Mapping[str, Any], epochs: int, seed: int, fold: int | None = None) -> TrainConfig:
    """Notebook 02's recipe for one run: the configuration with the run's epochs, and seed `seed + fold` for the
    model of a fold (`seed` for an intra-patient run)."""
    return TrainConfig.from_dict({**config, "epochs": epochs, "seed": seed + (fold or 0)})


def train_from_params(params_file: str | Path, config_name: str, protocol: str, fold: int | None = None,
                      progress: bool = True) -> TrainResult:
    """One of notebook 02's trainings from its parameters file (CONFIGS, FOLDS, EPOCHS, SEED, DATASET, RUNS): the
    same configuration, seed (SEED + fold), split and run folder, so a run started here and one started by the
    notebook are the same run (and either resumes the other)."""
    import yaml

    from ecg_utils.data.splits import make_split
    from ecg_utils.paths import project_path, run_name
    from ecg_utils.signal.dataset import load_dataset

    params = yaml.safe_load(Path(params_file).read_text()) or {}
    missing = [k for k in ("CONFIGS", "EPOCHS", "SEED", "DATASET", "RUNS") if k not in params]
    if missing:
        raise ValueError(f"{params_file} lacks {', '.join(missing)}: give a parameters file of notebook 02")
    configs = params["CONFIGS"]
    if config_name not in configs:
        raise ValueError(f"no configuration {config_name!r} in {params_file}; it has {', '.join(configs)}")
    if protocol == "inter_patient" and fold is None:
        raise ValueError("the inter-patient protocol trains one fold per run: pass --fold")
    ds = load_dataset(project_path(params["DATASET"]))
    if protocol == "inter_patient":
        split = make_split(protocol, ds.label, ds.record, folds=params.get("FOLDS", 5), fold=fold)
    else:
        split, fold = make_split(protocol, ds.label, ds.record, seed=params["SEED"]), None
    config = run_config(configs[config_name], params["EPOCHS"], params["SEED"], fold)
    return train(config, ds, split, project_path(params["RUNS"]) / run_name(protocol, config_name, fold),
                 progress=progress)


def main(argv: list[str] | None = None) -> int:
    """`python -m ecg_utils.model.training`, alone or under `torchrun --nproc-per-node N`."""
    import argparse

    parser = argparse.ArgumentParser(description="Train one of notebook 02's runs (alone or under torchrun).")
    parser.add_argument("--params", default="params/02-train.yaml", help="notebook 02's parameters file")
    parser.add_argument("--config", default="cnn_lstm", help="a name under CONFIGS in the parameters file")
    parser.add_argument("--protocol", choices=["inter_patient", "intra_patient"], default="inter_patient")
    parser.add_argument("--fold", type=int, help="the DS1 fold (inter-patient runs)")
    args = parser.parse_args(argv)
    try:
        result = train_from_params(args.params, args.config, args.protocol, args.fold)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rank, world = distributed_context()
    if rank == 0:
        print(f"{result.run_dir}: best epoch {result.best_epoch}, validation macro F1 {result.best_val_macro_f1:.3f}, "
              f"{world} process{'es' if world > 1 else ''}")
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
