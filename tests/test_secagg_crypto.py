"""Tests of secagg.crypto: hashing, X25519, AES-GCM channel, masks, Ed25519, session ids."""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import threading
import time

import numpy as np
import pytest

from secagg import crypto
from secagg.crypto import (
    CHANNEL_PURPOSE,
    PAIR_MASK_PURPOSE,
    AgreementKey,
    MaskGenerator,
    SigningKey,
    agree,
    commit,
    digest,
    mask_dtype,
    open_,
    reduce_mod,
    seal,
    session_id,
    verify_signature,
)
from secagg.errors import ConfigurationError, CryptoError

SESSION = hashlib.sha256(b"test session").digest()
P25519 = (1 << 255) - 19

# Curve25519 points of small order in every encoding a peer could send
# (canonical, with the top bit set, and non-reduced x + p), after libsodium's list.
LOW_ORDER_X25519 = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    (P25519 - 1).to_bytes(32, "little"),
    P25519.to_bytes(32, "little"),
    (P25519 + 1).to_bytes(32, "little"),
    bytes.fromhex("cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880"),
    bytes.fromhex("4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7"),
    bytes.fromhex("d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    bytes.fromhex("daffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    bytes.fromhex("dbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
]


# ---------------------------------------------------------------------------
# digest / HKDF


def test_digest_is_unambiguous():
    assert digest(b"ab", b"c") != digest(b"a", b"bc")
    assert digest(b"abc") != digest(b"ab", b"c")
    assert digest(1) != digest(b"\x01") != digest("1")
    assert digest(b"x", 1) != digest(b"x", 1, b"")
    assert digest("a") != digest(b"a")
    assert digest(1 << 63) != digest(-(1 << 63)) != digest((1 << 63) - 1)
    assert digest(1 << 200) != digest(1 << 201)
    assert digest(b"a", 2) == digest(b"a", 2)
    assert digest(np.uint32(7)) == digest(7)
    assert len(digest()) == 32


def test_digest_fast_paths_encode_like_the_general_rule():
    # _encode inlines bytes and int64 ints; the bytes must equal the tagged rule.
    parts = [
        b"",
        b"abc",
        bytearray(b"xy"),
        memoryview(b"mv"),
        "text",
        0,
        -1,
        (1 << 63) - 1,
        -(1 << 63),
        1 << 63,
        -(1 << 70),
        np.uint32(7),
        np.int64(-3),
        True,
    ]
    expected = b"".join(crypto._encode_part(p) for p in parts)
    assert crypto._encode(*parts) == expected
    assert digest(*parts) == hashlib.sha256(expected).digest()
    # known answer: b"B" + length + data, b"i" + 8-byte signed int
    assert crypto._encode(b"ab", 258) == b"B" + (2).to_bytes(8, "big") + b"ab" + b"i" + (
        258
    ).to_bytes(8, "big")


def test_digest_rejects_other_types():
    with pytest.raises(TypeError):
        digest(1.0)
    with pytest.raises(TypeError):
        digest(None)


def test_hkdf_rfc5869_case1():
    okm = crypto.hkdf_sha256(
        bytes.fromhex("0b" * 22),
        42,
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_random_bytes():
    a, b = crypto.random_bytes(32), crypto.random_bytes(32)
    assert len(a) == 32 and a != b
    assert crypto.random_bytes(0) == b""
    with pytest.raises(ConfigurationError):
        crypto.random_bytes(-1)


# ---------------------------------------------------------------------------
# X25519


def test_x25519_rfc7748_public_key():
    alice = AgreementKey.from_secret(
        bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    )
    assert alice.public.hex() == (
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    )


def test_agreement_key_roundtrip_and_repr():
    key = AgreementKey.generate()
    assert len(key.public) == 32
    secret = key.secret_bytes()
    assert len(secret) == 32
    again = AgreementKey.from_secret(secret)
    assert again.public == key.public
    assert AgreementKey.generate().public != key.public
    text = repr(key) + str(key)
    assert secret.hex() not in text
    assert secret.hex()[:16] not in text
    assert "hidden" in text
    with pytest.raises(TypeError):
        pickle.dumps(key)


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_agreement_key_wrong_length(length):
    with pytest.raises(CryptoError):
        AgreementKey.from_secret(bytes(length))


def test_agreement_key_erase():
    key = AgreementKey.generate()
    other = AgreementKey.generate()
    key.erase()
    assert key.erased
    with pytest.raises(CryptoError):
        key.secret_bytes()
    with pytest.raises(CryptoError):
        agree(key, other.public, session=SESSION, purpose=CHANNEL_PURPOSE, a=1, b=2)
    assert "hidden" not in repr(key) and "erased" in repr(key)
    key.erase()  # idempotent


def test_agree_is_symmetric_and_context_bound():
    u, v = AgreementKey.generate(), AgreementKey.generate()
    k_uv = agree(u, v.public, session=SESSION, purpose=CHANNEL_PURPOSE, a=3, b=9)
    k_vu = agree(v, u.public, session=SESSION, purpose=CHANNEL_PURPOSE, a=9, b=3)
    assert k_uv == k_vu and len(k_uv) == 32
    others = {
        agree(u, v.public, session=SESSION, purpose=PAIR_MASK_PURPOSE, a=3, b=9),
        agree(u, v.public, session=bytes(32), purpose=CHANNEL_PURPOSE, a=3, b=9),
        agree(u, v.public, session=SESSION, purpose=CHANNEL_PURPOSE, a=3, b=10),
        agree(
            u, AgreementKey.generate().public, session=SESSION, purpose=CHANNEL_PURPOSE, a=3, b=9
        ),
    }
    assert k_uv not in others and len(others) == 4


def test_agree_never_returns_raw_dh_output():
    from Crypto.Protocol import DH
    from Crypto.PublicKey import ECC

    u, v = AgreementKey.generate(), AgreementKey.generate()
    raw = DH.key_agreement(
        static_priv=ECC.construct(curve="Curve25519", seed=u.secret_bytes()),
        static_pub=DH.import_x25519_public_key(v.public),
        kdf=bytes,
    )
    key = agree(u, v.public, session=SESSION, purpose=CHANNEL_PURPOSE, a=1, b=2)
    assert key != raw and raw not in key
    expected = crypto.hkdf_sha256(
        raw,
        32,
        salt=SESSION,
        info=crypto._encode(b"blindsum/secagg/v1/agree", CHANNEL_PURPOSE, 1, 2),
    )
    assert key == expected


@pytest.mark.parametrize("point", LOW_ORDER_X25519, ids=lambda p: p[:4].hex())
def test_agree_rejects_low_order_and_noncanonical_points(point):
    own = AgreementKey.generate()
    with pytest.raises(CryptoError) as info:
        agree(own, point, session=SESSION, purpose=CHANNEL_PURPOSE, a=1, b=2)
    assert own.secret_bytes().hex() not in str(info.value)


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33), "x" * 32, None, 5])
def test_agree_rejects_malformed_public_keys(bad):
    with pytest.raises(CryptoError):
        agree(AgreementKey.generate(), bad, session=SESSION, purpose=CHANNEL_PURPOSE, a=1, b=2)


