"""Shamir t-of-k secret sharing of 32-byte secrets, vectorised with numpy.

Layout (as in fcp/secagg): the 256-bit secret, read as a big-endian integer,
is cut into 9 little-endian limbs of 31 bits (the top limb holds the top 8
bits). Each limb is shared independently over GF(p), p = 2^31 + 11, with its
own random polynomial of degree t - 1 whose constant term is the limb. A
product of two field elements is < 2^63, so all arithmetic runs in uint64
numpy arrays: splitting evaluates every limb polynomial at every x at once
(Horner over t, arrays of shape (limbs, len(xs))); rebuilding is one
multiply-reduce-sum with Lagrange coefficients at 0, which are cached per
responder set.

A share is SHARE_BYTES = 36 bytes: the 9 limb values (each < p), little-endian
uint32. The x coordinate of a share is the holder's participant id and is not
part of the blob. Polynomial coefficients are uniform in GF(p), drawn from
os.urandom by rejection sampling (no modulo bias).

Rebuilding checks that every limb fits its bit width: inconsistent shares are
then detected with probability about 1 - 2^-23 per secret. This is a sanity
check, not an integrity guarantee; callers check every share against its
commitment first.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence

import numpy as np

from secagg.errors import ConfigurationError, CryptoError

__all__ = [
    "LIMBS",
    "LIMB_BITS",
    "PRIME",
    "SECRET_BYTES",
    "SHARE_BYTES",
    "combine",
    "combine_many",
    "lagrange_at_zero",
    "split",
    "split_many",
]

PRIME = (1 << 31) + 11
LIMB_BITS = 31
SECRET_BYTES = 32
LIMBS = -(-SECRET_BYTES * 8 // LIMB_BITS)  # 9
_TOP_BITS = SECRET_BYTES * 8 - LIMB_BITS * (LIMBS - 1)  # 8 bits in the top limb
SHARE_BYTES = 4 * LIMBS  # 36

_P = np.uint64(PRIME)
_LIMB_MASK = (1 << LIMB_BITS) - 1
# Largest multiple of p below 2^64: 64-bit draws below it reduce to uniform values mod p.
_REJECTION_LIMIT = np.uint64(((1 << 64) // PRIME) * PRIME)
_LIMB_LIMITS = np.array([1 << LIMB_BITS] * (LIMBS - 1) + [1 << _TOP_BITS], dtype=np.uint64)


def _random_field_elements(count: int) -> np.ndarray:
    """`count` independent uniform elements of GF(p) (uint64), from os.urandom."""
    out = np.empty(count, dtype=np.uint64)
    filled = 0
    while filled < count:
        need = count - filled
        draw = np.frombuffer(os.urandom(8 * (need + 8)), dtype="<u8")
        draw = draw[draw < _REJECTION_LIMIT][:need] % _P
        out[filled : filled + draw.size] = draw
        filled += draw.size
    return out


def _secrets_to_limbs(secrets: Sequence[bytes]) -> np.ndarray:
    """Shape (len(secrets), LIMBS) uint64; limb i holds bits [31 i, 31 i + 31)."""
    limbs = np.empty((len(secrets), LIMBS), dtype=np.uint64)
    for row, secret in enumerate(secrets):
        value = int.from_bytes(secret, "big")
        limbs[row] = [(value >> (LIMB_BITS * i)) & _LIMB_MASK for i in range(LIMBS)]
    return limbs


def _limbs_to_secret(limbs: np.ndarray) -> bytes:
    value = 0
    for i in range(LIMBS - 1, -1, -1):
        value = (value << LIMB_BITS) | int(limbs[i])
    return value.to_bytes(SECRET_BYTES, "big")


def _check_threshold(threshold: object) -> int:
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 2:
        raise ConfigurationError("threshold must be an int >= 2")
    return threshold


def _check_xs(xs: object) -> list[int]:
    if isinstance(xs, str | bytes) or not isinstance(xs, Sequence):
        raise ConfigurationError("xs must be a sequence of participant ids")
    out: list[int] = []
    for x in xs:
        if not isinstance(x, int) or isinstance(x, bool) or not 1 <= x < PRIME:
            raise ConfigurationError(f"xs: every id must be an int in [1, {PRIME})")
        out.append(int(x))
    if len(set(out)) != len(out):
        raise ConfigurationError("xs: ids must be distinct")
    return out


def split_many(
    secrets: Sequence[bytes], threshold: int, xs: Sequence[int]
) -> list[dict[int, bytes]]:
    """Share several 32-byte secrets among the same xs in one vectorised pass."""
    threshold = _check_threshold(threshold)
    xs_list = _check_xs(xs)
    if threshold > len(xs_list):
        raise ConfigurationError(
            f"threshold ({threshold}) must not exceed the number of xs ({len(xs_list)})"
        )
    for secret in secrets:
        if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_BYTES:
            raise ConfigurationError(f"secret must be {SECRET_BYTES} bytes")
    count = len(secrets)
    if count == 0:
        return []
    rows = count * LIMBS
    n = len(xs_list)
    # coeffs[j] = coefficients of x^j for every (secret, limb) row.
    coeffs = np.empty((threshold, rows), dtype=np.uint64)
    coeffs[0] = _secrets_to_limbs(secrets).reshape(rows)
    coeffs[1:] = _random_field_elements((threshold - 1) * rows).reshape(threshold - 1, rows)
    x = np.array(xs_list, dtype=np.uint64)
    acc = np.empty((rows, n), dtype=np.uint64)
    acc[:] = coeffs[threshold - 1][:, None]
    for j in range(threshold - 2, -1, -1):  # Horner: acc = acc * x + c_j (mod p)
        np.multiply(acc, x, out=acc)  # < p^2 < 2^63
        np.add(acc, coeffs[j][:, None], out=acc)
        np.remainder(acc, _P, out=acc)
    packed = acc.reshape(count, LIMBS, n).transpose(0, 2, 1).astype("<u4").tobytes()
    coeffs[:] = 0
    acc[:] = 0
    out: list[dict[int, bytes]] = []
    offset = 0
    for _ in range(count):
        shares: dict[int, bytes] = {}
        for xi in xs_list:
            shares[xi] = packed[offset : offset + SHARE_BYTES]
            offset += SHARE_BYTES
        out.append(shares)
    return out


def split(secret: bytes, threshold: int, xs: Sequence[int]) -> dict[int, bytes]:
    """Share a 32-byte secret: any `threshold` of the returned shares rebuild it.

    xs are the holders' participant ids (distinct, 1 <= x < p); 2 <= threshold
    <= len(xs). Returns {x: SHARE_BYTES blob}.
    """
    return split_many([secret], threshold, xs)[0]


def _prod_mod_rows(a: np.ndarray) -> np.ndarray:
    """Product mod p of each row of a (uint64, values < p), by pairwise halving."""
    while a.shape[1] > 1:
        if a.shape[1] % 2:
            a = np.concatenate([a, np.ones((a.shape[0], 1), dtype=np.uint64)], axis=1)
        half = a.shape[1] // 2
        a = np.multiply(a[:, :half], a[:, half:]) % _P
    return a[:, 0]


@functools.lru_cache(maxsize=256)
def lagrange_at_zero(xs: tuple[int, ...]) -> np.ndarray:
    """Lagrange coefficients at 0 for the points xs (read-only uint64 array, cached).

    lambda_i = prod_{j != i} x_j / (x_j - x_i) mod p, so f(0) = sum lambda_i f(x_i)
    for every polynomial f of degree < len(xs).
    """
    t = len(xs)
    x = np.array(xs, dtype=np.uint64)
    numer = np.broadcast_to(x, (t, t)).copy()  # numer[i, j] = x_j
    denom = (x[None, :] + _P - x[:, None]) % _P  # denom[i, j] = x_j - x_i
    np.fill_diagonal(numer, 1)
    np.fill_diagonal(denom, 1)
    num = _prod_mod_rows(numer)
    den = _prod_mod_rows(denom)
    inv = np.array([pow(int(d), PRIME - 2, PRIME) for d in den], dtype=np.uint64)
    lam = np.multiply(num, inv) % _P
    lam.setflags(write=False)
    return lam


def _parse_shares(
    share_sets: Sequence[Mapping[int, bytes]], threshold: int
) -> list[tuple[tuple[int, ...], list[bytes]]]:
    """For each set: (the `threshold` smallest xs, their blobs), after format checks."""
    parsed = []
    for shares in share_sets:
        if not isinstance(shares, Mapping):
            raise CryptoError("shares must be a mapping {x: share}")
        if len(shares) < threshold:
            raise CryptoError(f"not enough shares: {len(shares)} < threshold {threshold}")
        for x, blob in shares.items():
            if not isinstance(x, int) or isinstance(x, bool) or not 1 <= x < PRIME:
                raise CryptoError("malformed share: x out of range")
            if not isinstance(blob, bytes | bytearray) or len(blob) != SHARE_BYTES:
                raise CryptoError(f"malformed share from {x}: expected {SHARE_BYTES} bytes")
        chosen = tuple(sorted(int(x) for x in shares)[:threshold])
        parsed.append((chosen, [bytes(shares[x]) for x in chosen]))
    return parsed


# A responder set that is a common base minus at most this many holders gets
# its coefficients derived from the base's in O(t) per removed holder instead
# of O(t^2) from scratch. On the full graph each owner's t smallest holders are
# the first t + 1 responders minus the owner itself: up to t + 1 distinct sets,
# which computed one by one cost ~1 s at t = 263 (n = 500).
_MAX_DERIVED_REMOVALS = 4


def _coefficients(sets: Sequence[tuple[int, ...]]) -> dict[tuple[int, ...], np.ndarray]:
    """Lagrange coefficients at 0 for each responder set (all of the same size)."""
    base = tuple(sorted(set().union(*sets))) if len(sets) > 2 else ()
    if not base or len(base) - len(sets[0]) > _MAX_DERIVED_REMOVALS:
        return {xs: lagrange_at_zero(xs) for xs in sets}
    lam_base = lagrange_at_zero(base)
    position = {x: i for i, x in enumerate(base)}
    out: dict[tuple[int, ...], np.ndarray] = {}
    for xs in sets:
        chosen = np.array([position[x] for x in xs])
        lam = lam_base[chosen].copy()
        x = np.array(xs, dtype=np.uint64)
        for e in set(base).difference(xs):
            # lambda_i over base \ {e} = lambda_i over base * (x_e - x_i) / x_e
            factor = (np.uint64(e) + _P - x) % _P  # < p
            factor = factor * np.uint64(pow(e, PRIME - 2, PRIME)) % _P  # < p^2 < 2^63
            lam = lam * factor % _P
        out[xs] = lam
    return out


def _combine_group(xs: tuple[int, ...], lam: np.ndarray, blobs: list[list[bytes]]) -> list[bytes]:
    """Rebuild several secrets whose chosen shares have the same xs (coefficients lam)."""
    count, t = len(blobs), len(xs)
    y = np.frombuffer(b"".join(b for row in blobs for b in row), dtype="<u4")
    y = y.reshape(count, t, LIMBS).astype(np.uint64)
    if np.any(y >= _P):
        raise CryptoError("malformed share: limb value >= p")
    np.multiply(y, lam[None, :, None], out=y)  # < p^2 < 2^63
    np.remainder(y, _P, out=y)
    limbs = y.sum(axis=1) % _P  # t * p < 2^64
    y[:] = 0
    if np.any(limbs >= _LIMB_LIMITS[None, :]):
        limbs[:] = 0
        raise CryptoError("inconsistent shares: rebuilt value does not fit 256 bits")
    out = [_limbs_to_secret(limbs[i]) for i in range(count)]
    limbs[:] = 0
    return out


def combine_many(share_sets: Sequence[Mapping[int, bytes]], threshold: int) -> list[bytes]:
    """Rebuild many secrets; vectorised across secrets with the same responder set."""
    threshold = _check_threshold(threshold)
    parsed = _parse_shares(share_sets, threshold)
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, (xs, _) in enumerate(parsed):
        groups.setdefault(xs, []).append(index)
    out: list[bytes] = [b""] * len(parsed)
    coefficients = _coefficients(list(groups))
    for xs, indices in groups.items():
        secrets = _combine_group(xs, coefficients[xs], [parsed[i][1] for i in indices])
        for i, secret in zip(indices, secrets, strict=True):
            out[i] = secret
    return out


def combine(shares: Mapping[int, bytes], threshold: int) -> bytes:
    """Rebuild a 32-byte secret from `threshold` shares {x: blob}.

    With more shares than `threshold`, the `threshold` smallest xs are used (the
    caller has checked every share against its commitment). Fewer shares,
    malformed shares or a result that does not fit 256 bits raise CryptoError.
    """
    return combine_many([shares], threshold)[0]
