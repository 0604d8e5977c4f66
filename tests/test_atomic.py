import json

import pytest

from ecg_utils.atomic import atomic_open, write_json


def test_atomic_open_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind

    with atomic_open(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new"


def test_write_json_creates_folders(tmp_path):
    path = tmp_path / "a" / "b.json"
    write_json(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
