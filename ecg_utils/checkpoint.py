"""The checkpoint format: one versioned, typed record of a trained model.

Training writes it (`best.pt`; `last.pt` adds the state needed to resume); evaluation, export,
publishing and inference read it here, by attribute, never by string key. Reading a checkpoint
needs only PyTorch and the model code: a process that classifies records never imports training
(or scikit-learn). Files written before the format had a version (format 0) hold the same fields
and load as they are; a file from a newer format is refused with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .atomic import atomic_open
from .errors import DataError
from .preprocess import PreprocessConfig

FORMAT_VERSION = 1


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


def load_model(path: str | Path) -> tuple[Any, Checkpoint]:
    """The model stored at `path`, rebuilt in eval mode, and its checkpoint."""
    from .models import build_model

    ckpt = read_checkpoint(path)
    try:
        model = build_model(ckpt.model_name, **ckpt.model_params)
        model.load_state_dict(ckpt.model_state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise DataError(f"model file {path} does not fit this repo's {ckpt.model_name!r} model "
                        f"({str(exc).splitlines()[0][:200]}); train it again (notebook 02)") from exc
    return model.eval(), ckpt
