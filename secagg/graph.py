"""SecAgg+ neighbour graphs and the (k, t) parameter finder.

Sources: Bell, Bonawitz, Gascon, Lepoint, Raykova, "Secure Single-Server
Aggregation with (Poly)Logarithmic Overhead", CCS 2020; spec/secagg.md, sections
"Thresholds" and "SecAgg+ neighbourhoods and the (k, t) finder".

Conventions (blindsum):

* A participant Shamir-shares its secrets among its k NEIGHBOURS only (never
  itself); the full graph has k = n - 1; the threshold t counts shares among
  those k neighbours, 2 <= t <= k.
* The sparse graph is the Harary graph H(n, k) (k even): n positions on a ring,
  each linked to its k/2 predecessors and k/2 successors. Positions are mapped
  to the sorted participant ids by a permutation derived from a public seed
  (the session id) with SHA-256 in counter mode, so every party computes the
  same graph and nobody can steer it.
* Fractions of the threat model are read as the decimal they print as
  (``Fraction(repr(x))``: 0.3 means 3/10, not the binary double just below it),
  and counts are rounded UP: ``n_C = ceil(gamma n)`` corrupt participants and
  ``n_D = ceil(delta n)`` dropouts, so ``n - n_D = floor((1 - delta) n)``
  survivors, all in exact rational arithmetic. (The spec writes floor; see
  threat_counts. A consequence: for small n some threat models have no live
  parameters at all, and find_parameters raises ConfigurationError.)

Exactness. Every tail probability is decided exactly: a fast log-space pass in
float64 (logs of the pmf ratios, cumulated, normalised, tails summed with
``logaddexp`` so only the small tail terms are ever added, never ``1 - cdf``)
carries a proven absolute error bound on the log-tails; when a decision falls
within that bound of the threshold it is redone with exact integer arithmetic
(``math.comb`` and an exact integer recurrence). The ring-connectivity bound is
always evaluated with exact integers. Results are therefore identical to an
exact rational computation, on every platform.

This module uses only the standard library and numpy; it holds no secrets.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Integral, Real

import numpy as np

from secagg.errors import ConfigurationError

__all__ = [
    "GraphParams",
    "NeighbourGraph",
    "ThreatModel",
    "check_parameters",
    "correctness_tail",
    "find_parameters",
    "hypergeom_lower_quantile",
    "hypergeom_lower_tail",
    "hypergeom_upper_quantile",
    "hypergeom_upper_tail",
    "min_threshold",
    "privacy_tail",
    "ring_cut_bound",
    "ring_connectivity_holds",
    "threat_counts",
]

MIN_PARTICIPANTS = 3
"""A sum of fewer than 3 inputs reveals each input to anyone holding one of them."""

MIN_SEED_BYTES = 16
PERMUTATION_LABEL = b"blindsum/secagg/graph/harary-permutation/v1"


# --------------------------------------------------------------------------- #
# Threat model and parameters
# --------------------------------------------------------------------------- #


def _is_real(x: object) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _is_int(x: object) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


@dataclass(frozen=True)
class ThreatModel:
    """What the parameters must withstand.

    corrupt_fraction: gamma, the fraction of participants colluding with the
        aggregator, in [0, 1).
    dropout_fraction: delta, the fraction that may drop out, in [0, 1).
    lying_aggregator: True for an actively malicious aggregator that may lie
        about who dropped (needs 2t > k + corrupt neighbours); False for an
        honest-but-curious one (needs t > corrupt neighbours).
    sigma: statistical security parameter (privacy failure <= 2^-sigma overall).
    eta: correctness parameter (failure of a round <= 2^-eta overall).
    """

    corrupt_fraction: float = 0.1
    dropout_fraction: float = 0.1
    lying_aggregator: bool = True
    sigma: int = 40
    eta: int = 20

    def __post_init__(self) -> None:
        for name in ("corrupt_fraction", "dropout_fraction"):
            value = getattr(self, name)
            if not _is_real(value) or not (0 <= value < 1):
                raise ConfigurationError(f"{name} must be a number in [0, 1), got {value!r}")
        if not isinstance(self.lying_aggregator, bool):
            raise ConfigurationError(
                f"lying_aggregator must be a bool, got {type(self.lying_aggregator).__name__}"
            )
        for name, lo, hi in (("sigma", 1, 256), ("eta", 1, 256)):
            value = getattr(self, name)
            if not _is_int(value) or not (lo <= value <= hi):
                raise ConfigurationError(
                    f"{name} must be an integer in [{lo}, {hi}], got {value!r}"
                )
        if _exact_fraction(self.corrupt_fraction) + _exact_fraction(self.dropout_fraction) >= 1:
            raise ConfigurationError(
                "corrupt_fraction + dropout_fraction must be < 1, got "
                f"{self.corrupt_fraction!r} + {self.dropout_fraction!r}"
            )


@dataclass(frozen=True)
class GraphParams:
    """A neighbour graph's size n, degree k, Shamir threshold t, and whether it is complete."""

    n: int
    k: int
    t: int
    full: bool


