import math

import pytest

from cl_prompts.results import (
    as_matrix,
    average_accuracy_curve,
    average_forgetting,
    backward_transfer,
    final_average_accuracy,
    forgetting_per_experience,
)

# after exp 0: 90 on exp 0; after exp 1: 80 / 70; after exp 2: 60 / 75 / 90
MATRIX = [[90.0, None, None], [80.0, 70.0, None], [60.0, 75.0, 90.0]]


def test_final_average_accuracy_is_mean_of_last_row():
    assert final_average_accuracy(MATRIX) == pytest.approx((60 + 75 + 90) / 3)


def test_forgetting_uses_best_earlier_accuracy_not_first():
    # exp 0: best earlier 90 -> 60 => 30; exp 1: best earlier 70 (only row 1) -> 75 => -5
    assert forgetting_per_experience(MATRIX) == pytest.approx([30.0, -5.0])
    assert average_forgetting(MATRIX) == pytest.approx(12.5)


def test_forgetting_takes_max_over_intermediate_rows():
    m = [[50.0, None, None], [95.0, 80.0, None], [70.0, 80.0, 99.0]]
    assert forgetting_per_experience(m) == pytest.approx([25.0, 0.0])


def test_backward_transfer_is_final_minus_just_trained():
    assert backward_transfer(MATRIX) == pytest.approx(((60 - 90) + (75 - 70)) / 2)


def test_single_experience_has_no_forgetting_or_bwt():
    assert average_forgetting([[88.0]]) is None
    assert backward_transfer([[88.0]]) is None
    assert final_average_accuracy([[88.0]]) == 88.0


def test_average_accuracy_curve_over_seen_experiences():
    assert average_accuracy_curve(MATRIX) == pytest.approx([90.0, 75.0, 75.0])


def test_unseen_entries_become_nan_and_are_ignored():
    a = as_matrix(MATRIX)
    assert math.isnan(a[0, 2]) and a[2, 0] == 60.0
    full = [[90.0, 1.0, 2.0], [80.0, 70.0, 3.0], [60.0, 75.0, 90.0]]
    assert average_forgetting(full) == average_forgetting(MATRIX)


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "at least one row"),
        ([[1.0, 2.0]], "square"),
        ([[None]], "missing"),
        ([[101.0]], r"\[0, 100\]"),
        ([[float("nan")]], r"\[0, 100\]"),
    ],
)
def test_bad_matrices_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        as_matrix(bad)
