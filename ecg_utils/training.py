"""Training: seeded, resumable, with class-imbalance handling and model selection on validation only.

Imbalance: every epoch takes all beats of the rare classes and a fresh random draw of at most
`max_per_class` beats of each common class (so over the epochs all N beats are seen), and the
loss weights each class by the inverse square root of its count in that epoch. The cap stops
N beats (83 % of MIT-BIH) from dominating the gradient and keeps an epoch short; the tempered
weights push recall on S and F without the unstable, +P-destroying weights of full inverse
frequency.

A run folder holds `config.json`, `history.json`/`.csv` (one row per epoch), `last.pt` (the last
epoch's checkpoint and everything needed to resume, written after every epoch) and `best.pt` (the
checkpoint of the epoch with the best validation macro F1; format in `checkpoint`). All writes are atomic; a killed run resumes from `last.pt` and ends with the same
history and weights as an uninterrupted one. A folder holding a run of another configuration
(or of older model code) is moved to `<name>.previous/` and the run starts over.
"""

from __future__ import annotations

import dataclasses
import math
import random
import shutil
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .aami import CLASSES, to_index
from .atomic import atomic_open, write_json
from .checkpoint import Checkpoint, save_checkpoint
from .dataset import BeatDataset
from .metrics import accuracy, macro_f1
from .models import build_model
from .params import reject_unknown
from .splits import Split