def _exact_fraction(x: float) -> Fraction:
    """The decimal a float prints as, exactly (0.3 -> 3/10)."""
    if isinstance(x, Integral):
        return Fraction(int(x))
    return Fraction(repr(float(x)))


def threat_counts(n: int, threat: ThreatModel) -> tuple[int, int]:
    """(n_C, n_D) = (ceil(gamma n), ceil(delta n)), exactly.

    The spec writes floor(gamma n); rounding down assumes *no* corrupt participant
    and no dropout for every n < 1/gamma (n <= 9 at 10%), which is neither private
    nor live for small federations. Rounding up is the conservative reading. The
    number of survivors is n - n_D = floor((1 - delta) n).
    """
    return (
        math.ceil(_exact_fraction(threat.corrupt_fraction) * n),
        math.ceil(_exact_fraction(threat.dropout_fraction) * n),
    )


def privacy_tail(n: int, threat: ThreatModel) -> Fraction:
    """Per-node privacy failure budget 2^-(sigma+1) / n (union bound over n nodes)."""
    return Fraction(1, (1 << (threat.sigma + 1)) * n)


def correctness_tail(n: int, threat: ThreatModel) -> Fraction:
    """Per-node correctness failure budget 2^-eta / n."""
    return Fraction(1, (1 << threat.eta) * n)


def _check_n(n: object) -> None:
    if not _is_int(n):
        raise ConfigurationError(f"n must be an integer, got {n!r}")
    if n < MIN_PARTICIPANTS:
        raise ConfigurationError(
            f"n must be >= {MIN_PARTICIPANTS} participants (a sum of fewer inputs hides "
            f"nobody from the other contributor), got n={n}"
        )


# --------------------------------------------------------------------------- #
# Hypergeometric tails, exact
# --------------------------------------------------------------------------- #
# X ~ HG(population N, successes K, draws k): P[X = j] = C(K, j) C(N-K, k-j) / C(N, k),
# supported on lo = max(0, k - (N - K)) .. hi = min(k, K).
# a(j) = C(K, j) C(N-K, k-j) satisfies the exact integer recurrence
#   a(j+1) (j+1) (N-K-k+j+1) = a(j) (K-j) (k-j).


def _check_hg(population: int, successes: int, draws: int) -> None:
    if not (_is_int(population) and _is_int(successes) and _is_int(draws)):
        raise ConfigurationError("hypergeometric population, successes, draws must be integers")
    if population < 1 or not (0 <= successes <= population) or not (0 <= draws <= population):
        raise ConfigurationError(
            "hypergeometric needs population >= 1, 0 <= successes <= population and "
            f"0 <= draws <= population, got ({population}, {successes}, {draws})"
        )


def _check_tail(tail: Fraction) -> Fraction:
    tail = Fraction(tail)
    if not (0 < tail < 1):
        raise ConfigurationError(f"tail must be in (0, 1), got {tail}")
    return tail


def _support(N: int, K: int, k: int) -> tuple[int, int]:
    return max(0, k - (N - K)), min(k, K)


def hypergeom_upper_tail(x: int, population: int, successes: int, draws: int) -> Fraction:
    """P[X > x] exactly, X ~ HG(population, successes, draws)."""
    _check_hg(population, successes, draws)
    lo, hi = _support(population, successes, draws)
    total = sum(
        math.comb(successes, j) * math.comb(population - successes, draws - j)
        for j in range(max(x + 1, lo), hi + 1)
    )
    return Fraction(total, math.comb(population, draws))


