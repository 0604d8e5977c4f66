"""The checkpoint format: one versioned, typed record of a trained model.

Training writes it (`best.pt`; `last.pt` adds the state needed to resume); evaluation, export,
publishing and inference read it here, by attribute, never by string key. Reading a checkpoint
needs only PyTorch and the model code: a process that classifies records never imports training
(or scikit-learn). Files of the per-beat models that came before (formats 0 and 1) and files from a
newer format are refused with a message that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ecg_utils.atomic import atomic_open
from ecg_utils.errors import DataError
from ecg_utils.signal.preprocess import PreprocessConfig

FORMAT_VERSION = 2  # 2: beat-sequence models (and ensembles of them); 1 and 0: per-beat models


@dataclass(frozen=True)
class Checkpoint:
    train_config: dict[str, Any]  # TrainConfig.to_dict(): model name and parameters, seed, epochs, ...
    preprocess_config: dict[str, Any]  # PreprocessConfig.to_dict() of the dataset it was trained on
    split: dict[str, Any]  # Split.to_dict(): protocol, parameters, records and class counts per part
    classes: list[str]
    model_state: dict[str, Any]  # the weights (tensors)
    epoch: int  # the epoch chosen on validation
    val: dict[str, float]  # that epoch's training and validation figures
    n_params: int
    format_version: int = FORMAT_VERSION

    @property
    def model_name(self) -> str:
        return self.train_config["model"]

    @property
    def model_params(self) -> dict[str, Any]:
        return self.train_config["model_params"]

    @property
    def protocol(self) -> str:
        return self.split["protocol"]

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.preprocess_config)

    @property
    def is_ensemble(self) -> bool:
        return self.model_name == "ensemble"

    @property
    def val_macro_f1(self) -> float:
        return float(self.val["val_macro_f1"])

    def records(self, part: str) -> list[str]:
        """The records of the split's 'train', 'val' or 'test' part."""
        return self.split["records"][part]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "checkpoint") -> Checkpoint:
        version = values.get("format_version", 0)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise DataError(f"{source} has checkpoint format {version!r}, newer than this ecg_utils reads "
                            f"({FORMAT_VERSION}); update the package")
        names = [f.name for f in fields(cls) if f.name != "format_version"]
        missing = [n for n in names if n not in values]
        if missing:
            raise DataError(f"{source} lacks {missing}: not a checkpoint of this repo; train it again (notebook 02) "
                            "or use the published model")
        if version < FORMAT_VERSION:
            raise DataError(f"{source} holds a per-beat model (checkpoint format {version}) from before the beat-sequence "
                            "models; train it again (notebook 02) or use the published model")
        return cls(**{n: values[n] for n in names})


def save_checkpoint(ckpt: Checkpoint, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write `ckpt` (plus `extra` fields, e.g. the state to resume training) atomically."""
    import torch

    with atomic_open(path, "wb") as handle:
        torch.save({**ckpt.to_dict(), **(extra or {})}, handle)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint at `path`; a missing, damaged or foreign file gets a DataError that says what to do."""
    import torch

    path = Path(path)
    try:
        values = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises assorted errors on damaged or foreign files
        raise DataError(f"model file {path} is not a readable checkpoint of this repo ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); train it again (notebook 02) or "
                        "use the published model") from exc
    if not isinstance(values, dict):
        raise DataError(f"model file {path} holds a {type(values).__name__}, not a checkpoint of this repo")
    return Checkpoint.from_dict(values, source=f"model file {path}")


def ensemble_checkpoint(paths: list[str | Path]) -> Checkpoint:
    """One checkpoint holding the models at `paths` (same architecture and data, e.g. the cross-validation
    fold models) as an ensemble averaged in probability (`models.Ensemble`).

    Its split lists every member's training and validation records and the shared test records; its
    validation figures are the members' means (each member on its own validation fold).
    """
    members = [read_checkpoint(p) for p in paths]
    first = members[0]
    for path, m in zip(paths, members):
        if m.is_ensemble or (m.model_name, m.model_params, m.preprocess_config, m.records("test")) != (
                first.model_name, first.model_params, first.preprocess_config, first.records("test")):
            raise DataError(f"{path} is not a member like {paths[0]}: an ensemble needs one architecture, one "
                            "dataset configuration and one test set")
    records = {part: sorted({r for m in members for r in m.records(part)}) for part in ("train", "val")}
    state = {f"members.{i}.{k}": v for i, m in enumerate(members) for k, v in m.model_state.items()}
    return Checkpoint(
        train_config={"model": "ensemble", "model_params": {"model": first.model_name, "model_params":
                                                            first.model_params, "members": len(members)},
                      "members": [m.train_config for m in members]},
        preprocess_config=first.preprocess_config,
        split={"protocol": first.protocol, "params": {"members": [m.split["params"] for m in members]},
               "records": {**records, "test": first.records("test")}},
        classes=first.classes, model_state=state, epoch=max(m.epoch for m in members),
        val={k: sum(m.val[k] for m in members) / len(members) for k in first.val}, n_params=sum(m.n_params for m in members))


def load_model(path: str | Path) -> tuple[Any, Checkpoint]:
    """The model stored at `path`, rebuilt in eval mode, and its checkpoint."""
    from ecg_utils.model.architectures import build_model

    ckpt = read_checkpoint(path)
    try:
        model = build_model(ckpt.model_name, **ckpt.model_params)
        model.load_state_dict(ckpt.model_state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise DataError(f"model file {path} does not fit this repo's {ckpt.model_name!r} model "
                        f"({str(exc).splitlines()[0][:200]}); train it again (notebook 02)") from exc
    return model.eval(), ckpt
