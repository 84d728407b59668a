"""pass@k: the chance that at least one of k samples is correct, estimated without bias.

With n samples per problem of which c are correct, the estimator of Chen et al. (2021) is

    pass@k = 1 - C(n - c, k) / C(n, k)

i.e. one minus the share of k-subsets of the n samples that contain no correct one.
Averaging it over problems gives the benchmark's pass@k. The naive 1 - (1 - c/n)^k is
biased low for small n, which is why we do not use it.
"""

from __future__ import annotations

from collections.abc import Iterable


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `c` correct among `n` samples (needs k <= n)."""
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n (samples), got k={k}, n={n}")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    # C(n-c, k) / C(n, k) as a running product: exact enough and never overflows.
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given as (samples, correct) pairs; 0 for no problems."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    return sum(values) / len(values) if values else 0.0