def hypergeom_lower_tail(x: int, population: int, successes: int, draws: int) -> Fraction:
    """P[X < x] exactly, X ~ HG(population, successes, draws)."""
    _check_hg(population, successes, draws)
    lo, hi = _support(population, successes, draws)
    total = sum(
        math.comb(successes, j) * math.comb(population - successes, draws - j)
        for j in range(lo, min(x - 1, hi) + 1)
    )
    return Fraction(total, math.comb(population, draws))


def _upper_quantile_exact(N: int, K: int, k: int, tail: Fraction) -> int:
    lo, hi = _support(N, K, k)
    bound = tail.numerator * math.comb(N, k)
    den = tail.denominator
    j = hi
    a = math.comb(K, hi) * math.comb(N - K, k - hi)  # a(j)
    s = 0  # P[X > j] * C(N, k)
    while j > lo and (s + a) * den <= bound:  # P[X > j-1] <= tail: move down
        s += a
        j -= 1
        a = a * (j + 1) * (N - K - k + j + 1) // ((K - j) * (k - j))
    return j


def _lower_quantile_exact(N: int, K: int, k: int, tail: Fraction) -> int:
    lo, hi = _support(N, K, k)
    bound = tail.numerator * math.comb(N, k)
    den = tail.denominator
    j = lo
    a = math.comb(K, lo) * math.comb(N - K, k - lo)  # a(j)
    s = 0  # P[X < j] * C(N, k)
    while j < hi and (s + a) * den <= bound:  # P[X < j+1] <= tail: move up
        s += a
        j += 1
        a = a * (K - j + 1) * (k - j + 1) // (j * (N - K - k + j))
    return j


def _log_pmf(N: int, K: int, k: int) -> tuple[int, np.ndarray, float]:
    """(lo, natural-log pmf on lo..hi, a bound on the absolute error of any log-tail).

    Error bound: every log is within a few ulps; with L = log(N + 1) each ratio
    term has error < 20 L 2^-53, its partial sums are bounded by log C(N, k) <= k L,
    so cumulating k terms, normalising and accumulating tails with logaddexp add
    at most about 4 k^2 L 2^-53 + 40 k L 2^-53. The bound used below is more than
    five times that, plus 1e-9.
    """
    lo, hi = _support(N, K, k)
    if hi == lo:
        return lo, np.zeros(1), 0.0
    j = np.arange(lo, hi, dtype=np.float64)
    ratio = np.log(K - j) + np.log(k - j) - np.log(j + 1.0) - np.log(N - K - k + j + 1.0)
    logp = np.empty(hi - lo + 1, dtype=np.float64)
    logp[0] = 0.0
    np.cumsum(ratio, out=logp[1:])
    peak = float(logp.max())
    logp -= peak + math.log(float(np.exp(logp - peak).sum()))
    size = float(hi - lo + 1)
    err = 1e-9 + (size * size + 10.0 * size) * math.log(N + 1.0) * 1e-14
    return lo, logp, err


def _upper_quantile_float(N: int, K: int, k: int, tail: Fraction) -> int | None:
    lo, logp, err = _log_pmf(N, K, k)
    lt = math.log(tail.numerator) - math.log(tail.denominator)
    ge = np.logaddexp.accumulate(logp[::-1])[::-1]  # ge[i] = log P[X >= lo + i]
    gt = np.empty_like(ge)  # gt[i] = log P[X > lo + i]
    gt[:-1] = ge[1:]
    gt[-1] = -np.inf
    c = int(np.count_nonzero(gt > lt))  # gt is non-increasing: the first c fail
    if not gt[c] <= lt - err:
        return None
    if c > 0 and not gt[c - 1] > lt + err:
        return None
    return lo + c