def test_agree_rejects_top_bit_set():
    peer = bytearray(AgreementKey.generate().public)
    peer[31] |= 0x80
    with pytest.raises(CryptoError):
        agree(
            AgreementKey.generate(), bytes(peer), session=SESSION, purpose=CHANNEL_PURPOSE, a=1, b=2
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"a": 1, "b": 1},
        {"a": -1, "b": 2},
        {"a": 1, "b": 1 << 32},
        {"a": True, "b": 2},
        {"session": b""},
        {"purpose": b""},
    ],
)
def test_agree_rejects_bad_parameters(kwargs):
    args = {"session": SESSION, "purpose": CHANNEL_PURPOSE, "a": 1, "b": 2, **kwargs}
    with pytest.raises(ConfigurationError):
        agree(AgreementKey.generate(), AgreementKey.generate().public, **args)


# ---------------------------------------------------------------------------
# AES-GCM share channel

CTX = {"session": SESSION, "stage": 1, "sender": 4, "recipient": 7, "associated": b"ad"}


def test_seal_open_roundtrip():
    key = os.urandom(32)
    blob = seal(key, b"share bytes", **CTX)
    assert len(blob) == 12 + len(b"share bytes") + 16
    assert open_(key, blob, **CTX) == b"share bytes"
    assert seal(key, b"", **CTX) != seal(key, b"", **CTX)  # fresh nonces
    assert open_(key, seal(key, b"", **CTX), **CTX) == b""
    assert b"share bytes" not in blob


