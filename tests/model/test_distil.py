import numpy as np
import pytest

from ecg_utils.model.checkpoint import load_model
from ecg_utils.model.distil import teacher_name, teacher_proba
from ecg_utils.model.sources import SequenceData
from ecg_utils.model.training import predict_proba


def test_the_teacher_is_its_members_mean_on_the_rows_asked_for(small, tiny_model):
    ds, split = small
    data = SequenceData.from_dataset(ds)
    proba = teacher_proba([tiny_model, tiny_model], data, split.train)
    own = predict_proba(load_model(tiny_model)[0], data, split.train)
    np.testing.assert_allclose(proba[split.train], own, atol=1e-6)
    others = np.setdiff1d(np.arange(len(ds)), split.train)
    assert np.isnan(proba[others]).all()
    name = teacher_name([tiny_model, tiny_model], proba)
    assert name.startswith(f"mean of 2: {tiny_model.parent.name}, ") and "sha256 " in name
    other = proba.copy()
    other[split.train[0]] = [1, 0, 0, 0, 0]
    assert teacher_name([tiny_model, tiny_model], other) != name  # another teacher, another name
    with pytest.raises(ValueError, match="at least one member"):
        teacher_proba([], data, split.train)
