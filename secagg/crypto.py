"""Every cryptographic operation secagg uses, behind named, context-bound calls.

This is the only module of the project that touches cipher objects
(pycryptodome). Everything else calls the named operations below, whose inputs
carry the context they are bound to (session, stage, sender, recipient, owners,
vector name), so a key or a ciphertext cannot be used out of its context.

Primitives
----------
- hashing: SHA-256 over an unambiguous encoding (`digest`, `commit`,
  `session_id`);
- key agreement: X25519 (`AgreementKey`, `agree`), low-order and non-canonical
  public keys refused, the raw DH output only ever fed to HKDF-SHA256;
- share channel: AES-256-GCM with a random 12-byte nonce, associated data
  binding (session, stage, sender, recipient) (`seal`, `open_`);
- masks: AES-128-CTR keystream, one fresh HKDF-derived key per
  (seed, session, owners, vector, length, bits, dtype), written into reused
  chunk buffers and added in place (`MaskGenerator`);
- signatures: Ed25519 (RFC 8032) (`SigningKey`, `verify_signature`).

Secrets never appear in reprs or exception texts. Objects holding secrets have
an `erase()` (best effort in Python: bytearrays are overwritten, references
dropped; copies inside pycryptodome objects or immutable `bytes` cannot be
wiped).

Randomness comes only from `os.urandom` (or AES-CTR keyed from it).

Thread safety: the functions are thread-safe. One `MaskGenerator` must be used
by one thread at a time (it owns scratch buffers); the AES-CTR and numpy calls
in `MaskGenerator.add` release the GIL (pycryptodome calls its C code through
cffi, which releases the GIL), so several generators in several threads run in
parallel.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import struct
import time
from collections.abc import Iterable, Sequence

import numpy as np
from Crypto.Cipher import AES
from Crypto.Protocol import DH
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from secagg.errors import ConfigurationError, CryptoError

__all__ = [
    "CHANNEL_PURPOSE",
    "PAIR_MASK_PURPOSE",
    "AgreementKey",
    "Committer",
    "MaskGenerator",
    "SigningKey",
    "agree",
    "agree_many",
    "commit",
    "digest",
    "hkdf_sha256",
    "mask_dtype",
    "measure_keystream_rate",
    "open_",
    "random_bytes",
    "reduce_mod",
    "seal",
    "session_id",
    "verify_signature",
]

# ---------------------------------------------------------------------------
# Labels (domain separation). Changing any of them changes every derived value.

CHANNEL_PURPOSE = b"blindsum/secagg/v1/channel"
PAIR_MASK_PURPOSE = b"blindsum/secagg/v1/pair-mask"

_AGREE_LABEL = b"blindsum/secagg/v1/agree"
_SEAL_AD_LABEL = b"blindsum/secagg/v1/share-ad"
_MASK_LABEL = b"blindsum/secagg/v1/mask"
_SESSION_LABEL = b"blindsum/secagg/v1/session"
_COMMIT_LABEL = b"blindsum/secagg/v1/commit"

_X25519_BYTES = 32
_ED25519_BYTES = 32
_SIGNATURE_BYTES = 64
_NONCE_BYTES = 12
_TAG_BYTES = 16
_CHANNEL_KEY_BYTES = 32
_MASK_KEY_BYTES = 16  # AES-128-CTR for masks
_SEED_BYTES = 32  # mask seeds: b_u and the agreed pair seeds
_ID_LIMIT = 1 << 32  # participant ids, stages: 0 <= value < 2^32

_AUTH_FAILED = "share ciphertext failed authentication"

# Curve25519 field prime and the canonical encodings of the points of small
# order (order 1, 2, 4, 8) that survive the canonical-encoding check below.
_P25519 = (1 << 255) - 19
_X25519_SMALL_ORDER = frozenset(
    {
        0,
        1,
        _P25519 - 1,
        int.from_bytes(
            bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            "little",
        ),
        int.from_bytes(
            bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
            "little",
        ),
    }
)


# ---------------------------------------------------------------------------
# Randomness, encoding, hashing, HKDF


def random_bytes(n: int) -> bytes:
    """n bytes from the OS CSPRNG."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ConfigurationError("random_bytes: n must be a non-negative int")
    return os.urandom(n)


