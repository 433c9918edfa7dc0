"""gRPC plumbing shared by the aggregator and the participants.

mTLS credentials, message-size limits, peer identity from the TLS certificate,
and chunked transfer of large vectors with a digest. Nothing here knows the
protocol; it moves bytes and says who sent them.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from blindsum.v1 import federation_pb2 as fpb
from node.config import Federation, Member
from node.pki import certificate_fingerprint, read_ca_certificate

CHUNK_BYTES = 1 << 20  # 1 MiB chunks for large vectors
# Receive limits stay small: only chunks and small protocol messages travel.
SERVER_MAX_RECEIVE = 2 * CHUNK_BYTES
CLIENT_MAX_RECEIVE = 16 << 20  # ShareKeysRequest carries every advertisement (n x ~170 B)

KEEPALIVE = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
]


def server_credentials(key: Path, certificate: Path, ca: Path) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), certificate.read_bytes())],
        root_certificates=read_ca_certificate(ca),
        require_client_auth=True,
    )


def channel_credentials(key: Path, certificate: Path, ca: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=read_ca_certificate(ca),
        private_key=key.read_bytes(),
        certificate_chain=certificate.read_bytes(),
    )


def server_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", SERVER_MAX_RECEIVE),
        ("grpc.max_send_message_length", CLIENT_MAX_RECEIVE),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ]


def channel_options(aggregator_name: str) -> list[tuple[str, object]]:
    return [
        ("grpc.ssl_target_name_override", aggregator_name),
        ("grpc.max_receive_message_length", CLIENT_MAX_RECEIVE),
        ("grpc.max_send_message_length", SERVER_MAX_RECEIVE),
        *KEEPALIVE,
    ]


class PeerRejected(Exception):
    """The mTLS peer is not a roster member (the text says why; never secret)."""


def authenticate_peer(context: grpc.aio.ServicerContext, federation: Federation) -> Member:
    """The roster member behind this call, from its verified TLS certificate only.

    The TLS layer already checked the chain against the federation CA; here the
    certificate's DNS name must be a roster site and its fingerprint the one the
    roster lists for that site (a re-issued certificate is not silently accepted).
    """
    auth = context.auth_context()
    sans = [v.decode("ascii", "replace") for v in auth.get("x509_subject_alternative_name", [])]
    pems = auth.get("x509_pem_cert", [])
    if len(sans) != 1 or len(pems) != 1:
        raise PeerRejected("peer certificate must carry exactly one DNS name")
    member = federation.member_by_name(sans[0])
    if member is None:
        raise PeerRejected(f"peer {sans[0]!r} is not in the roster")
    if certificate_fingerprint(pems[0]) != member.fingerprint:
        raise PeerRejected(f"peer {sans[0]!r} presented a certificate not listed in the roster")
    return member


@dataclass(frozen=True)
class ReceivedVector:
    header: fpb.VectorHeader
    data: bytes


def chunk_vector(data: bytes, header: fpb.VectorHeader) -> Iterator[fpb.VectorChunk]:
    """The header (with size and SHA-256) in the first chunk, then 1 MiB slices."""
    header.total_bytes = len(data)
    header.sha256 = hashlib.sha256(data).digest()
    view = memoryview(data)
    yield fpb.VectorChunk(header=header, data=bytes(view[:CHUNK_BYTES]))
    for start in range(CHUNK_BYTES, len(data), CHUNK_BYTES):
        yield fpb.VectorChunk(data=bytes(view[start : start + CHUNK_BYTES]))


class VectorTransferError(Exception):
    def __init__(self, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


async def receive_vector(
    chunks: AsyncIterator[fpb.VectorChunk],
    *,
    expected_bytes: int | None,
    round: int | None = None,
    session_id: bytes | None = None,
) -> ReceivedVector:
    """Reassemble a chunked vector, refusing a wrong announced size before buffering.

    round / session_id, when given, must be what the header names.
    """
    header: fpb.VectorHeader | None = None
    buffer = bytearray()
    async for chunk in chunks:
        if header is None:
            if not chunk.HasField("header"):
                raise VectorTransferError(
                    grpc.StatusCode.INVALID_ARGUMENT, "first chunk has no header"
                )
            header = chunk.header
            if expected_bytes is not None and header.total_bytes != expected_bytes:
                code = (
                    grpc.StatusCode.RESOURCE_EXHAUSTED
                    if header.total_bytes > expected_bytes
                    else grpc.StatusCode.INVALID_ARGUMENT
                )
                raise VectorTransferError(
                    code,
                    f"announced {header.total_bytes} bytes, the round expects {expected_bytes}",
                )
            if (round is not None and header.round != round) or (
                session_id is not None and header.session_id != session_id
            ):
                raise VectorTransferError(
                    grpc.StatusCode.INVALID_ARGUMENT, "the upload names another round or session"
                )
            buffer = bytearray()
        elif chunk.HasField("header"):
            raise VectorTransferError(
                grpc.StatusCode.INVALID_ARGUMENT, "a second header in one stream"
            )
        if len(chunk.data) > CHUNK_BYTES:
            raise VectorTransferError(grpc.StatusCode.RESOURCE_EXHAUSTED, "chunk larger than 1 MiB")
        if len(buffer) + len(chunk.data) > header.total_bytes:
            raise VectorTransferError(grpc.StatusCode.INVALID_ARGUMENT, "more data than announced")
        buffer += chunk.data
    if header is None:
        raise VectorTransferError(grpc.StatusCode.INVALID_ARGUMENT, "empty upload")
    if len(buffer) != header.total_bytes:
        raise VectorTransferError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"received {len(buffer)} of {header.total_bytes} bytes",
        )
    if hashlib.sha256(buffer).digest() != header.sha256:
        raise VectorTransferError(grpc.StatusCode.INVALID_ARGUMENT, "digest mismatch")
    return ReceivedVector(header, bytes(buffer))