@pytest.mark.parametrize(
    "change",
    [
        {"session": bytes(32)},
        {"stage": 2},
        {"sender": 7, "recipient": 4},  # reflection: swapped identities
        {"sender": 5},
        {"recipient": 8},
        {"associated": b""},
        {"associated": b"ae"},
    ],
)
def test_open_rejects_wrong_context(change):
    key = os.urandom(32)
    blob = seal(key, b"payload", **CTX)
    with pytest.raises(CryptoError, match="^share ciphertext failed authentication$"):
        open_(key, blob, **{**CTX, **change})


def test_open_rejects_tampering_anywhere():
    key = os.urandom(32)
    blob = seal(key, b"0123456789abcdef", **CTX)
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(CryptoError):
            open_(key, bytes(tampered), **CTX)
    for short in (b"", blob[:27], blob[:-1]):
        with pytest.raises(CryptoError):
            open_(key, short, **CTX)
    with pytest.raises(CryptoError):
        open_(key, blob + b"\x00", **CTX)
    with pytest.raises(CryptoError):
        open_(key, None, **CTX)


def test_open_wrong_key_hides_key():
    key, wrong = os.urandom(32), os.urandom(32)
    blob = seal(key, b"payload", **CTX)
    with pytest.raises(CryptoError) as info:
        open_(wrong, blob, **CTX)
    assert str(info.value) == "share ciphertext failed authentication"
    assert key.hex() not in str(info.value) and wrong.hex() not in str(info.value)


@pytest.mark.parametrize("key", [b"", bytes(16), bytes(31), bytes(33)])
def test_channel_key_length(key):
    with pytest.raises(ConfigurationError):
        seal(key, b"x", **CTX)
    with pytest.raises(ConfigurationError):
        open_(key, bytes(40), **CTX)


def test_seal_rejects_bad_ids():
    with pytest.raises(ConfigurationError):
        seal(os.urandom(32), b"x", **{**CTX, "sender": -1})
    with pytest.raises(ConfigurationError):
        seal(os.urandom(32), b"x", **{**CTX, "stage": 1 << 32})


# ---------------------------------------------------------------------------
# Masks


def test_mask_dtype():
    assert mask_dtype(1) == np.uint32 and mask_dtype(32) == np.uint32
    assert mask_dtype(33) == np.uint64 and mask_dtype(62) == np.uint64
    for bad in (0, -1, 63, 64, True, 8.0):
        with pytest.raises(ConfigurationError):
            mask_dtype(bad)


def test_reduce_mod():
    acc = np.array([0xFFFFFFFF, 0x12345678], dtype=np.uint32)
    reduce_mod(acc, 32)
    assert acc.tolist() == [0xFFFFFFFF, 0x12345678]
    reduce_mod(acc, 12)
    assert acc.tolist() == [0xFFF, 0x678]
    wide = np.array([(1 << 64) - 1], dtype=np.uint64)
    reduce_mod(wide, 40)
    assert wide.tolist() == [(1 << 40) - 1]
    with pytest.raises(ConfigurationError):
        reduce_mod(acc, 40)


def _mask_args(**overrides):
    args = {"session": SESSION, "owners": (1, 2), "vector": "weights", "bits": 32}
    args.update(overrides)
    return args


