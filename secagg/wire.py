"""Wire format: decoding with validation, and the exact bytes every signature covers.

Client and server both build signed payloads here, so what one side signs is
by construction what the other side verifies.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from google.protobuf.message import DecodeError

from blindsum.v1 import secagg_pb2 as pb
from secagg import crypto
from secagg.errors import AbortReason, MalformedMessage, ProtocolAbort

MAX_BITS = 62
MAX_DIMENSION = 1 << 31
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
DIGEST_BYTES = 32
NONCE_BYTES = 32


def _parse(cls, data: bytes, what: str):
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage(f"{what}: expected bytes, got {type(data).__name__}")
    try:
        msg = cls.FromString(bytes(data))
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise MalformedMessage(f"{what} could not be decoded ({len(data)} bytes)") from exc
    return msg


def parse_server_message(data: bytes) -> pb.ServerMessage:
    msg = _parse(pb.ServerMessage, data, "server message")
    if msg.WhichOneof("body") is None:
        raise MalformedMessage("server message has no body")
    return msg


def parse_client_message(data: bytes) -> pb.ClientMessage:
    msg = _parse(pb.ClientMessage, data, "client message")
    if msg.WhichOneof("body") is None:
        raise MalformedMessage("client message has no body")
    return msg


def parse_round_config(data: bytes) -> pb.RoundConfig:
    """Decode and range-check a RoundConfig (structure only; policy is the caller's)."""
    cfg = _parse(pb.RoundConfig, data, "round config")
    if not 1 <= cfg.bits <= MAX_BITS:
        raise MalformedMessage(f"round config bits={cfg.bits} outside 1..{MAX_BITS}")
    if not 1 <= cfg.dimension <= MAX_DIMENSION:
        raise MalformedMessage(f"round config dimension={cfg.dimension} outside 1..{MAX_DIMENSION}")
    if len(cfg.nonce) != NONCE_BYTES:
        raise MalformedMessage(f"round config nonce must be {NONCE_BYTES} bytes")
    if not cfg.vector_name:
        raise MalformedMessage("round config vector_name is empty")
    unique_ids(cfg.participants, "round config participants")
    return cfg


def parse_share_bundle(data: bytes) -> pb.ShareBundle:
    return _parse(pb.ShareBundle, data, "share bundle")


# --- what is signed -------------------------------------------------------


def config_digest(round_config: bytes) -> bytes:
    return crypto.digest(b"blindsum/secagg/v1/round-config", round_config)


def advertise_payload(config_digest_: bytes, sender: int, c_pk: bytes, s_pk: bytes) -> bytes:
    return crypto.digest(b"blindsum/secagg/v1/advertise-keys", config_digest_, sender, c_pk, s_pk)


def share_keys_payload(msg: pb.ShareKeys) -> bytes:
    parts: list[bytes | int] = [
        msg.session_id,
        msg.sender,
        msg.self_seed_commitment,
        len(msg.shares),
    ]
    for s in msg.shares:
        parts += [
            s.recipient,
            s.ciphertext,
            s.self_seed_share_commitment,
            s.mask_key_share_commitment,
        ]
    return crypto.digest(b"blindsum/secagg/v1/share-keys", *parts)


def survivors_digest(survivors: Iterable[int]) -> bytes:
    ids = sorted(survivors)
    return crypto.digest(b"blindsum/secagg/v1/survivors", len(ids), *ids)


def consistency_payload(session_id: bytes, survivors_digest_: bytes) -> bytes:
    return crypto.digest(b"blindsum/secagg/v1/consistency", session_id, survivors_digest_)


def share_associated_data(shares: pb.EncryptedShares) -> bytes:
    """The share commitments are authenticated with the ciphertext (AES-GCM AD)."""
    return shares.self_seed_share_commitment + shares.mask_key_share_commitment


class SessionCommitters:
    """The commitment functions of one session, one per kind of committed secret.

    self_seed(b_u, owner=u); self_seed_share(share, owner=u, holder=v);
    mask_key_share(share, owner=u, holder=v). Participants commit with them and
    the aggregator checks returned shares and rebuilt seeds with them.
    """

    __slots__ = ("mask_key_share", "self_seed", "self_seed_share")

    def __init__(self, session_id: bytes) -> None:
        self.self_seed = crypto.Committer(purpose=b"self-seed", session=session_id)
        self.self_seed_share = crypto.Committer(purpose=b"self-seed-share", session=session_id)
        self.mask_key_share = crypto.Committer(purpose=b"mask-key-share", session=session_id)


# --- vectors ------------------------------------------------------------------


def lane_dtype(bits: int) -> np.dtype:
    return np.dtype("<u4") if bits <= 32 else np.dtype("<u8")


def encode_vector(vector: np.ndarray, bits: int) -> bytes:
    return np.ascontiguousarray(vector, dtype=lane_dtype(bits)).tobytes()


def decode_vector(
    data: bytes, dimension: int, bits: int, *, culprit: int | None = None
) -> np.ndarray:
    """Bytes -> read-only lane array, refusing a wrong length or any element >= 2^bits."""
    dtype = lane_dtype(bits)
    expected = dimension * dtype.itemsize
    if len(data) != expected:
        raise MalformedMessage(
            f"vector is {len(data)} bytes, expected {expected} ({dimension} x {dtype.itemsize})",
            culprit=culprit,
        )
    vec = np.frombuffer(data, dtype=dtype)
    if bits not in (32, 64) and np.any(vec >> np.asarray(bits, dtype=dtype)):
        raise MalformedMessage(f"vector has elements outside [0, 2^{bits})", culprit=culprit)
    return vec


# --- ids ----------------------------------------------------------------------


def unique_ids(ids: Iterable[int], what: str) -> list[int]:
    out = list(ids)
    if len(set(out)) != len(out):
        raise ProtocolAbort(AbortReason.DUPLICATE_IDS, f"{what} lists an id twice")
    return out


def require_length(value: bytes, length: int, what: str, reason: AbortReason, culprit=None) -> None:
    if len(value) != length:
        raise ProtocolAbort(
            reason, f"{what} must be {length} bytes, got {len(value)}", culprit=culprit
        )
