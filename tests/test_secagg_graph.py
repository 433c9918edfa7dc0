"""Tests for secagg.graph: the SecAgg+ (k, t) finder, its exact tails, and the graph."""

from __future__ import annotations

import itertools
import math
import os
import time
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from secagg import graph as g
from secagg.errors import ConfigurationError
from secagg.graph import (
    GraphParams,
    NeighbourGraph,
    ThreatModel,
    check_parameters,
    find_parameters,
    min_threshold,
)

DEFAULT = ThreatModel()
THREATS = [
    DEFAULT,
    ThreatModel(corrupt_fraction=0.0, dropout_fraction=0.1, lying_aggregator=True),
    ThreatModel(corrupt_fraction=0.1, dropout_fraction=0.1, lying_aggregator=False),
    ThreatModel(corrupt_fraction=0.2, dropout_fraction=0.05, lying_aggregator=True),
    ThreatModel(corrupt_fraction=0.05, dropout_fraction=0.2, lying_aggregator=True, sigma=60),
    ThreatModel(corrupt_fraction=0.0, dropout_fraction=0.0, lying_aggregator=False),
]
SEED = bytes(range(32))


# --------------------------------------------------------------------------- #
# Independent reference computations (plain sums of math.comb, Fractions)
# --------------------------------------------------------------------------- #


def ref_pmf_numerators(N: int, K: int, k: int) -> dict[int, int]:
    lo, hi = max(0, k - (N - K)), min(k, K)
    return {j: math.comb(K, j) * math.comb(N - K, k - j) for j in range(lo, hi + 1)}


def ref_upper_quantile(N: int, K: int, k: int, tail: Fraction) -> int:
    """Smallest x with P[X > x] <= tail, by scanning down from the top."""
    total = math.comb(N, k)
    a = ref_pmf_numerators(N, K, k)
    lo, hi = min(a), max(a)
    s, x = 0, hi
    while x > lo and Fraction(s + a[x], total) <= tail:
        s += a[x]
        x -= 1
    return x


def ref_lower_quantile(N: int, K: int, k: int, tail: Fraction) -> int:
    """Largest x with P[X < x] <= tail, by scanning up from the bottom."""
    total = math.comb(N, k)
    a = ref_pmf_numerators(N, K, k)
    lo, hi = min(a), max(a)
    s, x = 0, lo
    while x < hi and Fraction(s + a[x], total) <= tail:
        s += a[x]
        x += 1
    return x


def ref_ring_connected(n: int, k: int, bad: int, sigma: int) -> bool:
    """Condition 1 with binomials instead of falling factorials."""
    if k > bad:
        return True
    bound = Fraction(n * (n - k - 1), 2) * Fraction(math.comb(n - k, bad - k), math.comb(n, bad))
    return bound < Fraction(1, 2 ** (sigma + 1))


def ref_counts(n: int, threat: ThreatModel) -> tuple[int, int, int]:
    """(n_C, n_D, survivors) = (ceil(gamma n), ceil(delta n), floor((1 - delta) n)).

    blindsum rounds the threat counts UP (the spec writes floor), from the decimal
    the fraction prints as.
    """
    gamma = Fraction(repr(threat.corrupt_fraction))
    delta = Fraction(repr(threat.dropout_fraction))
    n_c, n_d = math.ceil(gamma * n), math.ceil(delta * n)
    survivors = math.floor((1 - delta) * n)
    assert survivors == n - n_d
    return n_c, n_d, survivors


def ref_full(n: int, threat: ThreatModel) -> tuple[int, bool]:
    """(least private t, live?) for the full graph k = n - 1, by search."""
    k = n - 1
    n_c, n_d, _ = ref_counts(n, threat)
    if threat.lying_aggregator:
        t = next(t for t in itertools.count(2) if 2 * t > k + n_c)
    else:
        t = next(t for t in itertools.count(2) if t > n_c)
    return t, t <= k - n_d  # live: t shares survive n_D dropouts among the k neighbours