def _lower_quantile_float(N: int, K: int, k: int, tail: Fraction) -> int | None:
    lo, logp, err = _log_pmf(N, K, k)
    lt = math.log(tail.numerator) - math.log(tail.denominator)
    le = np.logaddexp.accumulate(logp)  # le[i] = log P[X <= lo + i]
    lt_arr = np.empty_like(le)  # lt_arr[i] = log P[X < lo + i]
    lt_arr[0] = -np.inf
    lt_arr[1:] = le[:-1]
    c = int(np.count_nonzero(lt_arr <= lt))  # non-decreasing: the first c pass (c >= 1)
    if not lt_arr[c - 1] <= lt - err:
        return None
    if c < lt_arr.size and not lt_arr[c] > lt + err:
        return None
    return lo + c - 1


@functools.lru_cache(maxsize=4096)
def hypergeom_upper_quantile(population: int, successes: int, draws: int, tail: Fraction) -> int:
    """The smallest x with P[X > x] <= tail, X ~ HG(population, successes, draws).

    So P[X >= x + 1] <= tail: a threshold of x + 1 is reached with probability at
    most ``tail``. Exact (float fast path with a proven error bound, exact
    integer arithmetic whenever the float pass cannot decide).
    """
    _check_hg(population, successes, draws)
    tail = _check_tail(tail)
    x = _upper_quantile_float(population, successes, draws, tail)
    return _upper_quantile_exact(population, successes, draws, tail) if x is None else x


@functools.lru_cache(maxsize=4096)
def hypergeom_lower_quantile(population: int, successes: int, draws: int, tail: Fraction) -> int:
    """The largest x with P[X < x] <= tail, X ~ HG(population, successes, draws).

    So X >= x except with probability at most ``tail``. Exact, as above.
    """
    _check_hg(population, successes, draws)
    tail = _check_tail(tail)
    x = _lower_quantile_float(population, successes, draws, tail)
    return _lower_quantile_exact(population, successes, draws, tail) if x is None else x


def _hg_mode(N: int, K: int, k: int) -> int:
    """A mode of HG(N, K, k): floor((k+1)(K+1)/(N+2))."""
    return (k + 1) * (K + 1) // (N + 2)


def _log_pmf_at(N: int, K: int, k: int, y: int) -> tuple[float, float]:
    """(log P[X = y], a bound on its absolute error) from math.lgamma.

    Nine lgamma values are combined; each is within a few ulps, so 64 ulps of
    the sum of their magnitudes, plus 1e-9, bounds the error.
    """
    terms = (
        math.lgamma(K + 1),
        -math.lgamma(y + 1),
        -math.lgamma(K - y + 1),
        math.lgamma(N - K + 1),
        -math.lgamma(k - y + 1),
        -math.lgamma(N - K - k + y + 1),
        -math.lgamma(N + 1),
        math.lgamma(k + 1),
        math.lgamma(N - k + 1),
    )
    return math.fsum(terms), 1e-9 + 64 * 2.0**-52 * sum(abs(x) for x in terms)


def _single_term_bounds(N: int, K: int, k: int, tail: Fraction) -> tuple[int, int]:
    """(ylo, yhi) with hypergeom_lower_quantile <= ylo and hypergeom_upper_quantile >= yhi.

    Any y with P[X = y] > tail gives P[X > y - 1] > tail and P[X < y + 1] > tail,
    so the upper quantile is >= y and the lower quantile is <= y. A mode always
    qualifies when tail < 1/(k+1) (the largest of at most k+1 probabilities);
    otherwise only the trivial bounds are returned. Binary searches on either
    side of the mode find far-out y whose probability is certified (with the
    error bound of _log_pmf_at) to exceed the tail.
    """
    lo, hi = _support(N, K, k)
    if tail * (k + 1) >= 1:
        return hi, lo
    lt = math.log(tail.numerator) - math.log(tail.denominator)

    def certified(y: int) -> bool:
        value, err = _log_pmf_at(N, K, k, y)
        return value - err > lt

    mode = _hg_mode(N, K, k)
    a, b = mode, hi  # largest certified y in [mode, hi]: certified(a) holds
    while a < b:
        mid = (a + b + 1) // 2
        if certified(mid):
            a = mid
        else:
            b = mid - 1
    upper = a
    a, b = lo, mode  # smallest certified y in [lo, mode]: certified(b) holds
    while a < b:
        mid = (a + b) // 2
        if certified(mid):
            b = mid
        else:
            a = mid + 1
    return b, upper


