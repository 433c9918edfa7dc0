"""Exact discrete Gaussian sampler (Canonne, Kamath, Steinke 2020), vectorised in numpy.

Every accept/reject decision is an integer comparison `U < a` with U uniform from the
CSPRNG; no floating point is involved in any decision. The algorithm runs on batches:
draw Laplace candidates, accept each with probability exp(-(|Y| - s2/t)^2 / (2 s2)),
keep the accepted ones, top up. Loops run over *iterations of the series*, never over
samples; the set of active lanes shrinks geometrically in every loop.

Exactness of the int64 lanes ("fast path"). With s2 = N/D in lowest terms and
t = floor(sigma) + 1, the Gaussian acceptance exponent is a^2 / Q with
a = |Y| t D - N and Q = 2 N D t^2. The fast path is used iff

    Q < 2^62,  N < 2^31,  t < 2^31,

which keeps every uniform bound (Q*K or Q, t*K or t) below 2^62 and every a^2 below
2^62 for |a| < 2^31. For an integer sigma this holds up to sigma = 38_967; for a dyadic
sigma = p / 2^j the range shrinks by roughly 2^j. Candidates with |a| >= 2^31 (deep
Laplace tail) are evaluated with Python integers on just those lanes. Any other sigma
(e.g. a float such as 3.7, whose exact value has a 2^51 denominator) runs the *same*
algorithm on object arrays of Python integers: exact, ~10-30x slower. Nothing is ever
approximated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dp.csprng import MAX_LANE_BOUND, CsprngSource
from dp.errors import DpParameterError

_LIM31 = 1 << 31
# Needs for e^-1 successes beyond this are unreachable in any real run (each step
# survives with probability e^-1), so clipping a larger integer part here is exact.
_K_CAP = 1 << 62


@dataclass(frozen=True)
class _Plan:
    n: int  # s2 = n / d, lowest terms
    d: int
    t: int  # Laplace scale floor(sigma) + 1
    q: int  # 2 n d t^2, denominator of the acceptance exponent
    fast: bool
    y_small: int  # |Y| <= y_small  =>  |a| < 2^31 (a^2 fits int64)


def _plan(sigma_sq: Fraction) -> _Plan:
    n, d = sigma_sq.numerator, sigma_sq.denominator
    t = math.isqrt(n // d) + 1  # floor(sqrt(n/d)) == isqrt(floor(n/d)), exactly
    q = 2 * n * d * t * t
    fast = q < MAX_LANE_BOUND and n < _LIM31 and t < _LIM31
    y_small = (_LIM31 - 1 + n) // (t * d) if fast else 0
    return _Plan(n=n, d=d, t=t, q=q, fast=fast, y_small=y_small)


def is_fast_sigma_sq(sigma_sq: Fraction) -> bool:
    """True iff sampling N_Z(0, sigma_sq) runs entirely in int64 lanes."""
    return sigma_sq > 0 and _plan(Fraction(sigma_sq)).fast


def fast_sigma_sq_at_least(sigma_sq: float | Fraction) -> Fraction:
    """The smallest s2 >= sigma_sq on the finest dyadic grid 2^-j (j <= 40) that keeps
    the fast path; relative increase < 2^-j / sigma_sq. Used by the codec so that a
    float sigma/gamma never drops to the slow path. Rounding *up* only adds noise, so
    accounting with the nominal value remains an upper bound on epsilon."""
    target = Fraction(sigma_sq)
    if target <= 0:
        raise DpParameterError("sigma^2 must be > 0")
    for j in range(40, -1, -1):
        cand = Fraction(math.ceil(target * (1 << j)), 1 << j)
        if _plan(cand).fast:
            return cand
    return Fraction(math.ceil(target))  # beyond the fast range: exact object-lane path


# -- Bernoulli primitives (all exact) -----------------------------------------------------
def _bern_exp_frac(r: np.ndarray, q: int, rng: CsprngSource) -> np.ndarray:
    """Bernoulli(exp(-r/q)) per lane, 0 <= r <= q, q a Python int (CKS series).

    For K = 1, 2, ...: A_K ~ Bernoulli(r/(qK)) as U < r with U uniform in [0, qK); stop
    at the first A_K = 0 and return [K odd]. All active lanes share K, so the uniform
    bound is a scalar. If qK would leave the int64 lanes we use the identity
    Bernoulli(r/(qK)) = Bernoulli(r/q) AND Bernoulli(1/K) (independent draws).
    """
    out = np.empty(r.size, dtype=bool)
    idx = np.arange(r.size)
    rr = r
    k = 1
    while idx.size:
        bound = q * k
        if bound <= MAX_LANE_BOUND or q > MAX_LANE_BOUND:
            a = rng.uniform_below(bound, idx.size) < rr
        else:
            a = (rng.uniform_below(q, idx.size) < rr) & (rng.uniform_below(k, idx.size) == 0)
        a = np.asarray(a, dtype=bool)
        out[idx[~a]] = bool(k & 1)
        idx = idx[a]
        rr = rr[a]
        k += 1
    return out


def _bern_exp_one(size: int, rng: CsprngSource) -> np.ndarray:
    """Bernoulli(e^-1): the series with r = q = 1 (A_1 = 1 always, so start at K = 2)."""
    out = np.empty(size, dtype=bool)
    idx = np.arange(size)
    k = 2
    while idx.size:
        a = rng.uniform_below(k, idx.size) == 0
        out[idx[~a]] = bool(k & 1)
        idx = idx[a]
        k += 1
    return out


def _bern_exp(k: np.ndarray, r: np.ndarray, q: int, rng: CsprngSource) -> np.ndarray:
    """Bernoulli(exp(-(k + r/q))) per lane: the fractional part, then k Bernoulli(e^-1)
    successes (each lane leaves at its first failure)."""
    res = _bern_exp_frac(r, q, rng)
    idx = np.flatnonzero(res & np.asarray(k > 0, dtype=bool))
    need = k[idx]
    while idx.size:
        s = _bern_exp_one(idx.size, rng)
        res[idx[~s]] = False
        need = need[s] - 1
        idx = idx[s]
        more = np.asarray(need > 0, dtype=bool)
        idx = idx[more]
        need = need[more]
    return res


def _geometric_e(size: int, rng: CsprngSource) -> np.ndarray:
    """Number of Bernoulli(e^-1) successes before the first failure."""
    v = np.zeros(size, dtype=np.int64)
    idx = np.arange(size)
    while idx.size:
        idx = idx[_bern_exp_one(idx.size, rng)]
        v[idx] += 1
    return v


# -- the sampler ---------------------------------------------------------------------------
def _laplace_candidates(plan: _Plan, size: int, rng: CsprngSource) -> np.ndarray:
    """Up to `size` discrete Laplace(t) samples (CKS Algorithm 2, rejected lanes dropped)."""
    t = plan.t
    u = rng.uniform_below(t, size)
    u = u[_bern_exp_frac(u, t, rng)]
    v = _geometric_e(u.size, rng)
    if not plan.fast:
        u = u.astype(object)
        v = v.astype(object)
    x = u + t * v
    neg = rng.bits(x.size).astype(bool)
    keep = ~(neg & np.asarray(x == 0, dtype=bool))  # "-0" would double-count zero
    return np.where(neg, -x, x)[keep]


def _exponent_parts(plan: _Plan, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """floor and remainder of (|Y| t D - N)^2 / Q, exactly."""
    q, td = plan.q, plan.t * plan.d
    if not plan.fast:
        a = np.abs(y) * td - plan.n
        a2 = a * a
        return a2 // q, a2 % q
    yabs = np.abs(y)
    small = yabs <= plan.y_small
    a = yabs * td - plan.n
    a2 = a * a  # exact on small lanes (|a| < 2^31); big lanes are recomputed below
    kk = a2 // q
    rr = a2 - kk * q
    if not small.all():
        big = ~small
        ab = yabs[big].astype(object) * td - plan.n
        ab2 = ab * ab
        kk[big] = np.minimum(ab2 // q, _K_CAP).astype(np.int64)
        rr[big] = (ab2 % q).astype(np.int64)
    return kk, rr


def sample_discrete_gaussian_sq(
    sigma_sq: Fraction, size: int, rng: CsprngSource | None = None
) -> np.ndarray:
    """`size` exact samples of N_Z(0, sigma_sq) for a rational sigma_sq > 0."""
    rng = CsprngSource() if rng is None else rng
    plan = _plan(Fraction(sigma_sq))
    parts: list[np.ndarray] = []
    missing = size
    rate = 0.35  # conservative first guess of accepted outputs per Laplace draw
    while missing:
        draw = int(missing / rate * 1.05) + 64
        y = _laplace_candidates(plan, draw, rng)
        kk, rr = _exponent_parts(plan, y)
        y = y[_bern_exp(kk, rr, plan.q, rng)][:missing]
        parts.append(y)
        missing -= y.size
        rate = max(0.05, min(1.0, y.size / draw)) if y.size else rate / 2
    out = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out.astype(np.int64)


def sample_discrete_gaussian(
    sigma: int | float | Fraction,
    size: int | tuple[int, ...],
    rng: CsprngSource | None = None,
) -> np.ndarray:
    """Exact samples of N_Z(0, sigma^2) as int64; sigma is converted with Fraction(sigma).

    sigma = 0 gives zeros (the point mass). Samples whose magnitude would not fit int64
    cannot occur in practice (probability < exp(-2^60/sigma^2)).
    """
    if isinstance(sigma, float) and not math.isfinite(sigma):
        raise DpParameterError("sigma must be a finite number >= 0")
    s = Fraction(sigma)
    if s < 0:
        raise DpParameterError("sigma must be >= 0")
    shape = (size,) if isinstance(size, int | np.integer) else tuple(size)
    total = int(np.prod(shape, dtype=np.int64))
    if total < 0 or any(int(x) < 0 for x in shape):
        raise DpParameterError("size must be >= 0")
    if s == 0 or total == 0:
        return np.zeros(shape, dtype=np.int64)
    return sample_discrete_gaussian_sq(s * s, total, rng).reshape(shape)
