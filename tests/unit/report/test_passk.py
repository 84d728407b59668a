from fractions import Fraction
from itertools import combinations

import pytest

from curriculum.report.passk import mean_pass_at_k, pass_at_k


def brute_force(n: int, c: int, k: int) -> Fraction:
    """The share of k-subsets of n samples (the first c correct) holding at least one correct sample."""
    samples = [i < c for i in range(n)]
    subsets = list(combinations(samples, k))
    return Fraction(sum(any(s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_estimator_equals_counting_over_every_subset(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_force(n, c, k)), abs=1e-12), (n, c, k)


def test_pass_at_1_is_the_share_correct_and_edges():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # only 2 wrong samples: every 3-subset has a right one
    # unbiased, unlike 1 - (1 - c/n)^k, which says 0.784 here
    assert pass_at_k(4, 1, 3) == pytest.approx(0.75)


def test_large_n_stays_finite_and_exact():
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)
    assert pass_at_k(1000, 500, 2) == pytest.approx(1 - (500 * 499) / (1000 * 999))


def test_mean_over_problems_and_bad_arguments():
    assert mean_pass_at_k([(4, 0), (4, 4), (4, 2)], 2) == pytest.approx((0 + 1 + (1 - 1 / 6)) / 3)
    assert mean_pass_at_k([], 1) == 0.0
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(3, 4, 1)
