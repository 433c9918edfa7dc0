"""The one source of randomness for noise, rounding and signs: an AES-256-CTR keystream.

Production code constructs `CsprngSource()` (key from `os.urandom`); tests may pass an
explicit `key=` to make a run reproducible. There is deliberately no seed knob elsewhere.
"""

from __future__ import annotations

import os

import numpy as np
from Crypto.Cipher import AES

from dp.errors import DpParameterError

# Uniform integers are produced in int64 lanes for bounds up to 2^62 (so that callers
# can add/multiply small values without overflow); larger bounds give Python ints.
MAX_LANE_BOUND = 1 << 62
_CHUNK_WORDS = 1 << 20  # keystream is produced into buffers of at most 8 MiB
_WIDTHS = ((np.uint8, 8), (np.uint16, 16), (np.uint32, 32), (np.uint64, 62))


class CsprngSource:
    """AES-CTR keystream read into numpy buffers.

    The key is never stored on the object (only inside the cipher state) and never
    appears in `repr`. Each source has a fresh key, so the nonce can be fixed.
    """

    __slots__ = ("_cipher", "_zeros")

    def __init__(self, *, key: bytes | None = None) -> None:
        if key is None:
            key = os.urandom(32)
        elif len(key) not in (16, 24, 32):
            raise DpParameterError("key must be 16, 24 or 32 bytes")
        self._cipher = AES.new(bytes(key), AES.MODE_CTR, nonce=b"", initial_value=0)
        self._zeros = bytes(8 * _CHUNK_WORDS)

    def __repr__(self) -> str:
        return "CsprngSource(<AES-CTR, key hidden>)"

    # -- raw keystream --------------------------------------------------------------
    def words(self, count: int) -> np.ndarray:
        """`count` independent uniform uint64 words."""
        out = np.empty(count, dtype=np.uint64)
        view = memoryview(out).cast("B")
        step = 8 * _CHUNK_WORDS
        for start in range(0, 8 * count, step):
            stop = min(start + step, 8 * count)
            self._cipher.encrypt(self._zeros[: stop - start], output=view[start:stop])
        return out

    def random_bytes(self, count: int) -> bytes:
        out = bytearray(count)
        for start in range(0, count, len(self._zeros)):
            stop = min(start + len(self._zeros), count)
            out[start:stop] = self._cipher.encrypt(self._zeros[: stop - start])
        return bytes(out)

    def bits(self, count: int) -> np.ndarray:
        """`count` uniform bits as a uint8 array of 0/1."""
        raw = np.frombuffer(self.random_bytes((count + 7) // 8), dtype=np.uint8)
        return np.unpackbits(raw, count=count)

    # -- uniform integers -------------------------------------------------------------
    def uniform_below(self, bound: int, size: int) -> np.ndarray:
        """`size` integers uniform in [0, bound), without modulo bias.

        Rejection sampling on masked words: the mask is the smallest 2^L - 1 covering
        bound - 1, so each word is accepted with probability > 1/2. Returns the narrowest
        unsigned dtype holding bound - 1 (int64 above 32 bits) for bound <= 2^62, and an
        object array of Python ints above (exact, slower).
        """
        bound = int(bound)
        if bound < 1:
            raise DpParameterError("bound must be >= 1")
        if size == 0:
            return np.zeros(0, dtype=np.int64 if bound <= MAX_LANE_BOUND else object)
        if bound == 1:
            return np.zeros(size, dtype=np.int64)
        if bound > MAX_LANE_BOUND:
            return self._uniform_below_big(bound, size)
        nbits = (bound - 1).bit_length()
        # Narrowest word that holds the mask: fewer keystream bytes and faster numpy ops.
        wtype = next(t for t, w in _WIDTHS if nbits <= w)
        lane = np.int64 if wtype is np.uint64 else wtype  # masked 64-bit words are < 2^62
        mask = lane((1 << nbits) - 1)
        if bound == 1 << nbits:  # power of two: no rejection at all
            return self._typed_words(wtype, size) & mask
        accept = bound / (1 << nbits)
        parts: list[np.ndarray] = []
        missing = size
        while missing:
            # Draw a little more than the expected need so one pass almost always suffices.
            draw = int(missing / accept + 4.0 * (missing / accept) ** 0.5 + 16)
            cand = self._typed_words(wtype, draw)
            cand &= mask
            cand = cand[cand < lane(bound)][:missing]
            parts.append(cand)
            missing -= cand.size
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _typed_words(self, wtype: type, count: int) -> np.ndarray:
        """Uniform words of an unsigned width; 64-bit ones come back as int64 (after the
        caller's mask they are < 2^62) so comparisons with int64 never go through float."""
        nbytes = np.dtype(wtype).itemsize
        raw = self.words((count * nbytes + 7) // 8).view(wtype)[:count]
        return raw.view(np.int64) if wtype is np.uint64 else raw

    def _uniform_below_big(self, bound: int, size: int) -> np.ndarray:
        nbits = (bound - 1).bit_length()
        nwords = (nbits + 63) // 64
        mask = (1 << nbits) - 1
        out = np.empty(size, dtype=object)
        filled = 0
        while filled < size:
            need = size - filled
            draw = 2 * need + 16
            w = self.words(draw * nwords).reshape(draw, nwords).astype(object)
            val = w[:, 0]
            for j in range(1, nwords):  # loop over 64-bit limbs, not over samples
                val = val + (w[:, j] << (64 * j))
            val = val & mask
            val = val[val < bound][:need]
            out[filled : filled + val.size] = val
            filled += val.size
        return out
