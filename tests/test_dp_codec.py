"""DDG codec: round trips, the enforced Delta2 bound, noise variance, validation."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from dp import CsprngSource, DdgParams, DpParameterError, decode, encode, gamma_from_bits
from dp.errors import DpParameterWarning
from dp.sensitivity import wrap_std_devs

SEED = b"public-round-seed-0001"


def params(**kw) -> DdgParams:
    base = dict(clip=1.0, bits=20, gamma=1e-3, sigma=0.0, clients=5, dim=1000)
    base.update(kw)
    return DdgParams(**base)


def signed(z: np.ndarray, p: DdgParams) -> np.ndarray:
    v = z.astype(np.int64)
    return np.where(v >= p.modulus // 2, v - p.modulus, v)


def test_round_trip_noise_off_within_rounding_bound() -> None:
    p = params()
    rng = CsprngSource(key=bytes(32))
    xs = [np.sin(np.arange(1000) * (k + 1)) * (0.3 if k % 2 else 5.0) for k in range(5)]
    clipped = [x * min(1.0, p.clip / np.linalg.norm(x)) for x in xs]
    total = np.zeros(p.padded_dim, dtype=np.uint64)
    for x in xs:
        z = encode(x, p, SEED, rng)
        assert z.dtype == np.uint32 and z.size == 1024 and int(z.max()) < p.modulus
        total = (total + z) & np.uint64(p.modulus - 1)
    mean = decode(total, p, SEED, contributors=5)
    err = np.linalg.norm(mean - np.mean(clipped, axis=0))
    # each share's rounding error is < 1 per scaled coordinate: ||err|| <= gamma sqrt(d')
    assert err <= p.gamma * math.sqrt(p.padded_dim)
    # and randomized rounding is unbiased, so it is far smaller in practice (~gamma*sqrt(d'/4n))
    assert err < 0.5 * p.gamma * math.sqrt(p.padded_dim)


@pytest.mark.parametrize("beta", [0.0, math.exp(-0.5), 0.95])
def test_delta2_bound_is_enforced(beta: float) -> None:
    # gamma*sqrt(d') = 0.25 c, so plain rounding could exceed the conditional bound.
    p = params(gamma=1.0 / 128, dim=1024, beta=beta)
    rng = CsprngSource(key=bytes(32))
    x = np.full(1024, 1.0) / 32.0 + 1.0 / 256  # norm 1.125 -> clipped; fractional parts ~1/2
    for _ in range(20):
        v = signed(encode(x, p, SEED, rng), p)
        assert math.sqrt(float(np.dot(v, v))) <= p.delta2 / p.gamma


def test_noise_variance_matches_exact_discrete_gaussian() -> None:
    # Zero updates round exactly to 0, so the decoded sum is pure noise: per coordinate a
    # sum of n iid N_Z(0, s2). Var[S^2] = n m4 + 3n(n-1)V^2 - (nV)^2 from exact moments;
    # d' = 2^21 sums > the ~2.1e6 samples a 1% variance error needs (see test_dp_sampler).
    n = 2
    p = params(sigma=2.2e-3, clients=n, dim=1 << 21, clip=2.0)
    s2 = p.noise_sigma_sq
    mpmath.mp.dps = 40
    ks = range(-60, 61)
    w = [mpmath.exp(-mpmath.mpf(k * k) * s2.denominator / (2 * s2.numerator)) for k in ks]
    z = mpmath.fsum(w)
    var = float(mpmath.fsum(wi * k * k for wi, k in zip(w, ks, strict=True)) / z)
    m4 = float(mpmath.fsum(wi * k**4 for wi, k in zip(w, ks, strict=True)) / z)
    rng = CsprngSource(key=bytes(32))
    total = np.zeros(p.padded_dim, dtype=np.uint64)
    for _ in range(n):
        total = (total + encode(np.zeros(p.dim), p, SEED, rng)) & np.uint64(p.modulus - 1)
    decoded_sum = decode(total, p, SEED, contributors=1)
    est = float(np.mean(decoded_sum**2)) / p.gamma**2
    target = n * var
    sd = math.sqrt((n * m4 + 3 * n * (n - 1) * var**2 - target**2) / p.padded_dim)
    assert abs(est - target) < 5.33 * sd
    assert 10.22 * sd < 0.01 * target  # a 1%-off variance would fail


def test_wrap_and_dtypes() -> None:
    p = params(bits=40, gamma=1e-6, sigma=1e-4, dim=8, clients=2)
    z = encode(-np.ones(8) / 10, p, SEED, CsprngSource(key=bytes(32)))
    assert z.dtype == np.uint64 and int(z.max()) < 1 << 40
    assert np.allclose(decode(z, p, SEED, 1), -np.ones(8) / 10, atol=5e-3)


def test_gamma_from_bits_tff_rule() -> None:
    assert wrap_std_devs(1e-4) == pytest.approx(3.8906, abs=1e-4)
    n, d, c, z = 100, 100_000, 1.0, 1.0
    sigma = z * c / math.sqrt(n)
    g = gamma_from_bits(16, n, d, c, sigma)
    dp_ = 1 << 17
    var = (c * c * n * n / dp_ + n * (g * g / 4 + sigma * sigma)) / g**2
    assert 2 * wrap_std_devs(1e-4) * math.sqrt(var) == pytest.approx(2**16, rel=1e-9)
    assert gamma_from_bits(20, n, d, c, sigma) < g  # more bits, finer grid


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(bits=0), "bits must be in 1..62"),
        (dict(bits=63), "bits must be in 1..62"),
        (dict(bits=3, clients=5), "2\\^\\(2\\*bits\\)"),
        (dict(sigma=3e-4), "sigma/gamma must be >= 0.5"),
        (dict(gamma=0.05), "gamma\\*sqrt\\(padded_dim\\)"),
        (dict(clip=float("inf")), "clip"),
        (dict(beta=1.0), "beta must be in \\[0, 1\\)"),
    ],
)
def test_validation_names_parameter_and_range(kw: dict, match: str) -> None:
    with pytest.raises(DpParameterError, match=match):
        params(**kw)


def test_warning_below_two_and_input_checks() -> None:
    with pytest.warns(DpParameterWarning, match="sigma/gamma"):
        params(sigma=1.5e-3)
    p = params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        params(sigma=2e-3)
    with pytest.raises(DpParameterError, match="finite"):
        encode(np.r_[np.ones(999), np.nan], p, SEED)
    with pytest.raises(DpParameterError, match="1000 entries"):
        encode(np.ones(10), p, SEED)
    with pytest.raises(DpParameterError, match="contributors"):
        decode(np.zeros(1024, np.uint32), p, SEED, 0)


def test_sampled_noise_scale_is_rounded_up_negligibly() -> None:
    p = params(sigma=0.0123456789, gamma=1e-4, dim=1000, bits=30)
    exact = Fraction(p.sigma) ** 2 / Fraction(p.gamma) ** 2
    assert exact <= p.noise_sigma_sq < exact * (1 + Fraction(1, 10**8))