def ref_candidate(n: int, k: int, threat: ThreatModel) -> tuple[bool, int]:
    """(passes conditions 1-5, t) for an even k < n - 1, straight from the spec."""
    n_c, n_d, survivors = ref_counts(n, threat)
    connected = ref_ring_connected(n, k, n_c + n_d, threat.sigma)
    t1 = ref_upper_quantile(n, n_c, k, Fraction(1, 2 ** (threat.sigma + 1) * n))
    t2 = ref_lower_quantile(n, survivors, k, Fraction(1, 2**threat.eta * n))
    if threat.lying_aggregator:
        t1 = math.ceil(Fraction(t1 + k) / 2 - Fraction(5, 8))  # ceil((t1 + k - 1.25) / 2)
    t = max(t1 + 1, 2)
    return connected and t2 > t1 and t <= t2, t


def ref_find(n: int, threat: ThreatModel) -> GraphParams | None:
    """The finder from the reference pieces: first passing k, else a live full graph, else None."""
    for k in range(2, n - 1, 2):
        ok, t = ref_candidate(n, k, threat)
        if ok:
            return GraphParams(n, k, t, False)
    t, live = ref_full(n, threat)
    return GraphParams(n, n - 1, t, True) if live else None


def assert_no_live_parameters(n: int, threat: ThreatModel) -> None:
    """The reference finds no live k (nor full graph) and the finder says so, naming the limit."""
    assert not any(ref_candidate(n, k, threat)[0] for k in range(2, n - 1, 2))
    t, live = ref_full(n, threat)
    assert not live
    n_c, n_d, _ = ref_counts(n, threat)
    k = n - 1
    with pytest.raises(ConfigurationError, match=f"no live parameters for n={n}:") as info:
        find_parameters(n, threat)
    message = str(info.value)
    assert f"the full graph (k={k}) needs t={t} for privacy" in message
    assert f"n_C=ceil(corrupt_fraction*n)={n_c}" in message
    assert (
        f"liveness needs t <= k - n_D = {k - n_d} (n_D=ceil(dropout_fraction*n)={n_d})" in message
    )
    assert t > k - n_d


# --------------------------------------------------------------------------- #
# ThreatModel
# --------------------------------------------------------------------------- #


def test_threat_model_defaults():
    assert ThreatModel(0.1, 0.1, True, 40, 20) == DEFAULT
    hash(DEFAULT)  # frozen, usable as a cache key


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"corrupt_fraction": -0.1}, "corrupt_fraction"),
        ({"corrupt_fraction": 1.0}, "corrupt_fraction"),
        ({"corrupt_fraction": float("nan")}, "corrupt_fraction"),
        ({"corrupt_fraction": "0.1"}, "corrupt_fraction"),
        ({"corrupt_fraction": True}, "corrupt_fraction"),
        ({"dropout_fraction": -1e-9}, "dropout_fraction"),
        ({"dropout_fraction": 1.5}, "dropout_fraction"),
        ({"corrupt_fraction": 0.5, "dropout_fraction": 0.5}, "corrupt_fraction + dropout_fraction"),
        ({"corrupt_fraction": 0.7, "dropout_fraction": 0.3}, "corrupt_fraction + dropout_fraction"),
        ({"lying_aggregator": 1}, "lying_aggregator"),
        ({"sigma": 0}, "sigma"),
        ({"sigma": 40.0}, "sigma"),
        ({"sigma": True}, "sigma"),
        ({"sigma": 1000}, "sigma"),
        ({"eta": -3}, "eta"),
    ],
)
def test_threat_model_validation(kwargs, field):
    with pytest.raises(ConfigurationError, match=field.replace("+", r"\+")) as info:
        ThreatModel(**kwargs)
    assert isinstance(info.value, ValueError)


def test_threat_counts_use_the_decimal_value():
    # 0.3 * 10 is 2.9999999999999996 in binary; the threat model means 3.
    assert g.threat_counts(10, ThreatModel(0.3, 0.3)) == (3, 3)
    assert g.threat_counts(1000, DEFAULT) == (100, 100)
    assert g.threat_counts(9, DEFAULT) == (1, 1)  # rounded up: never assume nobody
    # the double 0.1 is just above 1/10, so ceil of the binary product would give 2
    assert g.threat_counts(10, DEFAULT) == (1, 1)
    assert g.threat_counts(5, ThreatModel(0.1, 0.3)) == (1, 2)  # 5 - 2 = floor(3.5) survivors


