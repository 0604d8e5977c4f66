"""Parameter mappings from notebooks and parameters files: a misspelt key fails, it is never ignored."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def reject_unknown(values: Mapping[str, Any], cls: type, what: str) -> None:
    """Raise if `values` has keys that are not fields of the dataclass `cls`, naming them and the valid ones."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} parameter(s) {unknown}; valid: {sorted(known)}")