def test_mask_known_answer():
    """Pins the mask derivation (HKDF info layout, AES-128-CTR, counter 0, little-endian)."""
    gen = MaskGenerator()
    first = gen.expand(
        bytes(range(32)), session=b"S" * 32, owners=(1, 2), vector="w", length=8, bits=32
    )
    assert first.tolist() == [
        2937101726, 2415985708, 2153688538, 2865091541,
        1838107748, 3813636601, 3533906865, 1704255552,
    ]  # fmt: skip
    wide = gen.expand(
        bytes(range(32)), session=b"S" * 32, owners=(7,), vector="w", length=1000, bits=62
    )
    assert hashlib.sha256(wide.tobytes()).hexdigest() == (
        "1470f5a0b7c17c6204080886cef2723b8474436ac418449b8e454c8b5aedb425"
    )


@pytest.mark.parametrize("cache_bytes", [0, 64, 16 << 20])
@pytest.mark.parametrize("bits", [20, 62])
def test_mask_is_the_aes_ctr_keystream(monkeypatch, cache_bytes, bits):
    """Masks (AES-ECB over counter blocks) equal pycryptodome's AES-CTR keystream,
    whether the counter blocks come from the cache or are built per chunk."""
    from Crypto.Cipher import AES

    monkeypatch.setattr(crypto, "_COUNTER_CACHE_BYTES", cache_bytes)
    monkeypatch.setattr(crypto, "_counter_cache", b"")
    seed, length = os.urandom(32), 1001
    dtype = mask_dtype(bits)
    info = crypto._encode(crypto._MASK_LABEL, 1, 4, "v", length, bits, dtype.str)
    key = crypto.hkdf_sha256(seed, 16, salt=SESSION, info=info)
    stream = AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=0).encrypt(
        bytes(length * dtype.itemsize)
    )
    expected = np.frombuffer(stream, dtype=dtype.newbyteorder("<")) & ((1 << bits) - 1)
    for chunk in (64, 1 << 20):
        mask = MaskGenerator(chunk_bytes=chunk).expand(
            seed, session=SESSION, owners=(4,), vector="v", length=length, bits=bits
        )
        assert mask.tolist() == expected.tolist()


def test_mask_add_many_equals_one_by_one():
    seeds = [os.urandom(32) for _ in range(3)]
    masks = [(seeds[0], (1,), False), (seeds[1], (1, 2), True), (seeds[2], (3, 1), False)]
    one, many = np.zeros(300, np.uint32), np.zeros(300, np.uint32)
    gen = MaskGenerator()
    for seed, owners, subtract in masks:
        gen.add(one, seed, session=SESSION, owners=owners, vector="v", bits=32, subtract=subtract)
    gen.add_many(many, masks, session=SESSION, vector="v", bits=32)
    assert np.array_equal(one, many) and one.any()
    assert not np.frombuffer(gen._buf, np.uint8).any()  # scratch wiped after the batch
    with pytest.raises(ConfigurationError):
        gen.add_many(many, [(seeds[0], (1, 1), False)], session=SESSION, vector="v", bits=32)


def test_agree_many_equals_agree_and_pycryptodome():
    from Crypto.Protocol import DH

    own = AgreementKey.generate()
    peers = [(i, AgreementKey.generate().public) for i in (2, 9, 40)]
    seeds = crypto.agree_many(own, peers, own_id=7, session=SESSION, purpose=b"p")
    for (peer_id, public), seed in zip(peers, seeds, strict=True):
        assert seed == agree(own, public, session=SESSION, purpose=b"p", a=7, b=peer_id)
        raw = DH.key_agreement(
            static_priv=own._private(),
            static_pub=DH.import_x25519_public_key(public),
            kdf=bytes,
        )
        info = crypto._encode(crypto._AGREE_LABEL, b"p", min(7, peer_id), max(7, peer_id))
        assert seed == crypto.hkdf_sha256(raw, 32, salt=SESSION, info=info)
    with pytest.raises(ConfigurationError):
        crypto.agree_many(own, [(7, peers[0][1])], own_id=7, session=SESSION, purpose=b"p")
    with pytest.raises(CryptoError):
        crypto.agree_many(own, [(3, bytes(32))], own_id=7, session=SESSION, purpose=b"p")