# --------------------------------------------------------------------------- #
# Exact tails and quantiles
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("N", "K", "k"), [(20, 7, 9), (100, 10, 30), (57, 50, 12), (1000, 100, 64)]
)
def test_exact_tails_match_scipy(N, K, k):
    dist = stats.hypergeom(N, K, k)  # scipy: (population, successes, draws)
    for x in range(-1, k + 2):
        upper = g.hypergeom_upper_tail(x, N, K, k)
        lower = g.hypergeom_lower_tail(x, N, K, k)
        assert float(upper) == pytest.approx(dist.sf(x), rel=1e-9, abs=1e-300)
        assert float(lower) == pytest.approx(dist.cdf(x - 1), rel=1e-9, abs=1e-300)


def test_exact_tiny_tail_matches_mpmath():
    """A tail near 2^-60, far below what 1 - cdf could resolve in float64."""
    N, K, k = 1000, 100, 96
    mpmath.mp.dps = 60
    for x in (35, 40, 45):
        exact = g.hypergeom_upper_tail(x, N, K, k)
        ref = mpmath.fsum(
            mpmath.binomial(K, j) * mpmath.binomial(N - K, k - j) for j in range(x + 1, k + 1)
        ) / mpmath.binomial(N, k)
        assert exact > 0
        assert abs(mpmath.mpf(exact.numerator) / exact.denominator - ref) <= ref * mpmath.mpf(
            "1e-50"
        )
    # And the quantile at the default privacy tail for n = 1000.
    tail = Fraction(1, 2**41 * 1000)
    t1 = g.hypergeom_upper_quantile(N, K, k, tail)
    assert g.hypergeom_upper_tail(t1, N, K, k) <= tail < g.hypergeom_upper_tail(t1 - 1, N, K, k)


@settings(max_examples=150, deadline=None)
@given(
    N=st.integers(1, 600),
    kf=st.floats(0, 1),
    Kf=st.floats(0, 1),
    tail_exp=st.integers(1, 70),
)
def test_quantiles_match_their_definitions(N, kf, Kf, tail_exp):
    k, K = round(kf * N), round(Kf * N)
    tail = Fraction(1, 2**tail_exp)
    up = g.hypergeom_upper_quantile(N, K, k, tail)
    lo = g.hypergeom_lower_quantile(N, K, k, tail)
    # smallest x with P[X > x] <= tail
    assert g.hypergeom_upper_tail(up, N, K, k) <= tail
    assert g.hypergeom_upper_tail(up - 1, N, K, k) > tail
    # largest x with P[X < x] <= tail
    assert g.hypergeom_lower_tail(lo, N, K, k) <= tail
    assert g.hypergeom_lower_tail(lo + 1, N, K, k) > tail
    # both internal paths agree with the reference (the float path may abstain)
    assert g._upper_quantile_exact(N, K, k, tail) == up == ref_upper_quantile(N, K, k, tail)
    assert g._lower_quantile_exact(N, K, k, tail) == lo == ref_lower_quantile(N, K, k, tail)
    assert g._upper_quantile_float(N, K, k, tail) in (None, up)
    assert g._lower_quantile_float(N, K, k, tail) in (None, lo)


def test_float_path_abstains_on_exact_ties():
    """A tail equal to P[X > x] exactly must fall back to integers (x is the answer)."""
    N, K, k = 5000, 500, 200
    for x in (40, 45, 50):
        tie = g.hypergeom_upper_tail(x, N, K, k)
        assert g._upper_quantile_float(N, K, k, tie) is None
        g.hypergeom_upper_quantile.cache_clear()
        assert g.hypergeom_upper_quantile(N, K, k, tie) == x
    for x in (150, 160):
        tie = g.hypergeom_lower_tail(x, 5000, 4500, 200)
        assert g._lower_quantile_float(5000, 4500, 200, tie) is None
        g.hypergeom_lower_quantile.cache_clear()
        assert g.hypergeom_lower_quantile(5000, 4500, 200, tie) == x


def test_float_and_exact_paths_agree_at_finder_scale():
    for N, K, k in [(10**5, 10**4, 134), (10**5, 9 * 10**4, 134), (10**4, 1000, 500)]:
        for tail in (Fraction(1, 2**41 * N), Fraction(1, 2**20 * N)):
            up_f = g._upper_quantile_float(N, K, k, tail)
            lo_f = g._lower_quantile_float(N, K, k, tail)
            assert up_f == g._upper_quantile_exact(N, K, k, tail)
            assert lo_f == g._lower_quantile_exact(N, K, k, tail)