_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _encode_part(part: bytes | bytearray | memoryview | int | str) -> bytes:
    """Self-delimiting encoding of one part: a type tag, then the value.

    bytes: b"B" + 8-byte length + data; str: b"S" + 8-byte length + UTF-8;
    int in int64: b"i" + 8-byte signed big-endian; other ints: b"J" + 8-byte
    length + signed big-endian. Distinct tags keep the encoding injective.
    """
    if isinstance(part, bytes | bytearray | memoryview):
        data = bytes(part)
        return b"B" + len(data).to_bytes(8, "big") + data
    if isinstance(part, str):
        data = part.encode("utf-8")
        return b"S" + len(data).to_bytes(8, "big") + data
    if isinstance(part, int | np.integer):
        value = int(part)
        if _INT64_MIN <= value <= _INT64_MAX:
            return b"i" + value.to_bytes(8, "big", signed=True)
        data = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
        return b"J" + len(data).to_bytes(8, "big") + data
    raise TypeError(f"cannot encode a part of type {type(part).__name__}")


def _encode(*parts: bytes | bytearray | memoryview | int | str) -> bytes:
    # The two common cases are inlined (same bytes as _encode_part): hashing the
    # signed ShareKeys payload and the per-share commitments encodes ~10^6 parts
    # per round at n = 500, where a function call per part dominated.
    out: list[bytes] = []
    append = out.append
    for part in parts:
        kind = type(part)
        if kind is bytes:
            append(b"B")
            append(len(part).to_bytes(8, "big"))
            append(part)
        elif kind is int and _INT64_MIN <= part <= _INT64_MAX:
            append(b"i")
            append(part.to_bytes(8, "big", signed=True))
        else:
            append(_encode_part(part))
    return b"".join(out)


def digest(*parts: bytes | int | str) -> bytes:
    """SHA-256 over the unambiguous encoding of `parts` (type tag + length for each)."""
    return hashlib.sha256(_encode(*parts)).digest()


