"""Tests of secagg.shamir: t-of-k sharing of 32-byte secrets over GF(2^31 + 11)."""

from __future__ import annotations

import contextlib
import itertools
import os
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg import shamir
from secagg.errors import ConfigurationError, CryptoError
from secagg.shamir import LIMBS, PRIME, SHARE_BYTES, combine, combine_many, split, split_many


def _limbs(blob: bytes) -> list[int]:
    return [int.from_bytes(blob[4 * i : 4 * i + 4], "little") for i in range(LIMBS)]


def _blob(limbs: list[int]) -> bytes:
    return b"".join(v.to_bytes(4, "little") for v in limbs)


def _interpolate(points: list[tuple[int, int]], at: int) -> int:
    """Reference Lagrange interpolation with Python ints (independent of the module)."""
    total = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if j != i:
                num = num * (at - xj) % PRIME
                den = den * (xi - xj) % PRIME
        total = (total + yi * num * pow(den, PRIME - 2, PRIME)) % PRIME
    return total


def _secret_limbs(secret: bytes) -> list[int]:
    value = int.from_bytes(secret, "big")
    return [(value >> (31 * i)) & ((1 << 31) - 1) for i in range(LIMBS)]


def test_constants():
    assert PRIME == 2**31 + 11
    assert all(pow(a, PRIME - 1, PRIME) == 1 for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37))
    assert LIMBS * 31 >= 256 and SHARE_BYTES == 4 * LIMBS == 36
    assert (PRIME - 1) ** 2 + PRIME < 2**63  # products fit uint64 with room for an add


def test_every_t_subset_rebuilds():
    secret = os.urandom(32)
    xs = [2, 5, 7, 11, 40]
    shares = split(secret, 3, xs)
    assert set(shares) == set(xs)
    assert all(len(blob) == SHARE_BYTES for blob in shares.values())
    assert all(max(_limbs(blob)) < PRIME for blob in shares.values())
    for subset in itertools.combinations(xs, 3):
        assert combine({x: shares[x] for x in subset}, 3) == secret


def test_shares_lie_on_a_degree_t_minus_1_polynomial():
    """Checked with an independent interpolation: t shares predict every other share."""
    secret, t, xs = os.urandom(32), 4, [1, 2, 3, 4, 5, 9, 1000]
    shares = split(secret, t, xs)
    basis = xs[:t]
    for limb in range(LIMBS):
        points = [(x, _limbs(shares[x])[limb]) for x in basis]
        assert _interpolate(points, 0) == _secret_limbs(secret)[limb]
        for x in xs[t:]:
            assert _interpolate(points, x) == _limbs(shares[x])[limb]


@pytest.mark.parametrize(
    "secret", [bytes(32), b"\xff" * 32, b"\x80" + bytes(31), bytes(31) + b"\x01"]
)
def test_edge_secrets(secret):
    shares = split(secret, 2, [1, 2, 3])
    assert combine({1: shares[1], 3: shares[3]}, 2) == secret


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=32, max_size=32),
    data=st.data(),
    t=st.integers(min_value=2, max_value=12),
    extra=st.integers(min_value=0, max_value=10),
)
def test_random_subsets_rebuild(secret, data, t, extra):
    n = t + extra
    xs = data.draw(st.lists(st.integers(1, PRIME - 1), min_size=n, max_size=n, unique=True))
    shares = split(secret, t, xs)
    size = data.draw(st.integers(t, n))
    subset = data.draw(st.permutations(xs))[:size]
    assert combine({x: shares[x] for x in subset}, t) == secret


def test_fewer_than_t_shares_are_consistent_with_every_secret():
    """t-1 shares fix nothing: for ANY candidate secret there is a polynomial of degree
    t-1 through those shares and that secret, whose further share completes a valid set."""
    t, xs = 5, [1, 2, 3, 4, 5, 6]
    real = os.urandom(32)
    shares = split(real, t, xs)
    known = xs[: t - 1]
    for candidate in (os.urandom(32), bytes(32), b"\xff" * 32):
        limbs = _secret_limbs(candidate)
        forged = []
        for limb in range(LIMBS):
            points = [(0, limbs[limb])] + [(x, _limbs(shares[x])[limb]) for x in known]
            forged.append(_interpolate(points, xs[-1]))
        rebuilt = combine({**{x: shares[x] for x in known}, xs[-1]: _blob(forged)}, t)
        assert rebuilt == candidate


