"""Randomized Hadamard rotation x -> (1/sqrt(d')) H D x, with public per-round signs.

The signs need not be secret, only shared by every participant of a round and fresh
each round, so they come from an AES-CTR stream keyed by a hash of the round seed.
"""

from __future__ import annotations

import hashlib

import numpy as np

from dp.csprng import CsprngSource
from dp.errors import DpParameterError

_SIGN_DOMAIN = b"blindsum/dp/rotation-signs/v1\x00"


def padded_dim(dim: int) -> int:
    """d' = 2^ceil(log2 d): the dimension every bound and the rotation use."""
    if int(dim) != dim or dim < 1:
        raise DpParameterError(f"dim must be an integer >= 1, got {dim!r}")
    return 1 << (int(dim) - 1).bit_length()


def rotation_signs(round_seed: bytes, padded: int) -> np.ndarray:
    """±1.0 diagonal of D, drawn from bits of the seed's keystream (never float signs)."""
    if not isinstance(round_seed, bytes | bytearray) or len(round_seed) < 16:
        raise DpParameterError("round_seed must be at least 16 bytes")
    key = hashlib.sha256(_SIGN_DOMAIN + bytes(round_seed)).digest()
    bits = CsprngSource(key=key).bits(padded)
    return 1.0 - 2.0 * bits.astype(np.float64)


def fwht(x: np.ndarray) -> np.ndarray:
    """Unnormalised fast Walsh-Hadamard transform along the last axis (length 2^k).

    log2(d') stages; each stage is two whole-array numpy operations on a
    (blocks, 2, half) view, so no Python loop touches coordinates.
    """
    n = x.shape[-1]
    if n & (n - 1):
        raise DpParameterError("fwht length must be a power of two")
    y = np.array(x, dtype=np.float64, copy=True)
    tmp = np.empty(n // 2, dtype=np.float64)
    h = 1
    while h < n:
        v = y.reshape(-1, 2, h)
        a, b = v[:, 0, :], v[:, 1, :]
        t = tmp.reshape(-1, h)
        np.subtract(a, b, out=t)
        a += b
        b[...] = t
        h *= 2
    return y


def rotate(x: np.ndarray, round_seed: bytes) -> np.ndarray:
    """Pad x (1-D) to d' with zeros and apply (1/sqrt(d')) H D."""
    x = np.asarray(x, dtype=np.float64).ravel()
    dp_ = padded_dim(x.size)
    y = np.zeros(dp_, dtype=np.float64)
    y[: x.size] = x
    y *= rotation_signs(round_seed, dp_)
    y = fwht(y)
    y *= 1.0 / np.sqrt(dp_)
    return y


def unrotate(y: np.ndarray, round_seed: bytes, dim: int | None = None) -> np.ndarray:
    """Exact inverse of `rotate` (H/sqrt(d') is an involution): D (1/sqrt(d')) H y,
    truncated to `dim` if given."""
    y = np.asarray(y, dtype=np.float64).ravel()
    dp_ = y.size
    if dp_ & (dp_ - 1):
        raise DpParameterError("rotated vector length must be a power of two")
    x = fwht(y)
    x *= rotation_signs(round_seed, dp_) / np.sqrt(dp_)
    return x if dim is None else x[:dim]