def hkdf_sha256(master: bytes | bytearray, length: int, *, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869), extract then expand, `length` <= 8160 bytes."""
    if not 0 < length <= 255 * 32:
        raise ConfigurationError("hkdf_sha256: length must be in 1..8160")
    prk = hmac.digest(salt if salt else bytes(32), bytes(master), "sha256")
    out = bytearray()
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return bytes(out[:length])


def _check_id(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _ID_LIMIT:
        raise ConfigurationError(f"{name} must be an int in [0, 2^32)")
    return value


def _check_bytes(name: str, value: object, *, length: int | None = None) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ConfigurationError(f"{name} must be bytes")
    value = bytes(value)
    if length is not None and len(value) != length:
        raise ConfigurationError(f"{name} must be {length} bytes, got {len(value)}")
    return value


def _check_session(session: object) -> bytes:
    session = _check_bytes("session", session)
    if not session:
        raise ConfigurationError("session must be non-empty bytes")
    return session


# ---------------------------------------------------------------------------
# X25519 key agreement


class AgreementKey:
    """An X25519 key pair for one aggregation session (never reuse across sessions)."""

    __slots__ = ("_key", "_public", "_secret")

    def __init__(self, secret: bytes | bytearray) -> None:
        if not isinstance(secret, bytes | bytearray | memoryview) or len(secret) != _X25519_BYTES:
            raise CryptoError("X25519 private key must be 32 bytes")
        self._secret: bytearray | None = bytearray(secret)
        self._key = ECC.construct(curve="Curve25519", seed=bytes(self._secret))
        self._public = self._key.public_key().export_key(format="raw")

    @classmethod
    def generate(cls) -> AgreementKey:
        """A fresh key pair from the OS CSPRNG."""
        return cls(os.urandom(_X25519_BYTES))

    @classmethod
    def from_secret(cls, secret: bytes) -> AgreementKey:
        """Rebuild a key pair from its 32-byte private seed (as given by `secret_bytes`)."""
        return cls(secret)

    @property
    def public(self) -> bytes:
        """The 32-byte raw (RFC 7748) public key."""
        return self._public

    def secret_bytes(self) -> bytes:
        """The 32-byte private seed. Only for Shamir-sharing it; never log or send it."""
        if self._secret is None:
            raise CryptoError("agreement key was erased")
        return bytes(self._secret)

    def _private(self) -> ECC.EccKey:
        if self._key is None:
            raise CryptoError("agreement key was erased")
        return self._key

    @property
    def erased(self) -> bool:
        return self._key is None

    def erase(self) -> None:
        """Overwrite the private seed we hold and drop the key object."""
        if self._secret is not None:
            self._secret[:] = bytes(len(self._secret))
        self._secret = None
        self._key = None

    def __repr__(self) -> str:
        state = "erased" if self._key is None else "secret=<hidden>"
        return f"AgreementKey(public={self._public.hex()[:16]}..., {state})"

    __str__ = __repr__

    def __reduce__(self):  # no pickling of secrets by accident
        raise TypeError("AgreementKey cannot be pickled")


def _import_x25519_public(peer_public: object) -> ECC.EccKey:
    if not isinstance(peer_public, bytes | bytearray | memoryview):
        raise CryptoError("invalid X25519 public key (not bytes)")
    return _import_x25519_raw(bytes(peer_public))


@functools.lru_cache(maxsize=4096)
def _import_x25519_raw(raw: bytes) -> ECC.EccKey:
    # Cached (public keys only; failures are not cached): the aggregator agrees
    # each survivor's key with every dropped participant's rebuilt key.
    if len(raw) != _X25519_BYTES:
        raise CryptoError(f"invalid X25519 public key (length {len(raw)}, expected 32)")
    if raw[31] & 0x80:
        raise CryptoError("invalid X25519 public key (non-canonical: top bit set)")
    x = int.from_bytes(raw, "little")
    if x >= _P25519:
        raise CryptoError("invalid X25519 public key (non-canonical: not reduced)")
    if x in _X25519_SMALL_ORDER:
        raise CryptoError("invalid X25519 public key (low order)")
    try:
        return DH.import_x25519_public_key(raw)
    except (ValueError, TypeError):
        raise CryptoError("invalid X25519 public key") from None


def agree(
    own: AgreementKey,
    peer_public: bytes,
    *,
    session: bytes,
    purpose: bytes,
    a: int,
    b: int,
) -> bytes:
    """32 bytes shared by participants a and b: HKDF-SHA256 of their X25519 secret.

    salt = session, info = encoding of (label, purpose, min(a, b), max(a, b)), so
    both ends derive the same key. The raw DH output is never returned. Refuses
    malformed, non-canonical and low-order public keys and an all-zero shared
    secret (CryptoError).
    """
    _check_id("a", a)
    return agree_many(own, [(b, peer_public)], own_id=a, session=session, purpose=purpose)[0]


def agree_many(
    own: AgreementKey,
    peers: Sequence[tuple[int, bytes]],
    *,
    own_id: int,
    session: bytes,
    purpose: bytes,
) -> list[bytes]:
    """`agree(own, public, a=own_id, b=peer_id)` for each (peer_id, public) in order.

    The aggregator rebuilding a dropped participant's pair seeds agrees one key
    with hundreds of survivors' keys: the argument checks happen once.
    """
    if not isinstance(own, AgreementKey):
        raise ConfigurationError("own must be an AgreementKey")
    session = _check_session(session)
    purpose = _check_bytes("purpose", purpose)
    if not purpose:
        raise ConfigurationError("purpose must be non-empty bytes")
    _check_id("own_id", own_id)
    private = own._private()
    out = []
    for peer_id, peer_public in peers:
        _check_id("b", peer_id)
        if peer_id == own_id:
            raise ConfigurationError("agree: a and b must be different participants")
        peer = _import_x25519_public(peer_public)
        info = _encode(_AGREE_LABEL, purpose, min(own_id, peer_id), max(own_id, peer_id))

        def kdf(shared: bytes | bytearray, info: bytes = info) -> bytes:
            try:
                if not any(shared):
                    raise CryptoError("X25519 shared secret is all zero (low-order public key)")
                return hkdf_sha256(shared, 32, salt=session, info=info)
            finally:
                if isinstance(shared, bytearray):
                    shared[:] = bytes(len(shared))

        try:
            out.append(DH.key_agreement(static_priv=private, static_pub=peer, kdf=kdf))
        except CryptoError:
            raise
        except (ValueError, TypeError):
            raise CryptoError("X25519 key agreement failed (invalid public key)") from None
    return out


# ---------------------------------------------------------------------------
# Share channel: AES-256-GCM


def _channel_ad(
    session: bytes, stage: int, sender: int, recipient: int, associated: bytes
) -> bytes:
    return _encode(_SEAL_AD_LABEL, session, stage, sender, recipient, associated)


def _check_channel_args(
    key: object,
    session: object,
    stage: object,
    sender: object,
    recipient: object,
    associated: object,
) -> tuple[bytes, bytes, bytes]:
    if not isinstance(key, bytes | bytearray | memoryview) or len(key) != _CHANNEL_KEY_BYTES:
        raise ConfigurationError("channel key must be 32 bytes")
    session_b = _check_session(session)
    _check_id("stage", stage)
    _check_id("sender", sender)
    _check_id("recipient", recipient)
    associated_b = _check_bytes("associated", associated)
    return bytes(key), session_b, associated_b


def seal(
    key: bytes,
    plaintext: bytes,
    *,
    session: bytes,
    stage: int,
    sender: int,
    recipient: int,
    associated: bytes = b"",
) -> bytes:
    """AES-256-GCM: nonce (12) ‖ ciphertext ‖ tag (16), AD = (session, stage, sender, recipient, associated)."""
    key_b, session_b, associated_b = _check_channel_args(
        key, session, stage, sender, recipient, associated
    )
    plaintext_b = _check_bytes("plaintext", plaintext)
    nonce = os.urandom(_NONCE_BYTES)
    cipher = AES.new(key_b, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(_channel_ad(session_b, stage, sender, recipient, associated_b))
    ciphertext, tag = cipher.encrypt_and_digest(plaintext_b)
    return nonce + ciphertext + tag


def open_(
    key: bytes,
    blob: bytes,
    *,
    session: bytes,
    stage: int,
    sender: int,
    recipient: int,
    associated: bytes = b"",
) -> bytes:
    """Inverse of `seal`. Any failure (short blob, bad tag, other AD) -> CryptoError."""
    key_b, session_b, associated_b = _check_channel_args(
        key, session, stage, sender, recipient, associated
    )
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise CryptoError(_AUTH_FAILED)
    blob_b = bytes(blob)
    if len(blob_b) < _NONCE_BYTES + _TAG_BYTES:
        raise CryptoError(_AUTH_FAILED)
    nonce = blob_b[:_NONCE_BYTES]
    ciphertext = blob_b[_NONCE_BYTES:-_TAG_BYTES]
    tag = blob_b[-_TAG_BYTES:]
    try:
        cipher = AES.new(key_b, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
        cipher.update(_channel_ad(session_b, stage, sender, recipient, associated_b))
        return cipher.decrypt_and_verify(ciphertext, tag)
    except (ValueError, TypeError, KeyError):
        raise CryptoError(_AUTH_FAILED) from None


# ---------------------------------------------------------------------------
# Masks


def mask_dtype(bits: int) -> np.dtype:
    """uint32 for 1 <= bits <= 32, uint64 for 33 <= bits <= 62."""
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise ConfigurationError("bits must be an int in 1..62")
    if 1 <= bits <= 32:
        return np.dtype(np.uint32)
    if 33 <= bits <= 62:
        return np.dtype(np.uint64)
    raise ConfigurationError(f"bits must be in 1..62, got {bits}")


def _check_acc(acc: object, bits: int) -> np.ndarray:
    dtype = mask_dtype(bits)
    if not isinstance(acc, np.ndarray):
        raise ConfigurationError("acc must be a numpy array")
    if acc.ndim != 1:
        raise ConfigurationError(f"acc must be 1-D, got {acc.ndim}-D")
    if acc.dtype != dtype:
        raise ConfigurationError(f"acc dtype must be {dtype} for bits={bits}, got {acc.dtype}")
    if not acc.flags.c_contiguous:
        raise ConfigurationError("acc must be C-contiguous")
    if not acc.flags.writeable:
        raise ConfigurationError("acc must be writeable")
    return acc


def reduce_mod(acc: np.ndarray, bits: int) -> None:
    """In place: acc &= 2^bits - 1 (nothing to do for bits == 32)."""
    acc = _check_acc(acc, bits)
    if bits in (32, 64):
        return
    np.bitwise_and(acc, acc.dtype.type((1 << bits) - 1), out=acc)


class MaskGenerator:
    """Adds AES-CTR mask keystreams into numpy accumulators, in place.

    Owns reused scratch buffers (keystream chunk and a zero plaintext), so
    repeated calls allocate nothing of size d. Use one instance per thread.
    """

    def __init__(self, chunk_bytes: int = 1 << 20) -> None:
        if (
            not isinstance(chunk_bytes, int)
            or isinstance(chunk_bytes, bool)
            or chunk_bytes < 64
            or chunk_bytes % 64
        ):
            raise ConfigurationError("chunk_bytes must be a positive multiple of 64")
        self._chunk_bytes = chunk_bytes
        self._buf = bytearray(chunk_bytes)
        self._buf_mv = memoryview(self._buf)
        self._views = {
            np.dtype(np.uint32): np.frombuffer(self._buf, dtype="<u4"),
            np.dtype(np.uint64): np.frombuffer(self._buf, dtype="<u8"),
        }

    @property
    def chunk_bytes(self) -> int:
        return self._chunk_bytes

    def _cipher(
        self,
        seed: object,
        session: bytes,
        owners: object,
        vector: str,
        length: int,
        bits: int,
        dtype: np.dtype,
    ):
        seed_b = _check_bytes("seed", seed, length=_SEED_BYTES)
        if not isinstance(owners, tuple) or not 1 <= len(owners) <= 2:
            raise ConfigurationError("owners must be a tuple of one or two participant ids")
        for owner in owners:
            _check_id("owner", owner)
        if len(set(owners)) != len(owners):
            raise ConfigurationError("owners must be distinct")
        ordered = tuple(sorted(owners))  # a pair's mask does not depend on who asks
        info = _encode(_MASK_LABEL, len(ordered), *ordered, vector, length, bits, dtype.str)
        key = hkdf_sha256(seed_b, _MASK_KEY_BYTES, salt=session, info=info)
        # AES-CTR with a zero nonce and a full 128-bit counter (every key is used
        # once), computed as ECB over the counter blocks: see _counter_blocks.
        return AES.new(key, AES.MODE_ECB)

    def add(
        self,
        acc: np.ndarray,
        seed: bytes,
        *,
        session: bytes,
        owners: tuple[int, ...],
        vector: str,
        bits: int,
        subtract: bool = False,
    ) -> None:
        """acc += (or -=) the mask keystream, wrapping mod 2^32 / 2^64, in place.

        The key is HKDF-SHA256(seed, salt=session, info=(label, owners, vector,
        len(acc), bits, dtype)); `owners` is (u,) for a self mask or the pair
        (u, v) in any order. Call `reduce_mod(acc, bits)` once at the end: the
        mask is the keystream mod 2^bits, uniform because 2^bits divides 2^32/2^64.
        """
        self.add_many(acc, [(seed, owners, subtract)], session=session, vector=vector, bits=bits)

    def add_many(
        self,
        acc: np.ndarray,
        masks: Iterable[tuple[bytes, tuple[int, ...], bool]],
        *,
        session: bytes,
        vector: str,
        bits: int,
    ) -> None:
        """`add(acc, seed, owners=owners, subtract=subtract, ...)` for each
        (seed, owners, subtract) in `masks`, with the argument checks done once and
        the scratch buffer wiped once at the end (the aggregator removes ~10^5
        masks per round at n = 500)."""
        acc = _check_acc(acc, bits)
        session_b = _check_session(session)
        if not isinstance(vector, str) or not vector:
            raise ConfigurationError("vector must be a non-empty str")
        length = acc.shape[0]
        view = self._views[acc.dtype]
        itemsize = acc.dtype.itemsize
        per_chunk = self._chunk_bytes // itemsize
        buf_mv = self._buf_mv
        used = 0
        try:
            for seed, owners, subtract in masks:
                cipher = self._cipher(seed, session_b, owners, vector, length, bits, acc.dtype)
                op = np.subtract if subtract else np.add
                encrypt = cipher.encrypt
                for start in range(0, length, per_chunk):
                    n = min(per_chunk, length - start)
                    nbytes = -(-n * itemsize // 16) * 16  # whole blocks; the tail is unused
                    counters = _counter_blocks(start * itemsize // 16, nbytes)
                    used = max(used, nbytes)  # before the keystream lands: always wiped
                    encrypt(counters, output=buf_mv[:nbytes])
                    src = view if n == per_chunk else view[:n]
                    segment = acc[start : start + n]
                    op(segment, src, out=segment)
        finally:
            # The keystream is the mask: do not leave it in the scratch buffer.
            self._views[np.dtype(np.uint64)][: (used + 7) // 8] = 0

    def expand(
        self,
        seed: bytes,
        *,
        session: bytes,
        owners: tuple[int, ...],
        vector: str,
        length: int,
        bits: int,
    ) -> np.ndarray:
        """The mask itself (keystream mod 2^bits) as a new array of `length` elements."""
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise ConfigurationError("length must be a non-negative int")
        out = np.zeros(length, dtype=mask_dtype(bits))
        self.add(out, seed, session=session, owners=owners, vector=vector, bits=bits)
        reduce_mod(out, bits)
        return out

    def erase(self) -> None:
        """Zero the scratch buffer (it is zeroed after every call anyway)."""
        self._views[np.dtype(np.uint64)][:] = 0

    def __repr__(self) -> str:
        return f"MaskGenerator(chunk_bytes={self._chunk_bytes})"


# Counter blocks 0, 1, 2, ... as 16-byte big-endian integers. AES-ECB over them
# is exactly the AES-CTR keystream (nonce b"", initial value 0), without the
# counter arithmetic and the XOR with a zero plaintext that pycryptodome's CTR
# mode does: 1.7x faster for a 400 KB mask. They are public constants, cached
# up to _COUNTER_CACHE_BYTES (longer masks build theirs chunk by chunk).
_COUNTER_CACHE_BYTES = 16 << 20
_counter_cache = b""


def _make_counter_blocks(first: int, count: int) -> bytes:
    blocks = np.zeros((count, 2), dtype=">u8")
    blocks[:, 1] = np.arange(first, first + count, dtype=np.uint64)
    return blocks.tobytes()


def _counter_blocks(first: int, nbytes: int) -> bytes | memoryview:
    """Counter blocks first, first + 1, ... covering nbytes (a multiple of 16)."""
    global _counter_cache
    end = first * 16 + nbytes
    cache = _counter_cache  # read once: another thread may publish a new cache meanwhile
    if len(cache) < end <= _COUNTER_CACHE_BYTES:
        size = min(_COUNTER_CACHE_BYTES, max(end, 2 * len(cache)))  # grow geometrically
        cache = _make_counter_blocks(0, size // 16)
        if len(cache) > len(_counter_cache):
            _counter_cache = cache
    if end <= len(cache):
        return memoryview(cache)[first * 16 : end]
    return _make_counter_blocks(first, nbytes // 16)


def measure_keystream_rate(total_bytes: int = 256 << 20, chunk_bytes: int = 1 << 20) -> float:
    """Raw AES-128-CTR keystream rate in bytes/s into a reused buffer (best of 3),
    computed the way masks are (AES over cached counter blocks).

    For benchmarks, to compare `MaskGenerator.add` with the cipher alone in the
    same process. The only place in secagg that reads a clock.
    """
    if chunk_bytes <= 0 or chunk_bytes % 16 or total_bytes < chunk_bytes:
        raise ConfigurationError("chunk_bytes must be a positive multiple of 16 <= total_bytes")
    buf = bytearray(chunk_bytes)
    counters = _counter_blocks(0, chunk_bytes)
    rounds = total_bytes // chunk_bytes
    best = 0.0
    for _ in range(3):
        cipher = AES.new(os.urandom(_MASK_KEY_BYTES), AES.MODE_ECB)
        start = time.perf_counter()
        for _ in range(rounds):
            cipher.encrypt(counters, output=buf)
        elapsed = time.perf_counter() - start
        best = max(best, rounds * chunk_bytes / max(elapsed, 1e-9))
    return best


# ---------------------------------------------------------------------------
# Ed25519 signatures


class SigningKey:
    """An Ed25519 (RFC 8032) signing key."""

    __slots__ = ("_key", "_public", "_seed", "_signer")

    def __init__(self, seed: bytes | bytearray) -> None:
        if not isinstance(seed, bytes | bytearray | memoryview) or len(seed) != _ED25519_BYTES:
            raise CryptoError("Ed25519 seed must be 32 bytes")
        self._seed: bytearray | None = bytearray(seed)
        self._key = ECC.construct(curve="Ed25519", seed=bytes(self._seed))
        self._public = self._key.public_key().export_key(format="raw")
        self._signer = eddsa.new(self._key, "rfc8032")

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(_ED25519_BYTES))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        return cls(seed)

    @property
    def public(self) -> bytes:
        """The 32-byte raw public key."""
        return self._public

    def seed_bytes(self) -> bytes:
        """The 32-byte private seed (for storing the long-term key; never log it)."""
        if self._seed is None:
            raise CryptoError("signing key was erased")
        return bytes(self._seed)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        if self._signer is None:
            raise CryptoError("signing key was erased")
        return self._signer.sign(_check_bytes("message", message))

    def erase(self) -> None:
        if self._seed is not None:
            self._seed[:] = bytes(len(self._seed))
        self._seed = None
        self._key = None
        self._signer = None

    def __repr__(self) -> str:
        state = "erased" if self._key is None else "seed=<hidden>"
        return f"SigningKey(public={self._public.hex()[:16]}..., {state})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("SigningKey cannot be pickled")


@functools.lru_cache(maxsize=4096)
def _ed25519_verifier(public: bytes):
    """A verifier for a raw public key, or None if it is malformed or of small order."""
    try:
        key = eddsa.import_public_key(public)
        if (key.pointQ * 8).is_point_at_infinity():
            return None
        return eddsa.new(key, "rfc8032")
    except (ValueError, TypeError):
        return None


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is a valid Ed25519 signature of `message` under `public`.

    False (never an exception) on any malformed input, including small-order keys.
    """
    try:
        if not isinstance(public, bytes | bytearray | memoryview):
            return False
        if not isinstance(signature, bytes | bytearray | memoryview):
            return False
        if not isinstance(message, bytes | bytearray | memoryview):
            return False
        public_b, signature_b = bytes(public), bytes(signature)
        if len(public_b) != _ED25519_BYTES or len(signature_b) != _SIGNATURE_BYTES:
            return False
        verifier = _ed25519_verifier(public_b)
        if verifier is None:
            return False
        verifier.verify(bytes(message), signature_b)
        return True
    except Exception:  # noqa: BLE001 - a verifier must never raise
        return False