def test_single_share_is_uniform_regardless_of_secret():
    """t = 2: the share at x is secret + a x with a uniform; its top bit is 1/2 for any secret.

    2000 splits per secret, sd of the frequency 0.011; bound 0.06 (5.4 sd) -> failure < 1e-7
    per limb check."""
    for secret in (bytes(32), b"\xff" * 32):
        top_bits = np.zeros(LIMBS)
        for _ in range(2000):
            limbs = _limbs(split(secret, 2, [7, 8])[7])
            top_bits += [v >> 30 & 1 for v in limbs]
        assert np.all(np.abs(top_bits / 2000 - 0.5) < 0.06)


def test_random_field_elements_are_in_range_and_balanced():
    values = shamir._random_field_elements(200_000)
    assert values.dtype == np.uint64 and int(values.max()) < PRIME
    # Fraction above p/2 is 1/2: sd 0.0011, bound 0.006 (5.4 sd).
    assert abs(np.count_nonzero(values > PRIME // 2) / values.size - 0.5) < 0.006
    assert len(np.unique(values[:1000])) == 1000


def test_more_shares_use_the_threshold_smallest_xs():
    secret = os.urandom(32)
    xs = [3, 10, 20, 30, 40]
    shares = split(secret, 3, xs)
    garbage = dict(shares)
    garbage[40] = _blob([PRIME - 1] * LIMBS)  # a valid-format but wrong share, not used
    garbage[30] = _blob([0] * LIMBS)
    assert combine(garbage, 3) == secret
    wrong_small = dict(shares)
    wrong_small[3] = _blob([(v + 1) % PRIME for v in _limbs(shares[3])])
    with contextlib.suppress(CryptoError):  # either caught by the range check ...
        assert combine(wrong_small, 3) != secret  # ... or a different value


def test_inconsistent_shares_are_detected():
    """A share from another split: rebuilding lands on a random field vector, which fits
    256 bits with probability about 2^-23."""
    xs = [1, 2, 3, 4]
    a, b = split(os.urandom(32), 3, xs), split(os.urandom(32), 3, xs)
    with pytest.raises(CryptoError, match="inconsistent shares"):
        combine({1: a[1], 2: a[2], 3: b[3]}, 3)


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ({1: bytes(36), 2: bytes(35)}, "36 bytes"),
        ({1: bytes(36), 2: bytes(37)}, "36 bytes"),
        ({1: bytes(36), 2: "x" * 36}, "36 bytes"),
        ({1: bytes(36), 2: _blob([PRIME] + [0] * 8)}, "limb value"),
        ({1: bytes(36), 2: b"\xff" * 36}, "limb value"),
        ({0: bytes(36), 2: bytes(36)}, "x out of range"),
        ({1: bytes(36), PRIME: bytes(36)}, "x out of range"),
        ({1: bytes(36), -2: bytes(36)}, "x out of range"),
        ({1: bytes(36)}, "not enough shares"),
        ({}, "not enough shares"),
    ],
)
def test_combine_rejects_malformed_shares(shares, message):
    with pytest.raises(CryptoError, match=message):
        combine(shares, 2)


def test_combine_rejects_bad_threshold():
    shares = split(os.urandom(32), 2, [1, 2])
    for t in (1, 0, True, 2.0):
        with pytest.raises(ConfigurationError):
            combine(shares, t)


@pytest.mark.parametrize(
    ("secret", "threshold", "xs", "message"),
    [
        (bytes(32), 1, [1, 2, 3], "threshold"),
        (bytes(32), 4, [1, 2, 3], "threshold"),
        (bytes(32), True, [1, 2, 3], "threshold"),
        (bytes(32), 2, [1, 2, 2], "distinct"),
        (bytes(32), 2, [0, 1, 2], "xs"),
        (bytes(32), 2, [1, 2, PRIME], "xs"),
        (bytes(32), 2, [1, -2, 3], "xs"),
        (bytes(32), 2, [1, 2.0, 3], "xs"),
        (bytes(32), 2, "abc", "xs"),
        (bytes(31), 2, [1, 2, 3], "secret"),
        (bytes(33), 2, [1, 2, 3], "secret"),
        ("s" * 32, 2, [1, 2, 3], "secret"),
    ],
)
def test_split_rejects_bad_arguments(secret, threshold, xs, message):
    with pytest.raises(ConfigurationError, match=message):
        split(secret, threshold, xs)