@pytest.mark.parametrize("bits", [1, 7, 20, 32, 33, 48, 62])
@pytest.mark.parametrize("length", [1, 5, 255, 4096 + 3])
def test_mask_chunking_invariant_and_add_subtract(bits, length):
    seed = os.urandom(32)
    big = MaskGenerator()
    small = MaskGenerator(chunk_bytes=64)
    mask = big.expand(seed, session=SESSION, owners=(2,), vector="v", length=length, bits=bits)
    assert np.array_equal(
        mask, small.expand(seed, session=SESSION, owners=(2,), vector="v", length=length, bits=bits)
    )
    assert int(mask.max()) < (1 << bits)
    x = np.frombuffer(os.urandom(length * 8), dtype=np.uint64).astype(mask_dtype(bits))
    reduce_mod(x, bits)
    acc = x.copy()
    big.add(acc, seed, session=SESSION, owners=(2,), vector="v", bits=bits)
    reduce_mod(acc, bits)
    expected = (x.astype(object) + mask.astype(object)) % (1 << bits)
    assert acc.astype(object).tolist() == expected.tolist()
    small.add(acc, seed, session=SESSION, owners=(2,), vector="v", bits=bits, subtract=True)
    reduce_mod(acc, bits)
    assert np.array_equal(acc, x)


def test_mask_is_bound_to_every_input():
    gen = MaskGenerator()
    seed = os.urandom(32)
    base = gen.expand(seed, length=64, **_mask_args())
    variants = [
        gen.expand(os.urandom(32), length=64, **_mask_args()),
        gen.expand(seed, length=64, **_mask_args(session=bytes(32))),
        gen.expand(seed, length=64, **_mask_args(owners=(1, 3))),
        gen.expand(seed, length=64, **_mask_args(owners=(1,))),
        gen.expand(seed, length=64, **_mask_args(vector="bias")),
        gen.expand(seed, length=64, **_mask_args(bits=31)),
        gen.expand(seed, length=65, **_mask_args())[:64],
    ]
    for other in variants:
        # 64 independent 32-bit words: equal in more than a few places only if bound wrongly.
        assert np.count_nonzero(other.astype(np.uint64) == base.astype(np.uint64)) < 4
    # A pair's mask does not depend on the order of owners.
    assert np.array_equal(base, gen.expand(seed, length=64, **_mask_args(owners=(2, 1))))


def test_mask_bits_are_uniform():
    # Each of the 20 bits is set with frequency 1/2: n = 2^20 samples, sd = 2^-11;
    # bound 6 sd gives a false-failure probability < 20 * 2e-9.
    n, bits = 1 << 20, 20
    mask = MaskGenerator().expand(os.urandom(32), length=n, **_mask_args(bits=bits))
    assert int(mask.max()) < (1 << bits)
    bound = 6 * 0.5 / math.sqrt(n)
    for bit in range(bits):
        freq = np.count_nonzero(mask & np.uint32(1 << bit)) / n
        assert abs(freq - 0.5) < bound, bit


