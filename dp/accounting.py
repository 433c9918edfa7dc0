"""RDP accounting of the distributed discrete Gaussian (KLS) with Poisson subsampling.

A RoundRecord says what one round did; the accountant prices a sequence of them. The
curve is computed here (dp-accounting has no event for a sum of discrete Gaussians);
dp-accounting does the RDP -> (eps, delta) conversion and the continuous baseline.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import dp_accounting
import numpy as np
from dp_accounting import rdp as dp_rdp

from dp.errors import DpParameterError
from dp.sensitivity import l2_sensitivity

# Integer orders only: Zhu-Wang Theorem 5 needs them (fractional orders break it).
ORDERS: tuple[int, ...] = (*range(2, 129), 256)
_ALL_ORDERS = np.arange(2, 257, dtype=np.float64)  # every l needed by the Theorem 5 sum


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise DpParameterError(message)


def _pos(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@dataclass(frozen=True)
class RoundRecord:
    """What one round did, as the accountant needs it.

    contributors: noise shares actually in the sum (minus assumed colluders);
    sigma: per-share std-dev in original units; gamma, clip, beta as encoded;
    padded_dim: d' (a power of two); sampling_rate: Poisson rate q of this participant.
    """

    contributors: int
    sigma: float
    gamma: float
    clip: float
    padded_dim: int
    beta: float = math.exp(-0.5)
    sampling_rate: float = 1.0

    def __post_init__(self) -> None:
        n, dp_ = self.contributors, self.padded_dim
        _require(isinstance(n, int) and n >= 1, "contributors must be an integer >= 1")
        _require(_pos(self.sigma), "sigma must be a finite number > 0")
        _require(_pos(self.gamma), "gamma must be a finite number > 0")
        _require(_pos(self.clip), "clip must be a finite number > 0")
        _require(
            isinstance(dp_, int) and dp_ >= 1 and dp_ & (dp_ - 1) == 0,
            "padded_dim must be a power of two >= 1",
        )
        _require(
            isinstance(self.beta, int | float) and 0 <= self.beta < 1, "beta must be in [0, 1)"
        )
        q = self.sampling_rate
        _require(isinstance(q, int | float) and 0 < q <= 1, "sampling_rate must be in (0, 1]")
        _require(self.sigma / self.gamma >= 0.5, "sigma/gamma must be >= 0.5")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> RoundRecord:
        return cls(**obj)

    # -- the curve ---------------------------------------------------------------------
    def tau(self) -> float:
        """tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 s^2 k/(k+1)) with s = sigma/gamma (scaled!)."""
        n = self.contributors
        if n == 1:
            return 0.0
        s = self.sigma / self.gamma
        k = np.arange(1, n, dtype=np.float64)
        return float(10.0 * np.exp(-2.0 * math.pi**2 * s * s * k / (k + 1.0)).sum())

    def rdp_unsampled(self, orders: np.ndarray) -> np.ndarray:
        """RDP of one round without subsampling, KLS three-term bound (scaled domain)."""
        dp_ = self.padded_dim
        s = self.sigma / self.gamma
        d2 = l2_sensitivity(self.clip, self.gamma, dp_, self.beta) / self.gamma
        d1 = d2 * min(math.sqrt(dp_), d2)
        tau = self.tau()
        root_n_s = math.sqrt(self.contributors) * s
        a2, a1 = d2 / root_n_s, d1 / root_n_s
        al = np.asarray(orders, dtype=np.float64)
        t1 = al * a2 * a2 / 2.0 + tau * dp_
        t2 = al / 2.0 * (a2 * a2 + 2.0 * a1 * tau + tau * tau * dp_)
        t3 = al / 2.0 * (a2 + tau * math.sqrt(dp_)) ** 2
        return np.minimum(np.minimum(t1, t2), t3)

    def rdp(self) -> np.ndarray:
        """RDP at ORDERS, Poisson-subsampled with Zhu-Wang Theorem 5 when q < 1."""
        eps_all = self.rdp_unsampled(_ALL_ORDERS)  # eps_all[l - 2] = eps(l)
        idx = np.asarray(ORDERS) - 2
        if self.sampling_rate >= 1.0:
            return eps_all[idx]
        return np.minimum(_zhu_wang(self.sampling_rate, eps_all), eps_all[idx])


def _log_binom(a: int, l_: np.ndarray) -> np.ndarray:
    return (
        math.lgamma(a + 1)
        - np.array([math.lgamma(x + 1) for x in l_])
        - np.array([math.lgamma(a - x + 1) for x in l_])
    )


def _zhu_wang(q: float, eps_all: np.ndarray) -> np.ndarray:
    """Zhu & Wang 2019 Theorem 5 (general mechanisms) at each integer order in ORDERS,
    evaluated in log space so huge eps(l) do not overflow."""
    lq, l1q = math.log(q), math.log1p(-q)
    out = []
    for a in ORDERS:  # <= 128 orders; the inner sum over l is vectorised
        terms = [(a - 1) * l1q + math.log(a * q - q + 1)]
        terms.append(math.log(a * (a - 1) / 2) + 2 * lq + (a - 2) * l1q + eps_all[0])
        if a >= 3:
            ls = np.arange(3, a + 1)
            terms.extend(
                math.log(3.0)
                + _log_binom(a, ls)
                + (a - ls) * l1q
                + ls * lq
                + (ls - 1) * eps_all[ls - 2]
            )
        t = np.asarray(terms)
        m = t.max()
        out.append((m + math.log(np.exp(t - m).sum())) / (a - 1))
    return np.asarray(out)


def rdp_curve(records: Sequence[RoundRecord]) -> np.ndarray:
    """Composition: the sum of the per-round curves (rounds may differ)."""
    total = np.zeros(len(ORDERS))
    cache: dict[RoundRecord, np.ndarray] = {}
    for r in records:
        if r not in cache:
            cache[r] = r.rdp()
        total += cache[r]
    return total


def _check_delta(delta: float) -> None:
    _require(isinstance(delta, int | float) and 0 < delta < 1, "delta must be in (0, 1)")


def epsilon_for(records: Sequence[RoundRecord], delta: float) -> tuple[float, int]:
    """(epsilon, optimal order) of the composition of `records` at `delta`."""
    _check_delta(delta)
    if not records:
        return 0.0, ORDERS[0]
    eps, order = dp_rdp.compute_epsilon(ORDERS, rdp_curve(records), delta)
    return float(eps), int(order)


def gaussian_baseline_epsilon(records: Sequence[RoundRecord], delta: float) -> float:
    """Continuous-Gaussian comparison (for display only, never for the budget): noise
    multiplier sqrt(n) sigma / c, Poisson-sampled at q, via dp-accounting's RdpAccountant."""
    _check_delta(delta)
    acc = dp_accounting.rdp.RdpAccountant()
    for r, count in Counter(records).items():  # compose identical rounds in one step
        z = math.sqrt(r.contributors) * r.sigma / r.clip
        event = dp_accounting.GaussianDpEvent(z)
        if r.sampling_rate < 1.0:
            event = dp_accounting.PoissonSampledDpEvent(r.sampling_rate, event)
        acc.compose(event, count)
    return float(acc.get_epsilon(delta))


def calibrate_sigma(
    target_epsilon: float,
    delta: float,
    make_records: Callable[[float], Sequence[RoundRecord]],
    sigma_lo: float,
    rel_tol: float = 1e-6,
) -> float:
    """Smallest sigma (to rel_tol, rounded up) whose records meet target_epsilon.

    Bisection on sigma: epsilon is monotone decreasing in sigma for a fixed gamma.
    `make_records(sigma)` builds the rounds; sigma_lo is the smallest admissible sigma.
    """
    _require(_pos(target_epsilon), "epsilon must be a finite number > 0")
    _check_delta(delta)

    def eps(s: float) -> float:
        return epsilon_for(make_records(s), delta)[0]

    lo = sigma_lo
    if eps(lo) <= target_epsilon:
        return lo
    hi = 2.0 * lo
    while eps(hi) > target_epsilon:
        lo, hi = hi, 2.0 * hi
        _require(hi < 1e300, "epsilon target not reachable by any sigma")
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        if eps(mid) <= target_epsilon:
            hi = mid
        else:
            lo = mid
    return hi