def test_split_many_and_combine_many():
    secrets = [os.urandom(32) for _ in range(6)]
    xs = list(range(1, 11))
    share_sets = split_many(secrets, 4, xs)
    assert len(share_sets) == 6
    # Same x, different secrets: independent shares.
    assert share_sets[0][1] != share_sets[1][1]
    # Mixed responder sets (three groups), order preserved.
    requests = [
        {x: share_sets[0][x] for x in (1, 2, 3, 4)},
        {x: share_sets[1][x] for x in (5, 6, 7, 8, 9)},
        {x: share_sets[2][x] for x in (1, 2, 3, 4)},
        {x: share_sets[3][x] for x in (2, 4, 6, 8)},
        {x: share_sets[4][x] for x in (5, 6, 7, 8)},
        {x: share_sets[5][x] for x in xs},
    ]
    assert combine_many(requests, 4) == secrets
    assert [combine(r, 4) for r in requests] == secrets
    assert combine_many([], 4) == []
    assert split_many([], 2, [1, 2]) == []
    requests[3] = {2: share_sets[3][2]}
    with pytest.raises(CryptoError):
        combine_many(requests, 4)


def test_lagrange_coefficients_and_cache():
    xs = (2, 3, 9, 100, 7000)
    lam = shamir.lagrange_at_zero(xs)
    assert not lam.flags.writeable
    for k in range(len(xs)):  # sum lambda_i x_i^k = [k == 0] for k < t
        assert sum(int(c) * pow(x, k, PRIME) for c, x in zip(lam, xs, strict=True)) % PRIME == (
            1 if k == 0 else 0
        )
    shamir.lagrange_at_zero.cache_clear()
    shares = split(os.urandom(32), 3, [4, 5, 6])
    combine(shares, 3)
    info = shamir.lagrange_at_zero.cache_info()
    assert (info.hits, info.misses) == (0, 1)
    combine(shares, 3)
    combine_many([shares, shares], 3)
    info = shamir.lagrange_at_zero.cache_info()
    assert (info.hits, info.misses) == (2, 1)


def test_coefficients_derived_from_a_common_base_match_direct_ones():
    # Full-graph shape: each owner's shares are held by everyone but itself, so
    # the t smallest holders are the first t + 1 minus the owner (t + 1 sets).
    t, base = 6, (3, 5, 8, 13, 21, 34, 55)
    sets = [tuple(x for x in base if x != owner)[:t] for owner in base]
    sets += [base[:t], (3, 5, 8, 13, 21, 55)]
    derived = shamir._coefficients(list(dict.fromkeys(sets)))
    assert len(derived) == len(base)
    for xs, lam in derived.items():
        assert lam.tolist() == shamir.lagrange_at_zero(xs).tolist()
    # Too far from any common base: computed directly.
    far = [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    assert all(
        lam.tolist() == shamir.lagrange_at_zero(xs).tolist()
        for xs, lam in shamir._coefficients(far).items()
    )


def test_combine_many_full_graph_shape_rebuilds_every_secret():
    ids = list(range(1, 31))
    t = 17
    secrets = [os.urandom(32) for _ in ids]
    requests = []
    for owner, secret in zip(ids, secrets, strict=True):
        holders = [x for x in ids if x != owner]
        shares = split(secret, t, holders)
        requests.append({x: shares[x] for x in holders[::-1]})  # order must not matter
    assert combine_many(requests, t) == secrets


def test_speed_at_n500_t250():
    """Speed sanity (printed, not asserted): one participant shares s^SK and b_u."""
    xs = list(range(1, 501))
    secrets = [os.urandom(32), os.urandom(32)]
    start = time.perf_counter()
    share_sets = split_many(secrets, 250, xs)
    split_ms = (time.perf_counter() - start) * 1e3
    chosen = [{x: s[x] for x in xs[100:350]} for s in share_sets]
    shamir.lagrange_at_zero.cache_clear()
    start = time.perf_counter()
    assert combine_many(chosen, 250) == secrets
    cold_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    assert combine(chosen[0], 250) == secrets[0]
    warm_ms = (time.perf_counter() - start) * 1e3
    print(
        f"\nshamir n=500 t=250: split 2 secrets {split_ms:.1f} ms, combine 2 (cold cache) "
        f"{cold_ms:.1f} ms, combine 1 (cached) {warm_ms:.2f} ms"
    )
