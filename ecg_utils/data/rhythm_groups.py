"""The rhythm a beat sits in, as a training target beside its class: the reference rhythm annotations grouped into
the few rhythms that change what a premature-looking beat means.

An auxiliary target, read in training only (`training.TrainConfig.rhythm_weight`): a model that must also say
"this stretch is atrial fibrillation" learns that an irregular rhythm makes normal beats look premature, which is
where most false S calls come from. Nothing that classifies reads it. Rhythm names follow PhysioNet's annotation
convention (`(AFIB`, `(SVTA` …); a name outside the groups, or a record without rhythm marks, gets -1, which the
loss ignores.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: Group order used by the auxiliary head's outputs.
RHYTHM_GROUPS: tuple[str, ...] = ("regular", "atrial fibrillation or flutter", "supraventricular run",
                                  "ventricular")
_MEMBERS: dict[str, tuple[str, ...]] = {
    "regular": ("(N", "(SBR", "(BII", "(NOD", "(P", "(PREX"),  # sinus, nodal and paced rhythms, conduction blocks
    "atrial fibrillation or flutter": ("(AFIB", "(AFL"),
    "supraventricular run": ("(SVTA", "(AB"),  # supraventricular tachyarrhythmia, atrial bigeminy
    "ventricular": ("(B", "(T", "(VT", "(IVR", "(VFL"),  # bigeminy, trigeminy, tachycardia, idioventricular, flutter
}
RHYTHM_INDEX: dict[str, int] = {name: RHYTHM_GROUPS.index(group) for group, names in _MEMBERS.items()
                                for name in names}
UNKNOWN = -1  # the loss's ignore_index


def rhythm_index(rhythms: Iterable[str]) -> np.ndarray:
    """Each rhythm name's group index in `RHYTHM_GROUPS`; `UNKNOWN` for a name outside them."""
    return np.array([RHYTHM_INDEX.get(str(r), UNKNOWN) for r in rhythms], dtype=np.int64)