# ---------------------------------------------------------------------------
# Session id and commitments


def session_id(config_digest: bytes, advertisements: Sequence[tuple[int, bytes, bytes]]) -> bytes:
    """SHA-256 over (label, config digest, [(id, c_pk, s_pk) sorted by id]).

    Every participant recomputes it (never trust one sent by the server); it is
    also the public seed of the SecAgg+ graph permutation. Duplicate ids or keys
    that are not 32 bytes raise ConfigurationError.
    """
    config_b = _check_bytes("config_digest", config_digest)
    rows: list[tuple[int, bytes, bytes]] = []
    for entry in advertisements:
        if not isinstance(entry, tuple | list) or len(entry) != 3:
            raise ConfigurationError("each advertisement must be (id, c_pk, s_pk)")
        uid, c_pk, s_pk = entry
        _check_id("advertisement id", uid)
        rows.append(
            (
                uid,
                _check_bytes("c_pk", c_pk, length=_X25519_BYTES),
                _check_bytes("s_pk", s_pk, length=_X25519_BYTES),
            )
        )
    rows.sort(key=lambda row: row[0])
    if any(rows[i][0] == rows[i + 1][0] for i in range(len(rows) - 1)):
        raise ConfigurationError("duplicate participant id in advertisements")
    parts: list[bytes | int] = [_SESSION_LABEL, config_b, len(rows)]
    for uid, c_pk, s_pk in rows:
        parts.extend((uid, c_pk, s_pk))
    return hashlib.sha256(_encode(*parts)).digest()