@settings(max_examples=150, deadline=None)
@given(
    N=st.integers(1, 3000),
    kf=st.floats(0, 1),
    Kf=st.floats(0, 1),
    tail_exp=st.integers(1, 70),
)
def test_single_term_bounds_bracket_the_quantiles(N, kf, Kf, tail_exp):
    k, K = round(kf * N), round(Kf * N)
    tail = Fraction(1, 2**tail_exp)
    t2_max, t1_min = g._single_term_bounds(N, K, k, tail)
    assert g.hypergeom_lower_quantile(N, K, k, tail) <= t2_max
    assert g.hypergeom_upper_quantile(N, K, k, tail) >= t1_min


def test_mode_formula():
    for N in range(1, 40):
        for K in range(N + 1):
            for k in range(N + 1):
                a = ref_pmf_numerators(N, K, k)
                assert a[g._hg_mode(N, K, k)] == max(a.values())


def test_condition_4_integer_form():
    for t1 in range(0, 200):
        for k in range(max(t1, 2), 220):
            assert (t1 + k) // 2 == math.ceil((t1 + k - 1.25) / 2)


# --------------------------------------------------------------------------- #
# Ring connectivity bound
# --------------------------------------------------------------------------- #


def _good_nodes_connected(n: int, k: int, bad: set[int]) -> bool:
    good = [p for p in range(n) if p not in bad]
    if len(good) <= 1:
        return True
    seen, stack = {good[0]}, [good[0]]
    while stack:
        p = stack.pop()
        for d in range(1, k // 2 + 1):
            for q in ((p + d) % n, (p - d) % n):
                if q not in bad and q not in seen:
                    seen.add(q)
                    stack.append(q)
    return len(seen) == len(good)


@pytest.mark.parametrize(("n", "k"), [(8, 2), (9, 2), (10, 4), (11, 4), (12, 2), (12, 4), (13, 6)])
def test_ring_cut_bound_dominates_brute_force(n, k):
    for bad in range(0, n + 1):
        subsets = list(itertools.combinations(range(n), bad))
        cuts = sum(not _good_nodes_connected(n, k, set(s)) for s in subsets)
        exact = Fraction(cuts, len(subsets))
        bound = g.ring_cut_bound(n, k, bad)
        assert exact <= bound, (n, k, bad)
        if k > bad:
            assert bound == 0 and cuts == 0


def test_ring_connectivity_matches_reference():
    for n in (20, 100, 1000, 10**4):
        for threat in THREATS:
            n_c, n_d, _ = ref_counts(n, threat)
            for k in range(2, min(n - 1, 80), 2):
                assert g.ring_connectivity_holds(n, k, threat) == ref_ring_connected(
                    n, k, n_c + n_d, threat.sigma
                )


# --------------------------------------------------------------------------- #
# The finder
# --------------------------------------------------------------------------- #


# (n, threat) combinations of the parametrised finder test with no live parameters:
# the counts are rounded up, so n = 3 or 4 already has a corrupt participant and a dropout.
NO_LIVE_PARAMETERS = {
    (3, THREATS[0]),
    (3, THREATS[1]),
    (3, THREATS[2]),
    (3, THREATS[3]),
    (3, THREATS[4]),
    (4, THREATS[0]),  # 2t > 3 + 1 needs t = 3; one dropout leaves 2 neighbours
    (4, THREATS[3]),
    (4, THREATS[4]),
}


@pytest.mark.parametrize("threat", THREATS, ids=lambda t: repr(t))
@pytest.mark.parametrize("n", [3, 4, 5, 10, 50, 100, 200, 1000, 10**4, 10**5])
def test_finder_meets_its_defining_conditions(n, threat):
    if (n, threat) in NO_LIVE_PARAMETERS:
        assert_no_live_parameters(n, threat)
        return
    p = find_parameters(n, threat)
    assert p.n == n and 2 <= p.t <= p.k <= n - 1
    check_parameters(p, threat)
    if p.full:
        assert p.k == n - 1
        n_c, n_d, _ = ref_counts(n, threat)
        if threat.lying_aggregator:
            assert 2 * p.t > p.k + n_c and (p.t == 2 or 2 * (p.t - 1) <= p.k + n_c)
        else:
            assert p.t == max(2, n_c + 1)
        assert p.t <= p.k - n_d
        assert (p.t, True) == ref_full(n, threat)
        earlier = range(2, n - 1, 2)  # no sparse candidate passed
    else:
        assert p.k % 2 == 0 and p.k < n - 1
        ok, t = ref_candidate(n, p.k, threat)
        assert ok and p.t == t
        assert p.t == min_threshold(n, p.k, threat)
        # the first: every smaller even k fails (only k - 2 when the reference is slow)
        earlier = range(2, p.k, 2) if n <= 1000 else [p.k - 2] if p.k > 2 else []
    for k in earlier:
        assert not ref_candidate(n, k, threat)[0], k


@pytest.mark.parametrize(
    ("n", "threat", "t"),
    [(5, DEFAULT, 3), (5, ThreatModel(0.0, 0.1), 3)]
    + [(n, ThreatModel(0.2, 0.2), t) for n, t in ((5, 3), (8, 5), (9, 6), (11, 7))]
    + [(n, ThreatModel(0.3, 0.3), t) for n, t in ((20, 13), (23, 15), (29, 19), (33, 22), (57, 38))]
    + [(n, ThreatModel(0.2, 0.3), t) for n, t in ((10, 6), (13, 8), (16, 10), (27, 17))]
    + [(n, ThreatModel(0.0, 0.2), t) for n, t in ((4, 2), (5, 3), (6, 3), (7, 4))]
    + [(n, ThreatModel(0.1, 0.2), t) for n, t in ((5, 3), (7, 4), (11, 7))]
    + [(n, ThreatModel(0.2, 0.3, False), t) for n, t in ((5, 2), (6, 3), (7, 3))],
)
def test_full_graph_fallback_for_small_n(n, threat, t):
    p = find_parameters(n, threat)
    n_c, n_d, _ = ref_counts(n, threat)
    assert p == GraphParams(n, n - 1, t, True)
    assert ref_find(n, threat) == p
    if threat.lying_aggregator:
        assert p.t == max(2, (p.k + n_c) // 2 + 1)
    else:
        assert p.t == max(2, n_c + 1)
    assert p.t <= p.k - n_d
    for k in range(2, n - 1, 2):
        assert not ref_candidate(n, k, threat)[0]


@pytest.mark.parametrize(
    ("n", "threat"),
    [(3, DEFAULT), (4, DEFAULT), (3, ThreatModel(0.0, 0.1)), (3, ThreatModel(0.1, 0.1, False))]
    + [(n, ThreatModel(0.3, 0.3)) for n in (8, 9, 11, 14, 19, 21, 27, 31, 37)]
    + [(n, ThreatModel(0.2, 0.3)) for n in (4, 7, 11, 17)]
    + [(n, ThreatModel(0.2, 0.2)) for n in (3, 4, 6, 7)]
    + [(6, ThreatModel(0.1, 0.2)), (4, ThreatModel(0.2, 0.3, False))],
)
def test_no_live_parameters_for_small_n(n, threat):
    """Rounding up leaves some small federations with no live (k, t) at all."""
    assert_no_live_parameters(n, threat)


@pytest.mark.parametrize(
    ("threat", "no_live"),
    [
        (THREATS[0], {3, 4}),
        (THREATS[1], {3}),
        (THREATS[2], {3}),
        (THREATS[3], {3, 4}),
        (THREATS[4], {3, 4, 6}),
        (THREATS[5], set()),
        (
            ThreatModel(0.3, 0.3),
            {*range(3, 20), 21, 22, 24, 25, 27, 28, 31, 34, 37},
        ),
        (ThreatModel(0.2, 0.3, False), {3, 4}),
        (ThreatModel(0.1, 0.2), {3, 4, 6}),
    ],
    ids=lambda x: repr(x) if isinstance(x, ThreatModel) else "",
)
def test_finder_sweep_small_n(threat, no_live):
    """Every n in 3..80: the answer is the first passing k, or the live full graph, or an error."""
    infeasible = set()
    for n in range(3, 81):
        expected = ref_find(n, threat)
        if expected is None:
            infeasible.add(n)
            assert_no_live_parameters(n, threat)
        else:
            assert find_parameters(n, threat) == expected
    assert infeasible == no_live


def test_full_graph_thresholds():
    assert min_threshold(10, 9, ThreatModel(0.2, 0.1, True)) == (9 + 2) // 2 + 1
    assert min_threshold(10, 9, ThreatModel(0.2, 0.1, False)) == 3
    assert min_threshold(3, 2, ThreatModel(0.0, 0.0, False)) == 2
    assert min_threshold(3, 2, ThreatModel(0.0, 0.0, True)) == 2
    # counts round up: n_C = ceil(2.5) = 3 and ceil(1.5) = 2 (floor would give 6 and 2)
    assert min_threshold(10, 9, ThreatModel(0.25, 0.1, True)) == 7
    assert min_threshold(10, 9, ThreatModel(0.15, 0.1, False)) == 3


@pytest.mark.parametrize("n", [-1, 0, 1, 2, 2.0, True, "10"])
def test_too_few_participants(n):
    with pytest.raises(ConfigurationError, match="n must be"):
        find_parameters(n, DEFAULT)


@pytest.mark.parametrize(
    ("n", "threat"), [(2000, ThreatModel(0.3, 0.3)), (3000, ThreatModel(0.45, 0.5, False))]
)
def test_finder_near_the_feasibility_boundary(n, threat):
    """Large k (most candidates pruned by the single-term bounds): still the first k."""
    p = find_parameters(n, threat)
    assert not p.full and p.k > n // 4
    ok, t = ref_candidate(n, p.k, threat)
    assert ok and p.t == t
    for k in (p.k - 2, p.k - 4):
        assert not ref_candidate(n, k, threat)[0]


def test_infeasible_threat_model_raises_with_advice():
    with pytest.raises(ConfigurationError, match="dropout_fraction"):
        find_parameters(3, ThreatModel(0.0, 0.4))
    with pytest.raises(ConfigurationError, match="liveness"):
        find_parameters(10, ThreatModel(0.3, 0.3))
    # the default threat model at n = 4: one corrupt, one dropout (rounded up)
    with pytest.raises(ConfigurationError, match=r"needs t=3 .* t <= k - n_D = 2 \(n_D=ceil"):
        find_parameters(4, DEFAULT)
    # lying aggregator with an honest-survivor minority: no k at all (exits early)
    start = time.perf_counter()
    with pytest.raises(ConfigurationError, match="no live parameters"):
        find_parameters(10**5, ThreatModel(0.4, 0.35))
    assert time.perf_counter() - start < 5


def test_finder_result_is_cached():
    assert find_parameters(1000, DEFAULT) is find_parameters(1000, DEFAULT)


def test_finder_speed_at_large_n():
    find_parameters.cache_clear()
    g.hypergeom_upper_quantile.cache_clear()
    g.hypergeom_lower_quantile.cache_clear()
    start = time.perf_counter()
    p = find_parameters(10**5, DEFAULT)
    elapsed = time.perf_counter() - start
    print(f"\nfind_parameters(10^5, default) = {p} in {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0
    start = time.perf_counter()
    find_parameters(1000, ThreatModel(0.15, 0.05))
    assert time.perf_counter() - start < 0.1


def test_print_default_table():
    rows = []
    for threat in (DEFAULT, ThreatModel(0.05, 0.1, True), ThreatModel(0.0, 0.1, True)):
        for n in (5, 10, 20, 50, 100, 200, 500, 1000, 10**4, 10**5):
            p = find_parameters(n, threat)
            rows.append(
                f"gamma={threat.corrupt_fraction} delta={threat.dropout_fraction} "
                f"lying={threat.lying_aggregator}: n={n:>6} k={p.k:>4} t={p.t:>4} full={p.full}"
            )
    print("\n" + "\n".join(rows))


# --------------------------------------------------------------------------- #
# check_parameters
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("n", [5, 10, 100, 1000, 10**4])
def test_check_parameters_refuses_weaker(n):
    p = find_parameters(n, DEFAULT)
    check_parameters(p, DEFAULT)
    check_parameters(GraphParams(n, p.k, p.k, p.full), DEFAULT)  # a higher t is fine
    if p.t > 2:
        with pytest.raises(ConfigurationError, match="below the minimum threshold"):
            check_parameters(GraphParams(n, p.k, p.t - 1, p.full), DEFAULT)
    with pytest.raises(ConfigurationError, match="t must be"):
        check_parameters(GraphParams(n, p.k, p.k + 1, p.full), DEFAULT)
    with pytest.raises(ConfigurationError, match="t must be"):
        check_parameters(GraphParams(n, p.k, 1, p.full), DEFAULT)
    with pytest.raises(ConfigurationError, match="full"):
        check_parameters(GraphParams(n, p.k, p.t, not p.full), DEFAULT)


def test_check_parameters_refuses_lowered_k():
    """A smaller k is refused unless it is itself private and connected with that t."""
    n = 1000
    p = find_parameters(n, DEFAULT)
    n_c, n_d, _ = ref_counts(n, DEFAULT)
    refused = 0
    for k in range(2, p.k, 2):
        for t in {2, k // 2 + 1, p.t, k}:
            if t > k:
                continue
            _, ref_t = ref_candidate(n, k, DEFAULT)
            safe = t >= ref_t and ref_ring_connected(n, k, n_c + n_d, DEFAULT.sigma)
            if safe:
                check_parameters(GraphParams(n, k, t, False), DEFAULT)
            else:
                refused += 1
                with pytest.raises(ConfigurationError, match=f"k={k}|t={t}"):
                    check_parameters(GraphParams(n, k, t, False), DEFAULT)
    assert refused > 0
    # a ring that may disconnect is refused even with t = k
    with pytest.raises(ConfigurationError, match="disconnected"):
        check_parameters(GraphParams(n, 4, 4, False), ThreatModel(0.0, 0.1, False))
    with pytest.raises(ConfigurationError, match="disconnected"):
        check_parameters(GraphParams(n, 16, 16, False), DEFAULT)


def test_check_parameters_structure():
    with pytest.raises(ConfigurationError, match="even"):
        check_parameters(GraphParams(1000, 97, 80, False), DEFAULT)
    with pytest.raises(ConfigurationError, match="k must be"):
        check_parameters(GraphParams(100, 100, 80, False), DEFAULT)
    with pytest.raises(ConfigurationError, match="k must be"):
        check_parameters(GraphParams(100, 0, 0, False), DEFAULT)
    with pytest.raises(ConfigurationError, match="n must be"):
        check_parameters(GraphParams(2, 1, 1, True), DEFAULT)
    with pytest.raises(ConfigurationError, match="full"):
        check_parameters(GraphParams(100, 99, 80, False), DEFAULT)
    # odd k is fine for the complete graph
    check_parameters(GraphParams(100, 99, 80, True), DEFAULT)
    # a stronger threat model refuses what a weaker one accepts
    p = find_parameters(1000, ThreatModel(0.05, 0.05))
    with pytest.raises(ConfigurationError):
        check_parameters(p, ThreatModel(0.2, 0.05))


# --------------------------------------------------------------------------- #
# NeighbourGraph
# --------------------------------------------------------------------------- #


def _roster(n: int, start: int = 7, step: int = 3) -> list[int]:
    ids = [start + step * i for i in range(n)]
    ids.reverse()  # build must sort
    return ids


@pytest.mark.parametrize("n", [5, 10, 100, 1000])
def test_graph_symmetry_and_degree(n):
    p = find_parameters(n, DEFAULT)
    graph = NeighbourGraph.build(_roster(n), p, SEED)
    assert graph.ids == tuple(sorted(_roster(n))) and graph.params == p
    for u in graph.ids:
        nb = graph.neighbours(u)
        assert len(nb) == p.k and len(set(nb)) == p.k
        assert u not in nb and list(nb) == sorted(nb)
        for v in nb:
            assert u in graph.neighbours(v)
            assert graph.are_neighbours(u, v) and graph.are_neighbours(v, u)
    sample = graph.ids[: min(n, 40)]
    for u in sample:
        for v in sample:
            assert graph.are_neighbours(u, v) == (v in graph.neighbours(u))


def test_graph_is_a_relabelled_harary_graph():
    n, p = 60, GraphParams(60, 8, 5, False)
    graph = NeighbourGraph.build(range(1, n + 1), p, SEED)
    pos = {graph.ids[i]: int(q) for i, q in enumerate(graph._position)}
    assert sorted(pos.values()) == list(range(n))
    for u in graph.ids:
        ring = {
            v
            for v in graph.ids
            if v != u and min((pos[u] - pos[v]) % n, (pos[v] - pos[u]) % n) <= 4
        }
        assert set(graph.neighbours(u)) == ring


def test_full_graph_is_everyone_else():
    p = find_parameters(5, ThreatModel(0.2, 0.2))
    assert p.full
    graph = NeighbourGraph.build([9, 3, 5, 1, 11], p, SEED)
    assert graph.neighbours(5) == (1, 3, 9, 11)
    assert graph.are_neighbours(1, 11) and not graph.are_neighbours(3, 3)


def test_graph_determinism_and_seed_dependence():
    p = find_parameters(200, DEFAULT)
    ids = _roster(200)
    a = NeighbourGraph.build(ids, p, SEED)
    b = NeighbourGraph.build(list(reversed(ids)), p, bytearray(SEED))
    c = NeighbourGraph.build(ids, p, SEED[:-1] + b"\xff")
    assert all(a.neighbours(u) == b.neighbours(u) for u in a.ids)
    assert any(a.neighbours(u) != c.neighbours(u) for u in a.ids)
    # the permutation is pinned: a change to the derivation must be deliberate
    order = g._permutation_from_seed(b"\x00" * 32, 10).tolist()
    assert sorted(order) == list(range(10))
    assert order == g._permutation_from_seed(b"\x00" * 32, 10).tolist()


def test_permutation_is_uniform():
    """Chi-square over all 24 permutations of 4 positions; fails w.p. about 1e-6."""
    counts: dict[tuple[int, ...], int] = {}
    trials = 4800
    for i in range(trials):
        order = tuple(g._permutation_from_seed(i.to_bytes(16, "little"), 4).tolist())
        counts[order] = counts.get(order, 0) + 1
    assert len(counts) == 24
    expected = trials / 24
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < stats.chi2.isf(1e-6, df=23)


def test_graph_rejects_bad_input():
    p = GraphParams(5, 2, 2, False)
    with pytest.raises(ConfigurationError, match="distinct"):
        NeighbourGraph.build([1, 2, 3, 4, 4, 5], GraphParams(6, 2, 2, False), SEED)
    with pytest.raises(ConfigurationError, match="positive"):
        NeighbourGraph.build([0, 1, 2, 3, 4], p, SEED)
    with pytest.raises(ConfigurationError, match="positive"):
        NeighbourGraph.build([-1, 1, 2, 3, 4], p, SEED)
    with pytest.raises(ConfigurationError, match="positive"):
        NeighbourGraph.build([True, 2, 3, 4, 5], p, SEED)
    with pytest.raises(ConfigurationError, match="positive"):
        NeighbourGraph.build([1.0, 2, 3, 4, 5], p, SEED)
    with pytest.raises(ConfigurationError, match="params.n"):
        NeighbourGraph.build([1, 2, 3, 4], p, SEED)
    with pytest.raises(ConfigurationError, match="seed"):
        NeighbourGraph.build([1, 2, 3, 4, 5], p, b"short")
    with pytest.raises(ConfigurationError, match="seed"):
        NeighbourGraph.build([1, 2, 3, 4, 5], p, "not bytes" * 4)
    with pytest.raises(ConfigurationError, match="even"):
        NeighbourGraph.build(range(1, 11), GraphParams(10, 3, 2, False), SEED)
    graph = NeighbourGraph.build([1, 2, 3, 4, 5], p, SEED)
    with pytest.raises(ConfigurationError, match="unknown participant"):
        graph.neighbours(6)
    with pytest.raises(ConfigurationError, match="unknown participant"):
        graph.are_neighbours(1, 99)
    with pytest.raises(ConfigurationError, match="unknown participant"):
        graph.neighbours([1])


def test_graph_build_speed():
    n = 10**4
    p = find_parameters(n, DEFAULT)
    ids = list(range(1, n + 1))
    start = time.perf_counter()
    graph = NeighbourGraph.build(ids, p, os.urandom(32))
    built = time.perf_counter() - start
    for u in ids:
        graph.neighbours(u)
    total = time.perf_counter() - start
    print(f"\nbuild n=10^4: {built * 1000:.1f} ms; all neighbour lists: {total * 1000:.1f} ms")
    assert built < 0.5 and total < 3.0
    assert np.unique(graph._order).size == n
