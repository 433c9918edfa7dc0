"""Randomness source, rotation, and the no-non-cryptographic-randomness rule."""

from __future__ import annotations

import math
import pathlib
import re

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import hadamard

from dp import CsprngSource, DpParameterError, padded_dim, rotate, unrotate
from dp.rotation import fwht, rotation_signs

DP_DIR = pathlib.Path(__file__).resolve().parents[1] / "dp"


def test_no_noncryptographic_randomness_or_forbidden_imports_in_dp() -> None:
    for f in DP_DIR.glob("*.py"):
        src = f.read_text()
        assert "np.random" not in src and "numpy.random" not in src, f
        assert not re.search(
            r"^\s*(import|from)\s+(random|scipy|torch|grpc|secagg|node)\b", src, re.M
        ), f


@pytest.mark.parametrize("bound", [2, 3, 7, 200, 1000, (1 << 40) + 3])
def test_uniform_below_is_uniform(bound: int) -> None:
    rng = CsprngSource(key=bytes(32))
    n = 400_000
    u = rng.uniform_below(bound, n)
    assert u.size == n and int(u.min()) >= 0 and int(u.max()) < bound
    bins = min(bound, 64)
    # For large bounds test the top bins: an off-by-mask bug would empty or overfill some.
    counts = np.bincount((u.astype(object) * bins // bound).astype(np.int64), minlength=bins)
    exp = (
        np.array(
            [
                ((i + 1) * bound + bins - 1) // bins - (i * bound + bins - 1) // bins
                for i in range(bins)
            ]
        )
        / bound
        * n
    )
    chi2 = float(((counts - exp) ** 2 / exp).sum())
    assert chi2 < stats.chi2.ppf(1 - 1e-6, bins - 1)


def test_uniform_below_large_bounds_and_bits() -> None:
    rng = CsprngSource(key=bytes(32))
    for bound in [1 << 62, (1 << 62) + 1, 3**50]:
        u = rng.uniform_below(bound, 20_000)
        assert all(0 <= int(v) < bound for v in u)
        # the top half of the range is hit about half the time (binomial, z = 4.9)
        top = sum(int(v) >= bound // 2 for v in u)
        assert abs(top - 10_000) < 4.9 * math.sqrt(5_000)
    b = rng.bits(1_000_000)
    assert set(np.unique(b)) <= {0, 1}
    assert abs(int(b.sum()) - 500_000) < 4.9 * 500


def test_source_repr_hides_key_and_keys_are_validated() -> None:
    key = bytes(range(32))
    assert key.hex() not in repr(CsprngSource(key=key))
    with pytest.raises(DpParameterError):
        CsprngSource(key=b"short")
    assert not np.array_equal(CsprngSource().words(4), CsprngSource().words(4))


def test_padded_dim() -> None:
    assert [padded_dim(d) for d in (1, 2, 3, 4, 5, 1000, 1 << 20)] == [1, 2, 4, 4, 8, 1024, 1 << 20]
    with pytest.raises(DpParameterError):
        padded_dim(0)


def test_fwht_matches_hadamard_matrix() -> None:
    x = np.arange(64, dtype=float) - 17.5
    assert np.allclose(fwht(x), hadamard(64) @ x)


def test_rotation_orthogonal_and_exact_inverse() -> None:
    seed = b"round-7-public-seed!"
    x = np.linspace(-3, 5, 1000)
    y = rotate(x, seed)
    assert y.size == 1024
    assert np.linalg.norm(y) == pytest.approx(np.linalg.norm(x), rel=1e-12)
    x2 = np.cos(np.arange(1000.0))
    assert np.dot(rotate(x2, seed), y) == pytest.approx(np.dot(x2, x), rel=1e-10, abs=1e-9)
    assert np.allclose(unrotate(y, seed, 1000), x, atol=1e-12)
    # a different round seed gives a different rotation
    assert not np.allclose(rotate(x, b"round-8-public-seed!"), y)


def test_signs_come_from_bits_and_depend_only_on_seed() -> None:
    s1 = rotation_signs(b"A" * 16, 4096)
    assert set(np.unique(s1)) == {-1.0, 1.0}
    assert np.array_equal(s1, rotation_signs(b"A" * 16, 4096))
    assert not np.array_equal(s1, rotation_signs(b"B" * 16, 4096))
    assert abs(float(s1.sum())) < 4.9 * 64
    with pytest.raises(DpParameterError, match="round_seed"):
        rotation_signs(b"short", 8)
