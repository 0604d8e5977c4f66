from dataclasses import dataclass

import pytest

from ecg_utils.params import reject_unknown


@dataclass
class Example:
    epochs: int = 1
    seed: int = 0


def test_reject_unknown_names_the_keys_and_the_valid_ones():
    reject_unknown({"epochs": 3}, Example, "example")
    with pytest.raises(ValueError, match=r"unknown example parameter\(s\) \['epoch', 'sed'\]; valid: \['epochs', 'seed'\]"):
        reject_unknown({"epoch": 3, "sed": 1}, Example, "example")
