"""Project paths, resolved from this file so notebooks and tests agree from any folder."""

from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJ_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
PROCESSED_DIR = DATA_DIR / "processed"
REPORTS_DIR = PROJ_ROOT / "reports"
FIGURES_DIR = REPORTS_DIR / "figures"
RUNS_DIR = PROJ_ROOT / "runs"

DEFAULT_MITDB_DIR = RAW_DIR / "mitdb"
DEFAULT_DATASET = PROCESSED_DIR / "mitdb_beats.npz"


def project_path(path: str | Path) -> Path:
    """Resolve a relative path against the project root (notebooks run from notebooks/)."""
    path = Path(path)
    return path if path.is_absolute() else (PROJ_ROOT / path).resolve()


def run_name(protocol: str, model: str, fold: int | None = None) -> str:
    """The run folder of a model: `<protocol>_<model>`, and `<protocol>_<model>_fold<k>` for a cross-validation
    fold model (the folder without a fold then holds the fold models' ensemble)."""
    return f"{protocol}_{model}" if fold is None else f"{protocol}_{model}_fold{fold}"


#: A configuration's student, distilled from its ensemble, is the run `<protocol>_<config>_distilled` (notebook 02).
STUDENT_SUFFIX = "_distilled"


def student_of(config: str) -> str:
    """The model name of `config`'s student."""
    return config + STUDENT_SUFFIX


def teacher_of(model: str) -> str | None:
    """The configuration whose ensemble taught `model`, or None for a model that is not a student."""
    return model[: -len(STUDENT_SUFFIX)] if model.endswith(STUDENT_SUFFIX) else None