def test_pairwise_and_self_masks_cancel_in_a_sum():
    bits, d, ids = 24, 1000, [3, 8, 11, 20]
    gen = MaskGenerator(chunk_bytes=1024)
    pair_keys = {u: AgreementKey.generate() for u in ids}
    self_seeds = {u: os.urandom(32) for u in ids}
    inputs = {
        u: np.frombuffer(os.urandom(4 * d), dtype=np.uint32) & np.uint32((1 << bits) - 1)
        for u in ids
    }
    total = np.zeros(d, dtype=np.uint32)
    for u in ids:
        y = inputs[u].copy()
        gen.add(y, self_seeds[u], session=SESSION, owners=(u,), vector="w", bits=bits)
        for v in ids:
            if v == u:
                continue
            seed = agree(
                pair_keys[u],
                pair_keys[v].public,
                session=SESSION,
                purpose=PAIR_MASK_PURPOSE,
                a=u,
                b=v,
            )
            gen.add(y, seed, session=SESSION, owners=(u, v), vector="w", bits=bits, subtract=u > v)
        reduce_mod(y, bits)
        assert not np.array_equal(y, inputs[u])
        total += y
    # The server removes the self masks (rebuilt b_u) and is left with the sum.
    for u in ids:
        gen.add(
            total, self_seeds[u], session=SESSION, owners=(u,), vector="w", bits=bits, subtract=True
        )
    reduce_mod(total, bits)
    expected = sum(inputs[u].astype(np.uint64) for u in ids) % (1 << bits)
    assert np.array_equal(total, expected.astype(np.uint32))


def test_mask_scratch_buffer_is_wiped():
    gen = MaskGenerator(chunk_bytes=256)
    acc = np.zeros(1000, dtype=np.uint32)
    gen.add(acc, os.urandom(32), **_mask_args())
    assert np.count_nonzero(acc) > 990
    assert not any(gen._buf)
    gen.erase()
    assert "seed" not in repr(gen)


@pytest.mark.parametrize(
    "acc",
    [
        np.zeros(8, dtype=np.int64),
        np.zeros(8, dtype=np.float64),
        np.zeros(8, dtype=np.uint64),  # bits=32 wants uint32
        np.zeros(8, dtype=np.int32),
        np.zeros(8, dtype=">u4"),
        np.zeros((2, 4), dtype=np.uint32),
        np.zeros(16, dtype=np.uint32)[::2],
        [0] * 8,
    ],
    ids=["int64", "float", "uint64", "int32", "big-endian", "2d", "strided", "list"],
)
def test_mask_rejects_bad_accumulators(acc):
    with pytest.raises(ConfigurationError):
        MaskGenerator().add(acc, os.urandom(32), **_mask_args())


def test_mask_rejects_readonly_and_wrong_width():
    acc = np.zeros(8, dtype=np.uint32)
    acc.setflags(write=False)
    with pytest.raises(ConfigurationError):
        MaskGenerator().add(acc, os.urandom(32), **_mask_args())
    with pytest.raises(ConfigurationError):
        MaskGenerator().add(np.zeros(8, np.uint32), os.urandom(32), **_mask_args(bits=40))


@pytest.mark.parametrize(
    "overrides",
    [
        {"owners": ()},
        {"owners": (1, 2, 3)},
        {"owners": (2, 2)},
        {"owners": (-1,)},
        {"owners": [1, 2]},
        {"owners": ("1",)},
        {"vector": ""},
        {"vector": b"w"},
        {"session": b""},
        {"bits": 0},
        {"bits": 63},
    ],
)
def test_mask_rejects_bad_parameters(overrides):
    with pytest.raises(ConfigurationError):
        MaskGenerator().add(np.zeros(8, np.uint32), os.urandom(32), **_mask_args(**overrides))


@pytest.mark.parametrize("seed", [b"", bytes(16), bytes(31), bytes(33), "s" * 32])
def test_mask_rejects_bad_seed(seed):
    with pytest.raises(ConfigurationError):
        MaskGenerator().add(np.zeros(8, np.uint32), seed, **_mask_args())


@pytest.mark.parametrize("chunk", [0, 16, 100, -64, True])
def test_mask_generator_chunk_size(chunk):
    with pytest.raises(ConfigurationError):
        MaskGenerator(chunk_bytes=chunk)


