import numpy as np

from ecg_utils.data.records import MITDB_FIX, read_rhythms
from ecg_utils.data.rhythm_groups import RHYTHM_GROUPS, UNKNOWN, rhythm_index


def test_rhythm_names_map_to_their_groups_and_others_are_unknown():
    got = rhythm_index(["(N", "(AFIB", "(AFL", "(SVTA", "(B", "(VT", "(XYZ", "unannotated"])
    af, run, ventricular = (RHYTHM_GROUPS.index(g) for g in ("atrial fibrillation or flutter", "supraventricular run",
                                                             "ventricular"))
    assert got.tolist() == [0, af, af, run, ventricular, ventricular, UNKNOWN, UNKNOWN]


def test_every_rhythm_annotated_in_mitdb_has_a_group(mitdb_dir):
    names = {n for r in (mitdb_dir / "RECORDS").read_text().split()
             for n in read_rhythms(mitdb_dir / r, fix=MITDB_FIX).label}
    assert len(names) >= 10 and (rhythm_index(sorted(names)) != UNKNOWN).all(), names
    assert np.isin(["(AFIB", "(B", "(SVTA"], sorted(names)).all()