@dataclass(frozen=True)
class TrainConfig:
    """Every choice that shapes a training run; stored in its checkpoints."""

    model: str = "cnn_lstm"  # cnn_lstm, gru or cnn
    model_params: dict[str, Any] = field(default_factory=dict)  # hyperparameters for build_model
    epochs: int = 30  # maximum epochs
    batch_size: int = 256
    lr: float = 3e-3  # peak learning rate of the one-cycle schedule
    weight_decay: float = 1e-2  # AdamW
    max_per_class: int | None = 20_000  # beats per class and epoch; None = all
    class_weight_power: float = 0.5  # loss weight = (count)^-power; 0 = unweighted
    augment: bool = True  # random amplitude scale, baseline offset, noise and time shift per training beat
    patience: int = 8  # epochs without a better validation macro F1 before stopping
    seed: int = 0
    threads: int = 2  # torch CPU threads (results are repeatable for a fixed count)

    def __post_init__(self) -> None:
        build_model(self.model, **self.model_params)  # fails early on a bad name or hyperparameter
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.threads < 1:
            raise ValueError("epochs, batch_size, patience and threads must be >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or (self.max_per_class is not None and self.max_per_class < 1):
            raise ValueError("need lr > 0, weight_decay >= 0 and max_per_class >= 1 (or None)")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        reject_unknown(values, cls, "training")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch: one seed makes a CPU run repeatable."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Tensors:
    x: torch.Tensor  # (n, 1, window)
    rr: torch.Tensor  # (n, 4)
    y: torch.Tensor  # (n,) class indices

    def __len__(self) -> int:
        return len(self.y)


def to_tensors(ds: BeatDataset, idx: np.ndarray) -> Tensors:
    return Tensors(torch.from_numpy(ds.signal[idx]).unsqueeze(1), torch.from_numpy(ds.rr[idx]),
                   torch.from_numpy(to_index(ds.label[idx])))


def epoch_indices(y: torch.Tensor, max_per_class: int | None, generator: torch.Generator) -> torch.Tensor:
    """This epoch's beats, shuffled: every beat of a class under the cap, a random `cap` of the others."""
    parts = []
    for c in range(len(CLASSES)):
        idx = torch.nonzero(y == c).flatten()
        if max_per_class is not None and len(idx) > max_per_class:
            idx = idx[torch.randperm(len(idx), generator=generator)[:max_per_class]]
        parts.append(idx)
    chosen = torch.cat(parts)
    return chosen[torch.randperm(len(chosen), generator=generator)]


def class_weights(y: torch.Tensor, power: float) -> torch.Tensor:
    """(count)^-power per class, scaled to mean 1 over the classes present; absent classes get 0."""
    counts = torch.bincount(y, minlength=len(CLASSES)).double()
    w = torch.where(counts > 0, counts.clamp(min=1) ** -power, torch.zeros_like(counts))
    return (w / w[counts > 0].mean()).float()


def augment_batch(x: torch.Tensor, generator: torch.Generator, max_shift: int = 5) -> torch.Tensor:
    """Perturb beats the way another patient or electrode would: amplitude x0.8-1.25, baseline
    offset (sd 0.1), white noise (sd 0.03), and an R-peak position jittered by up to `max_shift`
    samples (edge values repeat, nothing wraps around). Units are those of the z-scored record."""
    n, _, w = x.shape
    scale = torch.exp(torch.empty(n, 1, 1).uniform_(-0.223, 0.223, generator=generator))
    offset = torch.randn(n, 1, 1, generator=generator) * 0.1
    noise = torch.randn(x.shape, generator=generator) * 0.03
    shift = torch.randint(-max_shift, max_shift + 1, (n, 1, 1), generator=generator)
    idx = (torch.arange(w).view(1, 1, w) - shift).clamp(0, w - 1)
    return torch.gather(x, 2, idx) * scale + offset + noise


@torch.inference_mode()
def predict_proba(model: nn.Module, x: torch.Tensor, rr: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (n, 5) in eval mode, batch by batch."""
    model.eval()
    out = [torch.softmax(model(x[i:i + batch_size], rr[i:i + batch_size]), dim=1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, len(CLASSES)), dtype=np.float32)


def _validate(model: nn.Module, data: Tensors, weights: torch.Tensor) -> dict[str, float]:
    proba = predict_proba(model, data.x, data.rr)
    y = data.y.numpy()
    logp = np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))
    w = weights.numpy()[y]
    pred = proba.argmax(axis=1)
    return {"val_loss": float(-(w * logp).sum() / w.sum()), "val_acc": accuracy(y, pred), "val_macro_f1": macro_f1(y, pred)}


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


def train(config: TrainConfig, ds: BeatDataset, split: Split, run_dir: str | Path, resume: bool = True,
          progress: bool = True) -> TrainResult:
    """Train `config.model` on `split.train`, select on `split.val`; never touches `split.test`."""
    run_dir = Path(run_dir)
    if len(split.train) == 0 or len(split.val) == 0:
        raise ValueError(f"{split.protocol} split has an empty train or validation part; build the dataset from "
                         "more records")
    torch.set_num_threads(config.threads)
    meta = {"train_config": config.to_dict(), "preprocess_config": ds.config,
            "split": split.to_dict(ds.label), "classes": list(CLASSES)}
    train_data, val_data = to_tensors(ds, split.train), to_tensors(ds, split.val)

    seed_everything(config.seed)
    model = build_model(config.model, **config.model_params)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_class = torch.bincount(train_data.y, minlength=len(CLASSES)).tolist()
    epoch_size = sum(min(n, config.max_per_class or n) for n in per_class)
    steps = math.ceil(epoch_size / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps,
                                                    pct_start=0.2)
    history: list[dict[str, float]] = []
    best_f1, best_epoch, stale, done = -1.0, 0, 0, False

    last = run_dir / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        try:
            if {k: state[k] for k in meta} != meta:
                raise ValueError("another training configuration, dataset or split")
            model.load_state_dict(state["model_state"])
        except (ValueError, RuntimeError, KeyError) as exc:
            # A changed configuration or model code makes this a different run: keep the old
            # one beside it (one generation) instead of resuming something else or failing.
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
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", meta)

    loss_fn = nn.CrossEntropyLoss(reduction="none")
    bar = tqdm(range(len(history) + 1, config.epochs + 1), desc=f"{split.protocol} {config.model}",
               disable=not progress or done, initial=len(history), total=config.epochs)
    for epoch in bar:
        if done:
            break
        t0 = time.perf_counter()
        # The epoch's draw depends on (seed, epoch) only, so a resumed run draws what it would have.
        gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        order = epoch_indices(train_data.y, config.max_per_class, gen)
        weights = class_weights(train_data.y[order], config.class_weight_power)
        model.train()
        total_loss, correct = 0.0, 0
        for i in range(0, len(order), config.batch_size):
            b = order[i:i + config.batch_size]
            x = augment_batch(train_data.x[b], gen) if config.augment else train_data.x[b]
            logits = model(x, train_data.rr[b])
            w = weights[train_data.y[b]]
            loss = (loss_fn(logits, train_data.y[b]) * w).sum() / w.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(b)
            correct += int((logits.argmax(1) == train_data.y[b]).sum())
        row = {"epoch": epoch, "lr": scheduler.get_last_lr()[0], "train_loss": total_loss / len(order),
               "train_acc": correct / len(order), **_validate(model, val_data, weights),
               "seconds": time.perf_counter() - t0}
        history.append(row)
        # The checkpoint keeps the epoch's figures but not its wall-clock time (history.csv has it), so
        # the same training on the same machine writes the same bytes.
        ckpt = Checkpoint(**meta, model_state=model.state_dict(), epoch=epoch,
                          val={k: v for k, v in row.items() if k != "seconds"}, n_params=model.n_params)
        if row["val_macro_f1"] > best_f1:
            best_f1, best_epoch, stale = row["val_macro_f1"], epoch, 0
            save_checkpoint(ckpt, run_dir / "best.pt")
        else:
            stale += 1
        done = stale >= config.patience or epoch == config.epochs
        save_checkpoint(ckpt, last, extra={
            "optimizer_state": optimizer.state_dict(), "scheduler_state": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(), "history": history, "best_f1": best_f1, "best_epoch": best_epoch,
            "stale": stale, "done": done})
        _write_history(run_dir, history)
        bar.set_postfix(val_f1=f"{row['val_macro_f1']:.3f}", best=f"{best_f1:.3f}@{best_epoch}")
    bar.close()
    return TrainResult(run_dir, pd.DataFrame(history), best_epoch, best_f1, model.n_params)
