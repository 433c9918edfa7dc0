"""DDG codec: clip, rotate, scale, conditional randomized rounding, noise share, wrap.

encode() runs on a participant, decode() on the aggregator after secure aggregation.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from dp.csprng import CsprngSource
from dp.errors import DpError, DpParameterError, DpParameterWarning
from dp.rotation import padded_dim, rotate, unrotate
from dp.sampler import fast_sigma_sq_at_least, sample_discrete_gaussian_sq
from dp.sensitivity import l2_sensitivity, wrap_std_devs

DEFAULT_BETA = math.exp(-0.5)
DEFAULT_WRAP_PROB = 1e-4
MAX_BITS = 62
# Redraws of the whole rounded vector before failing closed; expected <= 1/(1-beta).
_MAX_ROUNDING_TRIES = 200
# The Delta2 test is done on exact integers against floor(bound^2 * (1 - slack)), so
# float error in the bound can only make the enforced bound tighter, never looser.
_BOUND_SLACK = 1e-12


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise DpParameterError(message)


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _check_bits_clients(bits: int, clients: int, wrap_prob: float) -> float:
    """The modulus must hold 2 k_s std-devs of a sum of n shares; returns k_s."""
    _require(isinstance(bits, int) and 1 <= bits <= MAX_BITS, f"bits must be in 1..{MAX_BITS}")
    _require(isinstance(clients, int) and clients >= 1, "clients must be an integer >= 1")
    _require(_finite(wrap_prob) and 0 < wrap_prob < 1, "wrap_prob must be in (0, 1)")
    k_s = wrap_std_devs(wrap_prob)
    _require(
        (1 << (2 * bits)) > clients * k_s * k_s,
        f"bits too small: need 2^(2*bits) > clients*k_s^2 = {clients * k_s * k_s:.4g}",
    )
    _require(bits >= math.log2(clients), "bits must be >= log2(clients)")
    return k_s


def gamma_from_bits(
    bits: int,
    clients: int,
    dim: int,
    clip: float,
    sigma: float,
    wrap_prob: float = DEFAULT_WRAP_PROB,
) -> float:
    """TFF's rule: 1/gamma = sqrt(2^(2b) - n k_s^2) / (2 k_s sqrt(c^2 n^2/d' + n sigma^2))."""
    k_s = _check_bits_clients(bits, clients, wrap_prob)
    _require(_finite(clip) and clip > 0, "clip must be a finite number > 0")
    _require(_finite(sigma) and sigma >= 0, "sigma must be a finite number >= 0")
    dp_ = padded_dim(dim)
    n = clients
    inv = math.sqrt((1 << (2 * bits)) - n * k_s * k_s) / (
        2.0 * k_s * math.sqrt(clip * clip * n * n / dp_ + n * sigma * sigma)
    )
    return 1.0 / inv


@dataclass(frozen=True)
class DdgParams:
    """Parameters of one round's encoding. sigma is the per-participant noise std-dev in
    original units (0 = noise off: codec tests only; the accountant refuses it)."""

    clip: float
    bits: int
    gamma: float
    sigma: float
    clients: int
    dim: int
    beta: float = DEFAULT_BETA
    wrap_prob: float = DEFAULT_WRAP_PROB
    padded_dim: int = field(init=False)

    def __post_init__(self) -> None:
        _require(_finite(self.clip) and self.clip > 0, "clip must be a finite number > 0")
        _require(_finite(self.gamma) and self.gamma > 0, "gamma must be a finite number > 0")
        _require(_finite(self.sigma) and self.sigma >= 0, "sigma must be a finite number >= 0")
        _require(_finite(self.beta) and 0 <= self.beta < 1, "beta must be in [0, 1)")
        _require(isinstance(self.dim, int) and self.dim >= 1, "dim must be an integer >= 1")
        _check_bits_clients(self.bits, self.clients, self.wrap_prob)
        object.__setattr__(self, "padded_dim", padded_dim(self.dim))
        ratio = self.sigma / self.gamma
        _require(
            self.sigma == 0 or ratio >= 0.5,
            f"sigma/gamma must be >= 0.5 (got {ratio:.4g}); the tau term would dominate",
        )
        if 0 < ratio < 2:
            warnings.warn(
                f"sigma/gamma = {ratio:.3g} < 2: the tau term inflates epsilon",
                DpParameterWarning,
                stacklevel=3,
            )
        _require(
            self.gamma * math.sqrt(self.padded_dim) <= self.clip,
            "gamma*sqrt(padded_dim) must be <= clip (rounding would dominate the clip norm)",
        )
        _require(self.clip / self.gamma < 2.0**52, "clip/gamma must be < 2^52")

    @property
    def modulus(self) -> int:
        return 1 << self.bits

    @property
    def sigma_scaled(self) -> float:
        """sigma/gamma: the per-share std-dev parameter in the integer domain."""
        return self.sigma / self.gamma

    @property
    def delta2(self) -> float:
        """Enforced L2 sensitivity in original units."""
        return l2_sensitivity(self.clip, self.gamma, self.padded_dim, self.beta)

    @property
    def noise_sigma_sq(self) -> Fraction:
        """The exact sigma^2 the sampler uses: (sigma/gamma)^2 rounded *up* by < 1e-8
        relative onto a grid that keeps the fast sampler (see dp.sampler)."""
        return fast_sigma_sq_at_least(Fraction(self.sigma) ** 2 / Fraction(self.gamma) ** 2)

    @property
    def dtype(self) -> type:
        return np.uint32 if self.bits <= 32 else np.uint64


def _rounded_within_bound(u: np.ndarray, bound_scaled: float, rng: CsprngSource) -> np.ndarray:
    """Conditional randomized rounding: floor(u) + Bernoulli(frac), whole vector redrawn
    until ||.||_2 <= bound_scaled, checked on exact integers."""
    fl = np.floor(u)
    # Bernoulli(frac) as W < floor(frac * 2^64) with W a uniform 64-bit word: unbiased to
    # within 2^-64 per coordinate (the privacy bound is the exact norm check below).
    thresh = np.ldexp(u - fl, 64).astype(np.uint64)
    fl = fl.astype(np.int64)
    limit = math.floor(bound_scaled * bound_scaled * (1.0 - _BOUND_SLACK))
    exact_int64 = (math.sqrt(float(np.dot(u, u))) + math.sqrt(u.size) + 1.0) ** 2 < 2.0**62
    for _ in range(_MAX_ROUNDING_TRIES):
        cand = fl + (rng.words(u.size) < thresh)
        sq = int(np.dot(cand, cand)) if exact_int64 else int(np.dot(*(2 * [cand.astype(object)])))
        if sq <= limit:
            return cand
    raise DpError("conditional rounding did not meet the Delta2 bound; round aborted")


def encode(
    update: np.ndarray,
    params: DdgParams,
    round_seed: bytes,
    rng: CsprngSource | None = None,
) -> np.ndarray:
    """One participant's share: length-d' vector in [0, 2^b) (uint32 if b <= 32)."""
    rng = CsprngSource() if rng is None else rng
    x = np.asarray(update, dtype=np.float64).ravel()
    _require(x.size == params.dim, f"update must have {params.dim} entries, got {x.size}")
    _require(bool(np.isfinite(x).all()), "update must contain only finite values")
    norm = float(np.linalg.norm(x))
    if norm > params.clip:
        x = x * (params.clip / norm)
    u = rotate(x, round_seed)
    u /= params.gamma
    rounded = _rounded_within_bound(u, params.delta2 / params.gamma, rng)
    if params.sigma > 0:
        rounded += sample_discrete_gaussian_sq(params.noise_sigma_sq, rounded.size, rng)
    wrapped = rounded.view(np.uint64) & np.uint64(params.modulus - 1)  # two's complement
    return wrapped.astype(params.dtype, copy=False)


def decode(
    sum_mod_m: np.ndarray, params: DdgParams, round_seed: bytes, contributors: int
) -> np.ndarray:
    """Mean update (length d, float64) from the modular sum of `contributors` shares."""
    _require(
        isinstance(contributors, int) and contributors >= 1, "contributors must be an integer >= 1"
    )
    s = np.asarray(sum_mod_m)
    _require(
        s.ndim == 1 and s.size == params.padded_dim,
        f"sum must be a vector of {params.padded_dim} entries",
    )
    _require(s.dtype.kind in "ui", "sum must be an integer array")
    m = params.modulus
    v = (s.astype(np.uint64) & np.uint64(m - 1)).view(np.int64)
    v = np.where(v >= m // 2, v - m, v)  # re-centre to [-m/2, m/2)
    y = v.astype(np.float64) * params.gamma
    return unrotate(y, round_seed, params.dim) / contributors