def test_mask_speed_and_threads():
    """Speed sanity (printed, not asserted): masking vs raw keystream, 1 vs 2 threads."""
    d = 1 << 20
    rate = crypto.measure_keystream_rate(total_bytes=32 << 20)
    assert rate > 0
    seed = os.urandom(32)

    def run(gen, acc, times):
        for _ in range(times):
            gen.add(acc, seed, **_mask_args())

    gens = [MaskGenerator(), MaskGenerator()]
    accs = [np.zeros(d, np.uint32), np.zeros(d, np.uint32)]
    start = time.perf_counter()
    run(gens[0], accs[0], 8)
    one = 8 * d / (time.perf_counter() - start)
    threads = [threading.Thread(target=run, args=(gens[i], accs[i], 8)) for i in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    two = 16 * d / (time.perf_counter() - start)
    print(
        f"\nkeystream {rate / 1e9:.2f} GB/s; add uint32 {one / 1e9:.2f} G el/s "
        f"({100 * one * 4 / rate:.0f}% of keystream); 2 threads {two / 1e9:.2f} G el/s"
    )


# ---------------------------------------------------------------------------
# Ed25519

RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
    "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_ed25519_rfc8032_vector():
    key = SigningKey.from_seed(RFC8032_SEED)
    assert key.public == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIG
    assert verify_signature(RFC8032_PUBLIC, b"", RFC8032_SIG)
    assert key.seed_bytes() == RFC8032_SEED


def test_sign_verify_and_tampering():
    key = SigningKey.generate()
    message = b"session || U3"
    signature = key.sign(message)
    assert len(signature) == 64
    assert verify_signature(key.public, message, signature)
    assert not verify_signature(key.public, message + b"!", signature)
    assert not verify_signature(SigningKey.generate().public, message, signature)
    for position in (0, 31, 32, 63):
        bad = bytearray(signature)
        bad[position] ^= 0x01
        assert not verify_signature(key.public, message, bytes(bad))


@pytest.mark.parametrize(
    ("public", "message", "signature"),
    [
        (b"", b"m", bytes(64)),
        (bytes(31), b"m", bytes(64)),
        (bytes(33), b"m", bytes(64)),
        (None, b"m", bytes(64)),
        ("k" * 32, b"m", bytes(64)),
        (RFC8032_PUBLIC, b"", b""),
        (RFC8032_PUBLIC, b"", RFC8032_SIG[:63]),
        (RFC8032_PUBLIC, b"", RFC8032_SIG + b"\x00"),
        (RFC8032_PUBLIC, None, RFC8032_SIG),
        (RFC8032_PUBLIC, "", RFC8032_SIG),
        (b"\xff" * 32, b"", RFC8032_SIG),
    ],
)
def test_verify_never_raises_on_malformed_input(public, message, signature):
    assert verify_signature(public, message, signature) is False


def test_verify_rejects_small_order_public_key():
    """With A = identity, (R = [S]B, S) satisfies [S]B = R + [k]A for every message."""
    from Crypto.PublicKey import ECC
    from Crypto.Signature import eddsa

    identity = (1).to_bytes(32, "little")
    some_key = ECC.construct(curve="Ed25519", seed=os.urandom(32))
    order = (1 << 252) + 27742317777372353535851937790883648493
    r_point = some_key.public_key().export_key(format="raw")  # [d]B
    forged = r_point + (int(some_key.d) % order).to_bytes(32, "little")
    # The underlying library accepts the forgery ...
    eddsa.new(eddsa.import_public_key(identity), "rfc8032").verify(b"any message", forged)
    # ... we do not.
    assert not verify_signature(identity, b"any message", forged)


def test_signing_key_repr_erase_and_lengths():
    key = SigningKey.generate()
    seed = key.seed_bytes()
    assert seed.hex() not in repr(key) and "hidden" in repr(key)
    assert SigningKey.from_seed(seed).public == key.public
    key.erase()
    with pytest.raises(CryptoError):
        key.sign(b"m")
    with pytest.raises(CryptoError):
        key.seed_bytes()
    for length in (0, 31, 33, 64):
        with pytest.raises(CryptoError):
            SigningKey.from_seed(bytes(length))
    with pytest.raises(TypeError):
        pickle.dumps(SigningKey.generate())


# ---------------------------------------------------------------------------
# Session id and commitments


def _advertisements(n=5):
    return [(uid, os.urandom(32), os.urandom(32)) for uid in range(1, n + 1)]


def test_session_id_is_order_independent_and_binding():
    config = digest(b"round config")
    ads = _advertisements()
    sid = session_id(config, ads)
    assert len(sid) == 32
    assert session_id(config, list(reversed(ads))) == sid
    assert session_id(digest(b"other config"), ads) != sid
    swapped = [*ads[:-1], (ads[-1][0], ads[-1][2], ads[-1][1])]  # c_pk <-> s_pk
    assert session_id(config, swapped) != sid
    renumbered = [*ads[:-1], (99, ads[-1][1], ads[-1][2])]
    assert session_id(config, renumbered) != sid
    assert session_id(config, ads[:-1]) != sid


@pytest.mark.parametrize(
    "bad",
    [
        [(1, bytes(32), bytes(32)), (1, bytes(32), b"\x01" * 32)],
        [(1, bytes(31), bytes(32))],
        [(1, bytes(32), bytes(33))],
        [(-1, bytes(32), bytes(32))],
        [(1, bytes(32))],
    ],
)
def test_session_id_rejects_bad_advertisements(bad):
    with pytest.raises(ConfigurationError):
        session_id(digest(b"c"), bad)


def test_commit_binds_every_field():
    value = os.urandom(32)
    base = commit(value, purpose=b"b", session=SESSION, owner=3, holder=5)
    assert base == commit(value, purpose=b"b", session=SESSION, owner=3, holder=5)
    others = {
        commit(os.urandom(32), purpose=b"b", session=SESSION, owner=3, holder=5),
        commit(value, purpose=b"s", session=SESSION, owner=3, holder=5),
        commit(value, purpose=b"b", session=bytes(32), owner=3, holder=5),
        commit(value, purpose=b"b", session=SESSION, owner=5, holder=3),
        commit(value, purpose=b"b", session=SESSION, owner=3),
    }
    assert base not in others and len(others) == 5
    with pytest.raises(ConfigurationError):
        commit(value, purpose=b"b", session=SESSION, owner=-1)


def test_committer_equals_commit_and_checks_its_arguments():
    value = os.urandom(32)
    committer = crypto.Committer(purpose=b"b", session=SESSION)
    assert committer(value, owner=3, holder=5) == commit(
        value, purpose=b"b", session=SESSION, owner=3, holder=5
    )
    assert committer(bytearray(value), owner=3) == commit(
        value, purpose=b"b", session=SESSION, owner=3
    )
    # the documented layout: SHA-256 of the tagged encoding of every field
    assert committer(value, owner=3, holder=5) == digest(
        crypto._COMMIT_LABEL, b"b", SESSION, 3, 5, value
    )
    assert "b" not in repr(committer).replace("Committer", "")  # no session or purpose shown
    for bad in ({"owner": -1}, {"owner": 1 << 32}, {"owner": 1, "holder": True}):
        with pytest.raises(ConfigurationError):
            committer(value, **bad)
    with pytest.raises(ConfigurationError):
        committer("not bytes", owner=1)
    with pytest.raises(ConfigurationError):
        crypto.Committer(purpose=b"b", session=b"")


def test_crypto_speeds_print():
    """Speed sanity (printed, not asserted)."""
    u, v = AgreementKey.generate(), AgreementKey.generate()
    key = SigningKey.generate()
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        agree(u, v.public, session=SESSION, purpose=PAIR_MASK_PURPOSE, a=1, b=2)
    agree_rate = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        signature = key.sign(b"message")
    sign_rate = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        assert verify_signature(key.public, b"message", signature)
    verify_rate = n / (time.perf_counter() - start)
    print(f"\nagree {agree_rate:.0f}/s, sign {sign_rate:.0f}/s, verify {verify_rate:.0f}/s")
