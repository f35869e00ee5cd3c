"""The core's one whole-number check: every non-whole value is refused with its message, never another error."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_core.checks import is_whole, positive_int


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e400, np.float64("inf"), 2.5, 0, -3, True, "4"])
def test_what_is_not_a_positive_whole_number_is_refused_by_name(value):
    assert not is_whole(value, 1)
    with pytest.raises(ValueError, match=r"rank r must be a positive integer, got"):
        positive_int("rank r", value)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**30)))
def test_any_number_gets_an_answer_and_whole_ones_pass(value):
    whole = isinstance(value, int) or (math.isfinite(value) and value == int(value))
    assert is_whole(value, 1) == (whole and value >= 1)


def test_exact_takes_only_an_int():
    assert is_whole(4, 1, exact=True) and not is_whole(4.0, 1, exact=True) and positive_int("r", 4.0) == 4