# --------------------------------------------------------------------------- #
# Ring connectivity (condition 1)
# --------------------------------------------------------------------------- #


def ring_cut_bound(n: int, k: int, bad: int) -> Fraction:
    """Union bound on P[the good nodes of H(n, k) are disconnected], exactly.

    The bad positions are a uniformly random ``bad``-subset of the n ring
    positions. Removing nodes disconnects H(n, k) only if two disjoint runs of
    k/2 consecutive bad positions are separated by at least one good position
    on each side. There are n (n - k - 1) / 2 such pairs of runs, and a given
    set of k positions is all bad with probability
    bad (bad-1) ... (bad-k+1) / (n (n-1) ... (n-k+1)) (zero when k > bad).
    """
    if not (_is_int(n) and _is_int(k) and _is_int(bad)) or not (0 <= bad <= n):
        raise ConfigurationError(f"ring_cut_bound needs integers 0 <= bad <= n, got {bad}, {n}")
    if k < 2 or k % 2 or k >= n - 1:
        raise ConfigurationError(f"ring_cut_bound needs an even k in [2, n - 2], got k={k}")
    if k > bad:
        return Fraction(0)
    return Fraction(n * (n - k - 1) * math.perm(bad, k), 2 * math.perm(n, k))


@functools.lru_cache(maxsize=4096)
def _ring_connected(n: int, k: int, bad: int, sigma: int) -> bool:
    if k > bad:
        return True
    # ring_cut_bound < 2^-(sigma+1), cross-multiplied.
    return (n * (n - k - 1) * math.perm(bad, k)) << (sigma + 1) < 2 * math.perm(n, k)


def ring_connectivity_holds(n: int, k: int, threat: ThreatModel) -> bool:
    """Condition 1: ring_cut_bound(n, k, ceil(gamma n) + ceil(delta n)) < 2^-(sigma+1)."""
    _check_n(n)
    if not _is_int(k) or k < 2 or k % 2 or k >= n - 1:
        raise ConfigurationError(f"k must be an even integer in [2, n - 2] for a ring, got {k}")
    n_c, n_d = threat_counts(n, threat)
    return _ring_connected(n, k, n_c + n_d, threat.sigma)


# --------------------------------------------------------------------------- #
# Thresholds and the finder
# --------------------------------------------------------------------------- #