_COMMIT_TAIL = struct.Struct(">cqcqcQ")


class Committer:
    """SHA-256 commitments for one (purpose, session), bound to (owner, holder).

    commit(value) = SHA-256(encoding of (label, purpose, session, owner, holder,
    value)). The fixed prefix is encoded once, so checking the ~10^5 share
    commitments of a large round costs one hash each. Hiding only because the
    committed values (32-byte seeds, Shamir shares) have high entropy; there is no
    blinding nonce.
    """

    __slots__ = ("_prefix",)

    def __init__(self, *, purpose: bytes, session: bytes) -> None:
        purpose_b = _check_bytes("purpose", purpose)
        session_b = _check_session(session)
        self._prefix = _encode(_COMMIT_LABEL, purpose_b, session_b)

    def __call__(self, value: bytes, *, owner: int, holder: int = 0) -> bytes:
        _check_id("owner", owner)
        _check_id("holder", holder)
        if type(value) is not bytes:
            value = _check_bytes("value", value)
        # = _encode(owner, holder, value): two tagged int64s, then tagged length + bytes
        tail = _COMMIT_TAIL.pack(b"i", owner, b"i", holder, b"B", len(value))
        return hashlib.sha256(self._prefix + tail + value).digest()

    def __repr__(self) -> str:
        return "Committer()"


def commit(value: bytes, *, purpose: bytes, session: bytes, owner: int, holder: int = 0) -> bytes:
    """One commitment; see `Committer` (use one of those for many values)."""
    return Committer(purpose=purpose, session=session)(value, owner=owner, holder=holder)