def _full_min_threshold(n: int, threat: ThreatModel) -> int:
    k = n - 1
    n_c, _ = threat_counts(n, threat)
    if threat.lying_aggregator:
        return max(2, (k + n_c) // 2 + 1)  # 2t > k + n_C
    return max(2, n_c + 1)  # t > n_C


def _threshold_from_t1(t1: int, k: int, threat: ThreatModel) -> int:
    if threat.lying_aggregator:
        # Condition 4: ceil((t1 + k - 1.25) / 2) == (t1 + k) // 2 for integers, i.e.
        # t = (t1 + k) // 2 + 1 is the least t with 2t > k + t1.
        t1 = (t1 + k) // 2
    return max(t1 + 1, 2)  # condition 5


def _sparse_min_threshold(n: int, k: int, threat: ThreatModel) -> int:
    n_c, _ = threat_counts(n, threat)
    t1 = hypergeom_upper_quantile(n, n_c, k, privacy_tail(n, threat))  # condition 2
    return _threshold_from_t1(t1, k, threat)


@functools.lru_cache(maxsize=1024)
def min_threshold(n: int, k: int, threat: ThreatModel) -> int:
    """The smallest t meeting the privacy conditions for this (n, k).

    Sparse (k < n - 1): t1 = hypergeom_upper_quantile(n, ceil(gamma n), k,
    2^-(sigma+1)/n); against a lying aggregator t1 <- ceil((t1 + k - 1.25)/2);
    t = max(t1 + 1, 2). Full graph (k = n - 1): with n_C = ceil(gamma n),
    t = max(2, floor((k + n_C)/2) + 1) (lying) or max(2, n_C + 1). The result may
    exceed k, meaning no threshold is private for this k.
    """
    _check_n(n)
    if not _is_int(k) or not (2 <= k <= n - 1):
        raise ConfigurationError(f"k must be an integer in [2, n - 1] = [2, {n - 1}], got {k!r}")
    if k == n - 1:
        return _full_min_threshold(n, threat)
    return _sparse_min_threshold(n, k, threat)


def full_graph_parameters(n: int, threat: ThreatModel) -> GraphParams:
    """The full graph (k = n - 1) with its least private threshold; ConfigurationError if not live."""
    k = n - 1
    t = _full_min_threshold(n, threat)
    n_c, n_d = threat_counts(n, threat)
    if t > k - n_d:
        rule = "2t > k + n_C" if threat.lying_aggregator else "t > n_C"
        raise ConfigurationError(
            f"no live parameters for n={n}: the full graph (k={k}) needs t={t} for privacy "
            f"({rule}, n_C=ceil(corrupt_fraction*n)={n_c}), but liveness needs "
            f"t <= k - n_D = {k - n_d} (n_D=ceil(dropout_fraction*n)={n_d}); "
            f"lower dropout_fraction "
            f"({threat.dropout_fraction}) or corrupt_fraction ({threat.corrupt_fraction}), "
            "or use more participants"
        )
    return GraphParams(n=n, k=k, t=t, full=True)


@functools.lru_cache(maxsize=256)
def find_parameters(n: int, threat: ThreatModel) -> GraphParams:
    """The spec's (k, t) finder (Bell et al. 2020), as run by both sides.

    For even k = 2, 4, ... with k < n - 1, accept the first k such that
      1. ring_connectivity_holds(n, k, threat) (the union bound on a cut of the
         honest survivors is < 2^-(sigma+1));
      2. t1 = hypergeom_upper_quantile(n, ceil(gamma n), k, 2^-(sigma+1)/n)
         (smallest x with P[corrupt neighbours > x] <= tail);
      3. t2 = hypergeom_lower_quantile(n, n - ceil(delta n), k, 2^-eta/n), i.e.
         floor((1-delta) n) survivors (largest x with P[surviving neighbours < x]
         <= tail);
      4. if lying_aggregator: t1 <- ceil((t1 + k - 1.25)/2);
      5. t = max(t1 + 1, 2) and t <= t2 (this is the spec's "t2 > t1" except when
         t1 = 0, where t = 2 must still be reachable: we require t2 >= t).
    Otherwise fall back to the full graph (k = n - 1) with the threshold of
    min_threshold, raising ConfigurationError when it is not live. Because the
    counts are rounded up (threat_counts), this happens for small n: e.g. n = 3
    or 4 with gamma = delta = 0.1 against a lying aggregator (n = 4: n_C = n_D = 1,
    2t > 3 + 1 needs t = 3, but one dropout leaves k - n_D = 2 neighbours).

    Exact shortcuts skip candidates without changing the answer: condition 1 is
    monotone in k; t1 >= y and t2 <= y' for any y, y' whose single probability
    exceeds the tail (a mode always does, as both tails are < 1/(k+1)), see
    _single_term_bounds; and a lying aggregator with too few honest survivors
    ends the search early (no larger k can pass).
    """
    _check_n(n)
    if not isinstance(threat, ThreatModel):
        raise ConfigurationError("threat must be a ThreatModel")
    n_c, n_d = threat_counts(n, threat)
    survivors = n - n_d
    bad = n_c + n_d
    corr_tail = correctness_tail(n, threat)
    priv_tail = privacy_tail(n, threat)
    # Necessary condition mode(survivors) >= t >= floor((mode(corrupt) + k)/2) + 1
    # implies k (n + 1 + n_C - 2S) <= 2S + 1 - n_C (lying aggregator only).
    slope = n + 1 + n_c - 2 * survivors
    intercept = 2 * survivors + 1 - n_c
    connected = False
    for k in range(2, n - 1, 2):
        if threat.lying_aggregator and slope > 0 and k * slope > intercept:
            break
        if not connected:
            connected = _ring_connected(n, k, bad, threat.sigma)
            if not connected:
                continue
        # Cheap exact necessary condition first (t1 >= mode, t2 <= mode), then
        # single-term bounds, before the full tail computation.
        mode_s = _hg_mode(n, survivors, k)
        mode_c = _hg_mode(n, n_c, k)
        if _threshold_from_t1(mode_c, k, threat) > mode_s:
            continue
        t2_max, _ = _single_term_bounds(n, survivors, k, corr_tail)
        _, t1_min = _single_term_bounds(n, n_c, k, priv_tail)
        if _threshold_from_t1(t1_min, k, threat) > t2_max:
            continue
        t = _sparse_min_threshold(n, k, threat)
        if t > t2_max:
            continue
        t2 = hypergeom_lower_quantile(n, survivors, k, corr_tail)
        if t <= t2:
            return GraphParams(n=n, k=k, t=t, full=False)
    return full_graph_parameters(n, threat)


def check_parameters(params: GraphParams, threat: ThreatModel) -> None:
    """Refuse (ConfigurationError) graph parameters weaker than ``threat`` requires.

    A participant runs this on the (n, k, t) the aggregator offers; n must be the
    size of the participant's own U1 (checked by the caller). Checks: structure
    (n >= 3, 2 <= k <= n - 1, k even unless k = n - 1, full iff k = n - 1,
    2 <= t <= k), privacy (t >= min_threshold(n, k, threat)) and, for a sparse
    graph, ring connectivity (condition 1). Liveness (t <= t2) is not checked:
    it does not weaken privacy.
    """
    if not isinstance(params, GraphParams):
        raise ConfigurationError("params must be a GraphParams")
    _check_structure(params)
    n, k, t = params.n, params.k, params.t
    need = min_threshold(n, k, threat)
    if need > k:
        raise ConfigurationError(
            f"k={k} is too small for n={n} under this threat model: privacy needs t >= {need} > k"
        )
    if t < need:
        raise ConfigurationError(
            f"t={t} is below the minimum threshold {need} for n={n}, k={k} under this threat model"
        )
    if not params.full and not ring_connectivity_holds(n, k, threat):
        raise ConfigurationError(
            f"k={k} is too small for n={n}: the honest survivors may be disconnected "
            f"(ring cut bound >= 2^-{threat.sigma + 1})"
        )


def _check_structure(params: GraphParams) -> None:
    n, k, t, full = params.n, params.k, params.t, params.full
    _check_n(n)
    if not _is_int(k) or not (2 <= k <= n - 1):
        raise ConfigurationError(f"k must be an integer in [2, n - 1] = [2, {n - 1}], got {k!r}")
    if not isinstance(full, bool) or full != (k == n - 1):
        raise ConfigurationError(
            f"full={full!r} is inconsistent with k={k}, n={n} (full iff k = n - 1)"
        )
    if not full and k % 2:
        raise ConfigurationError(f"k must be even for a Harary graph (k < n - 1), got k={k}")
    if not _is_int(t) or not (2 <= t <= k):
        raise ConfigurationError(f"t must be an integer in [2, k] = [2, {k}], got {t!r}")


# --------------------------------------------------------------------------- #
# The graph
# --------------------------------------------------------------------------- #


def _permutation_from_seed(seed: bytes, n: int) -> np.ndarray:
    """Fisher-Yates driven by SHA-256 in counter mode; order[position] = index of id.

    Block c = SHA-256(label || len(seed) (4 bytes LE) || seed || n (8 bytes LE) ||
    c (8 bytes LE)); the stream is read as 64-bit little-endian words. For
    i = n-1 .. 1, j is uniform in [0, i] by rejection: a word w is used only if
    w < 2^64 - (2^64 mod (i+1)), then j = w mod (i+1).
    """
    prefix = PERMUTATION_LABEL + len(seed).to_bytes(4, "little") + seed + n.to_bytes(8, "little")
    counter = 0

    def words(count: int) -> list[int]:
        nonlocal counter
        blocks = (count + 3) // 4
        data = b"".join(
            hashlib.sha256(prefix + (counter + c).to_bytes(8, "little")).digest()
            for c in range(blocks)
        )
        counter += blocks
        return np.frombuffer(data, dtype="<u8").tolist()

    order = list(range(n))
    pool = words(n + 16)
    p = 0
    two64 = 1 << 64
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = two64 - two64 % bound
        while True:
            if p == len(pool):
                pool, p = words(64), 0
            w = pool[p]
            p += 1
            if w < limit:
                break
        j = w % bound
        order[i], order[j] = order[j], order[i]
    return np.asarray(order, dtype=np.int64)


class NeighbourGraph:
    """Who shares with whom: the complete graph, or H(n, k) relabelled from a seed.

    Build with ``NeighbourGraph.build(ids, params, seed)``. Neighbour lists are
    computed on demand (O(k) each, cached), adjacency tests are O(1).
    """

    __slots__ = ("_params", "_ids", "_index", "_order", "_position", "_cache")

    def __init__(
        self,
        params: GraphParams,
        ids: tuple[int, ...],
        order: np.ndarray | None,
    ) -> None:
        self._params = params
        self._ids = ids
        self._index = {u: i for i, u in enumerate(ids)}
        self._order = order
        if order is None:
            self._position = None
        else:
            position = np.empty_like(order)
            position[order] = np.arange(order.size, dtype=order.dtype)
            self._position = position
        self._cache: dict[int, tuple[int, ...]] = {}

    @classmethod
    def build(cls, ids: Sequence[int], params: GraphParams, seed: bytes) -> NeighbourGraph:
        """The graph over the sorted ``ids`` with degree params.k, permuted by ``seed``.

        ``seed`` is the session id (>= 16 bytes, normally 32) that every party
        recomputes. Raises ConfigurationError for ids that are not params.n
        distinct positive integers, inconsistent params or a short seed.
        """
        if not isinstance(params, GraphParams):
            raise ConfigurationError("params must be a GraphParams")
        _check_structure(params)
        ids = list(ids)
        if not all(_is_int(u) and u > 0 for u in ids):
            raise ConfigurationError("ids must be positive integers")
        unique = sorted({int(u) for u in ids})
        if len(unique) != len(ids):
            raise ConfigurationError(f"ids must be distinct, got {len(ids) - len(unique)} repeats")
        if len(unique) != params.n:
            raise ConfigurationError(f"got {len(unique)} ids but params.n={params.n}")
        if not isinstance(seed, bytes | bytearray | memoryview):
            raise ConfigurationError("seed must be bytes")
        seed = bytes(seed)
        if len(seed) < MIN_SEED_BYTES:
            raise ConfigurationError(
                f"seed must be at least {MIN_SEED_BYTES} bytes (the session id), got {len(seed)}"
            )
        order = None if params.full else _permutation_from_seed(seed, params.n)
        return cls(params, tuple(unique), order)

    @property
    def params(self) -> GraphParams:
        return self._params

    @property
    def ids(self) -> tuple[int, ...]:
        """All participant ids, sorted."""
        return self._ids

    def _idx(self, u: int) -> int:
        try:
            return self._index[u]
        except (KeyError, TypeError):
            raise ConfigurationError(f"unknown participant id {u!r}") from None

    def neighbours(self, u: int) -> tuple[int, ...]:
        """u's neighbours, sorted, excluding u."""
        i = self._idx(u)
        cached = self._cache.get(i)
        if cached is not None:
            return cached
        if self._order is None:
            result = self._ids[:i] + self._ids[i + 1 :]
        else:
            n, half = self._params.n, self._params.k // 2
            offsets = np.concatenate(
                (np.arange(-half, 0, dtype=np.int64), np.arange(1, half + 1, dtype=np.int64))
            )
            positions = (self._position[i] + offsets) % n
            idx = np.sort(self._order[positions])
            ids = self._ids
            result = tuple(ids[j] for j in idx.tolist())
        self._cache[i] = result
        return result

    def are_neighbours(self, u: int, v: int) -> bool:
        """True iff u and v (both known ids) are distinct and linked."""
        i, j = self._idx(u), self._idx(v)
        if i == j:
            return False
        if self._position is None:
            return True
        n = self._params.n
        d = int(self._position[i] - self._position[j]) % n
        return min(d, n - d) <= self._params.k // 2

    def __len__(self) -> int:
        return self._params.n

    def __repr__(self) -> str:
        p = self._params
        return f"NeighbourGraph(n={p.n}, k={p.k}, t={p.t}, full={p.full})"
