"""The CKKS path over gRPC (`[federation] path = "ckks"`): run set-up and rounds.

The cryptography and every check live in `node.ckks`; this module moves its
signed messages between the aggregator and the nodes (protobuf <-> dataclasses)
and drives the order of calls that `node.ckks.simulate_ckks_round` shows in memory:

set-up (once per run, over the Join stream + Submit)
    aggregator -> all      CkksRunSetup (run id, committee from the roster config)
    members    -> agg      CkksEnrolment (per-run X25519 key, signed)  [non-lead members]
    agg        -> lead     CkksEnrolments (relayed)
    lead       -> agg      CkksContextRelease (announcement signed by the lead +
                           one sealed secret context per member)
    agg        -> all      CkksContextDelivery (announcement, + the member's sealed context)
    all        -> agg      ready | refusal (announcement not signed by the roster's lead, ...)
each round
    agg -> all             CkksRoundConfig (RoundApplication signed by the aggregator)
    node                   policy + ledger checks, worst-case charge, train, dp.encode,
                           encrypt_update, UploadCiphertext (chunks, then signed receipt)
    agg                    at the deadline: abandon incomplete uploads
    agg -> committee       CkksDecryptRequest (receipts; GetEncryptedSum streams the sum)
    member -> agg          attestation (the lead also streams the integer sum)
    agg                    agree_on_sum, sum_digest check, dp.decode (shared with masking)
    agg -> all             RoundResult with the attestations: each node revises its
                           ledger to the contributor set the committee signed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import numpy as np

import dp
from blindsum.v1 import federation_pb2 as fpb
from node import ckks, transport
from node.participant import SUBMIT_TIMEOUT, UPLOAD_TIMEOUT, RoundRefused
from secagg import crypto

log = logging.getLogger("blindsum.ckks")

ROUND_CONFIG_LABEL = "blindsum/ckks/v1/round-config"
ROUND_SESSION_LABEL = "blindsum/ckks/v1/round-session"
MAX_CHUNK_BYTES = 1 << 20  # one upload message: one CKKS chunk ciphertext (~130 kB at N = 8192)
POOL_MIN_CHUNKS = 8  # encrypt in worker processes from this many chunk ciphertexts up


# --- protobuf <-> node.ckks dataclasses ---------------------------------------------


def params_to_pb(p: ckks.CkksParameters) -> fpb.CkksParameters:
    return fpb.CkksParameters(
        poly_modulus_degree=p.poly_modulus_degree, coeff_mod_bit_sizes=list(p.coeff_mod_bit_sizes),
        scale_bits=p.scale_bits, bits=p.bits, max_clients=p.max_clients,
    )  # fmt: skip


def params_from_pb(m: fpb.CkksParameters) -> ckks.CkksParameters:
    return ckks.CkksParameters(
        m.poly_modulus_degree, tuple(m.coeff_mod_bit_sizes), m.scale_bits, m.bits, m.max_clients
    )


def announcement_to_pb(a: ckks.PublicContextAnnouncement) -> fpb.CkksAnnouncement:
    return fpb.CkksAnnouncement(
        federation=a.federation, run_id=a.run_id, lead=a.lead,
        parameters=params_to_pb(a.parameters), public_context=a.public_context,
        signature=a.signature,
    )  # fmt: skip


def announcement_from_pb(m: fpb.CkksAnnouncement) -> ckks.PublicContextAnnouncement:
    return ckks.PublicContextAnnouncement(
        m.federation, m.run_id, m.lead, params_from_pb(m.parameters), m.public_context, m.signature
    )


def enrolment_to_pb(e: ckks.MemberEnrolment) -> fpb.CkksEnrolment:
    return fpb.CkksEnrolment(
        federation=e.federation, run_id=e.run_id, member=e.member,
        agreement_public=e.agreement_public, signature=e.signature,
    )  # fmt: skip


def enrolment_from_pb(m: fpb.CkksEnrolment) -> ckks.MemberEnrolment:
    return ckks.MemberEnrolment(m.federation, m.run_id, m.member, m.agreement_public, m.signature)


def sealed_to_pb(s: ckks.SealedSecretContext) -> fpb.CkksSealedContext:
    return fpb.CkksSealedContext(
        federation=s.federation, run_id=s.run_id, lead=s.lead, member=s.member,
        member_agreement_public=s.member_agreement_public, ephemeral_public=s.ephemeral_public,
        public_context_digest=s.public_context_digest, ciphertext=s.ciphertext,
        signature=s.signature,
    )  # fmt: skip


def sealed_from_pb(m: fpb.CkksSealedContext) -> ckks.SealedSecretContext:
    return ckks.SealedSecretContext(
        m.federation, m.run_id, m.lead, m.member, m.member_agreement_public, m.ephemeral_public,
        m.public_context_digest, m.ciphertext, m.signature,
    )  # fmt: skip


def receipt_to_pb(r: ckks.UploadReceipt) -> fpb.CkksUploadReceipt:
    return fpb.CkksUploadReceipt(
        federation=r.federation, run_id=r.run_id, round=r.round, participant=r.participant,
        chunks=r.chunks, upload_digest=r.upload_digest, signature=r.signature,
    )  # fmt: skip


def receipt_from_pb(m: fpb.CkksUploadReceipt) -> ckks.UploadReceipt:
    return ckks.UploadReceipt(
        m.federation, m.run_id, m.round, m.participant, m.chunks, m.upload_digest, m.signature
    )


def attestation_to_pb(a: ckks.SumAttestation) -> fpb.CkksSumAttestation:
    return fpb.CkksSumAttestation(
        federation=a.federation, run_id=a.run_id, round=a.round, member=a.member,
        contributors=list(a.contributors), ciphertext_digest=a.ciphertext_digest,
        sum_digest=a.sum_digest, signature=a.signature,
    )  # fmt: skip


def attestation_from_pb(m: fpb.CkksSumAttestation) -> ckks.SumAttestation:
    return ckks.SumAttestation(
        m.federation, m.run_id, m.round, m.member, tuple(m.contributors), m.ciphertext_digest,
        m.sum_digest, m.signature,
    )  # fmt: skip


def round_config_digest(federation: str, run_id: bytes, application: bytes) -> bytes:
    """What the aggregator signs for a CKKS round (and the transcript's config_digest)."""
    return crypto.digest(ROUND_CONFIG_LABEL, federation, run_id, application)


def round_session_id(federation: str, run_id: bytes, round_number: int) -> bytes:
    """The round's session id (transcript and ledgers match rounds by it)."""
    return crypto.digest(ROUND_SESSION_LABEL, federation, run_id, round_number)


def committee_ids(federation) -> list[int]:
    """Roster ids of the decryption committee (lead first), from the federation config."""
    return [federation.member_by_name(name).id for name in federation.ckks.committee]


# --- the aggregator side ----------------------------------------------------------------


class SetupFailed(Exception):
    """The CKKS set-up could not complete (the text says why)."""


@dataclass
class _RoundUploads:
    round: int
    invited: set[int]
    accumulator: ckks.CiphertextAccumulator
    accepting: bool = True
    started: set[int] = field(default_factory=set)
    committed: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    refused: dict[int, str] = field(default_factory=dict)
    sum_chunks: list[bytes] = field(default_factory=list)
    sum_blob: bytes = b""
    attestations: dict[int, ckks.SumAttestation] = field(default_factory=dict)
    decrypt_refused: dict[int, str] = field(default_factory=dict)
    decrypted: bytes | None = None

    def settled(self, connected: set[int]) -> bool:
        """Everyone invited has uploaded, failed, refused or disconnected."""
        done = self.committed | self.failed | set(self.refused)
        return all(
            u in done or (u not in connected and u not in self.started) for u in self.invited
        )


class CkksCoordinator:
    """The aggregator's CKKS path: relays key custody, accumulates, asks the committee."""

    def __init__(self, aggregator) -> None:
        self.agg = aggregator
        self.fed = aggregator.federation
        self.committee = committee_ids(self.fed)
        self.lead = self.committee[0]
        self.run_id = b""
        self.event = asyncio.Event()
        self.enrolments: dict[int, ckks.MemberEnrolment] = {}
        self.release: fpb.CkksContextRelease | None = None
        self.ready: set[int] = set()
        self.setup_refused: dict[int, str] = {}
        self.announcement: ckks.PublicContextAnnouncement | None = None
        self.public_ctx = None
        self.params: ckks.CkksParameters | None = None
        self.uploads: _RoundUploads | None = None
        # One thread: the accumulator is touched by one operation at a time.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ckks-accumulate")

    # -- set-up ---------------------------------------------------------------------

    async def _until(self, done, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline and not self.agg.stopping.is_set():
            self.event.clear()
            await self.agg._wait(self.event, deadline - time.monotonic())

    async def set_up(self) -> dict:
        """Run the key-custody set-up; returns the transcript's description of it."""
        fed, agg = self.fed, self.agg
        seconds = fed.deadlines["advertise_keys"]
        missing = [m for m in self.committee if m not in agg.queues]
        if missing:
            raise SetupFailed(f"committee member(s) {missing} are not connected")
        self.run_id = os.urandom(16)
        setup = fpb.CkksRunSetup(
            run_id=self.run_id, committee=self.committee,
            max_clients=len(fed.participants), bits=fed.dp.bits,
        )  # fmt: skip
        await agg.broadcast({p: _event(setup=setup) for p in agg.queues})
        others = set(self.committee[1:])
        await self._until(lambda: others <= set(self.enrolments) | set(self.setup_refused), seconds)
        if not others <= set(self.enrolments):
            raise SetupFailed(
                f"no enrolment from committee member(s) {sorted(others - set(self.enrolments))}"
            )
        enrolments = fpb.CkksEnrolments(
            enrolments=[enrolment_to_pb(self.enrolments[m]) for m in sorted(others)]
        )
        await agg.broadcast({self.lead: _event(enrolments=enrolments)})
        await self._until(
            lambda: self.release is not None or self.lead in self.setup_refused, seconds
        )
        if self.release is None:
            raise SetupFailed(f"the lead {self.lead} released no public context")
        announcement = announcement_from_pb(self.release.announcement)
        try:
            self.public_ctx = ckks.verify_public_context(
                announcement, fed.roster[self.lead], federation=fed.name, run_id=self.run_id,
                n_clients=len(fed.participants), bits=fed.dp.bits,
            )  # fmt: skip
        except ckks.CkksError as exc:
            raise SetupFailed(f"the lead's public context is refused: {exc}") from None
        self.announcement, self.params = announcement, announcement.parameters
        sealed = {s.member: s for s in self.release.sealed}
        if set(sealed) != others:
            raise SetupFailed("the lead did not seal a secret context for every member")
        for p in list(agg.queues):
            delivery = fpb.CkksContextDelivery(announcement=self.release.announcement)
            if p in sealed:
                delivery.sealed.CopyFrom(sealed[p])
            await agg.broadcast({p: _event(context=delivery)})
        self.release = None  # the sealed blobs are not kept
        wanted = set(agg.queues)
        await self._until(lambda: wanted <= self.ready | set(self.setup_refused), seconds)
        not_ready = [m for m in self.committee if m not in self.ready]
        if not_ready:
            raise SetupFailed(f"committee member(s) {not_ready} did not confirm the keys")
        log.info("ckks set-up done: %d nodes ready, committee %s", len(self.ready), self.committee)
        return {
            "path": "ckks", "run_id": self.run_id.hex(), "committee": self.committee,
            "lead": self.lead, "context_digest": announcement.context_digest.hex(),
            "parameters": list(self.params.encoding()), "ready": sorted(self.ready),
            "refused": {str(k): v for k, v in self.setup_refused.items()},
        }  # fmt: skip

    # -- messages from nodes --------------------------------------------------------

    async def on_message(self, peer: int, request: fpb.NodeMessage, context) -> fpb.Ack:
        m = request.ckks
        kind = m.WhichOneof("body")
        st = self.uploads
        if kind == "enrolment":
            enrolment = enrolment_from_pb(m.enrolment)
            if peer not in self.committee[1:] or enrolment.member != peer:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not a committee member")
            self.enrolments[peer] = enrolment
        elif kind == "release":
            if peer != self.lead:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not the committee lead")
            self.release = m.release
        elif kind == "ready":
            self.ready.add(peer)
        elif kind == "refusal":
            reason = m.refusal[:200]
            if st is not None and request.round == st.round:
                if reason.startswith("decrypt:") and peer in self.committee:
                    st.decrypt_refused[peer] = reason
                elif peer in st.invited and peer not in st.started:
                    st.refused[peer] = reason
                    st.invited.discard(peer)
                log.info("participant %d refused round %d: %s", peer, st.round, reason)
            elif request.round == 0:
                self.setup_refused[peer] = reason
                log.warning("participant %d refused the ckks set-up: %s", peer, reason)
            else:
                log.info("participant %d: late refusal for round %d", peer, request.round)
        elif kind == "attestation":
            if st is None or request.round != st.round or peer not in self.committee:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no decryption is open")
            attestation = attestation_from_pb(m.attestation)
            if attestation.member != peer:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED, "attestation for another member"
                )
            st.attestations[peer] = attestation
        else:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty ckks message")
        self.event.set()
        return fpb.Ack(accepted=True)

    async def upload(self, request_iterator, context) -> fpb.Ack:
        """UploadCiphertext: header, chunks (added as they arrive), then the signed receipt."""
        agg = self.agg
        peer = await agg._peer(context)
        st = self.uploads
        if st is None or not st.accepting:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no upload stage is open")
        if peer not in st.invited:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not invited to this round")
        if peer in st.started:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "already uploaded this round")
        st.started.add(peer)
        acc = st.accumulator
        loop = asyncio.get_running_loop()
        begun = committed = False
        problem: tuple[grpc.StatusCode, str] | None = None
        try:
            async for msg in request_iterator:
                kind = msg.WhichOneof("body")
                if not st.accepting:
                    problem = (grpc.StatusCode.DEADLINE_EXCEEDED, "the upload deadline passed")
                    break
                if not begun:
                    h = msg.header
                    if kind != "header" or h.round != st.round or h.session_id != self.run_id:
                        problem = (grpc.StatusCode.INVALID_ARGUMENT, "bad upload header")
                        break
                    if h.total_bytes > acc.n_chunks * MAX_CHUNK_BYTES:
                        problem = (grpc.StatusCode.RESOURCE_EXHAUSTED, "announced upload too large")
                        break
                    announced, received = h.total_bytes, 0
                    await loop.run_in_executor(self.executor, acc.begin, peer)
                    begun = True
                elif kind == "chunk":
                    if len(msg.chunk) > MAX_CHUNK_BYTES:
                        problem = (grpc.StatusCode.RESOURCE_EXHAUSTED, "chunk larger than 1 MiB")
                        break
                    received += len(msg.chunk)
                    if received > announced:
                        problem = (grpc.StatusCode.INVALID_ARGUMENT, "more data than announced")
                        break
                    await loop.run_in_executor(self.executor, acc.add_chunk, peer, msg.chunk)
                elif kind == "receipt":
                    if received != announced:
                        problem = (
                            grpc.StatusCode.INVALID_ARGUMENT,
                            f"received {received} of the {announced} bytes announced",
                        )
                        break
                    receipt = receipt_from_pb(msg.receipt)
                    # checked here too: a bad receipt must not reach (and retire) the committee
                    ckks.verify_upload_receipts(
                        [receipt], {peer: self.fed.roster[peer]}, federation=self.fed.name,
                        run_id=self.run_id, round=st.round, chunks=acc.n_chunks,
                    )  # fmt: skip
                    await loop.run_in_executor(self.executor, acc.commit, peer, receipt)
                    committed = True
                    break
                else:
                    problem = (grpc.StatusCode.INVALID_ARGUMENT, "unexpected upload message")
                    break
        except ckks.CkksError as exc:
            problem = (grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        finally:
            if committed:
                st.committed.add(peer)
            else:
                if begun:
                    await loop.run_in_executor(self.executor, acc.abandon, peer)
                st.failed.add(peer)
                log.info("round %d: upload of participant %d abandoned", st.round, peer)
            self.event.set()
        if problem is None and not committed:
            problem = (grpc.StatusCode.INVALID_ARGUMENT, "upload ended without a receipt")
        if problem is not None:
            log.warning("participant %d: upload refused: %s", peer, problem[1])
            await context.abort(*problem)
        return fpb.Ack(accepted=True)

    async def get_encrypted_sum(self, request, context):
        peer = await self.agg._peer(context)
        st = self.uploads
        if peer not in self.committee or st is None or request.round != st.round or not st.sum_blob:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no encrypted sum to decrypt")
        header = fpb.VectorHeader(round=st.round, session_id=self.run_id)
        for chunk in transport.chunk_vector(st.sum_blob, header):
            yield chunk

    async def upload_decrypted_sum(self, request_iterator, context) -> fpb.Ack:
        peer = await self.agg._peer(context)
        st = self.uploads
        if peer != self.lead or st is None or not st.sum_blob or st.decrypted is not None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no decrypted sum expected")

        try:
            received = await transport.receive_vector(
                request_iterator,
                expected_bytes=self.agg.params.padded_dim * 8,
                round=st.round,
                session_id=self.run_id,
            )
        except transport.VectorTransferError as exc:
            await context.abort(exc.code, exc.detail)
        st.decrypted = received.data
        self.event.set()
        return fpb.Ack(accepted=True)

    # -- a round --------------------------------------------------------------------

    async def run_round(self, r: int) -> bool:
        agg, fed = self.agg, self.fed
        participants = sorted(p for p in agg.queues if p in self.ready)
        if len(participants) < max(3, fed.dp.minimum_contributors):
            log.error("round %d: only %d participants connected", r, len(participants))
            agg.transcript.append(
                "round-aborted", {"round": r, "reason": "not-enough-participants", "stage": "join"}
            )
            return False
        missing = [m for m in self.committee if m not in participants]
        if missing:
            # nobody could decrypt this round's sum: refuse it before anyone trains or
            # spends privacy on an upload
            log.error("round %d: committee member(s) %s not connected", r, missing)
            agg.transcript.append(
                "round-aborted",
                {"round": r, "reason": "committee-member-missing", "stage": "join",
                 "path": "ckks", "missing": missing},
            )  # fmt: skip
            await agg._announce(r, released=False, reason="committee-member-missing")
            return False
        agg.round = r
        rotation_seed, application = agg.prepare_round(r)
        app_bytes = application.SerializeToString()
        digest = round_config_digest(fed.name, self.run_id, app_bytes)
        signed = fpb.CkksRoundConfig(
            run_id=self.run_id, application=app_bytes, signature=agg.signing_key.sign(digest)
        )
        accumulator = ckks.CiphertextAccumulator(
            self.public_ctx, self.params, agg.params.padded_dim, federation=fed.name,
            run_id=self.run_id, round=r,
        )  # fmt: skip
        st = self.uploads = _RoundUploads(r, set(participants), accumulator)
        t_round = t0 = time.perf_counter()
        agg.set_status(state="running", round=r, stage="upload", contributors=len(participants))
        await agg.broadcast({u: _event(round=r, round_config=signed) for u in participants})
        await self._until(lambda: st.settled(set(agg.queues)), fed.deadlines["masked_input"])
        st.accepting = False
        loop = asyncio.get_running_loop()
        for p in sorted(st.started - st.committed - st.failed):
            await loop.run_in_executor(self.executor, accumulator.abandon, p)
            st.failed.add(p)
        stage_seconds = {"upload": time.perf_counter() - t0}
        contributors = accumulator.contributors
        u1 = sorted(set(participants) - set(st.refused))
        base = {
            "path": "ckks", "run_id": self.run_id.hex(),
            "session_id": round_session_id(fed.name, self.run_id, r).hex(),
            "config_digest": digest.hex(), "refused": {str(k): v for k, v in st.refused.items()},
        }  # fmt: skip
        if len(contributors) < fed.dp.minimum_contributors or self.agg.stopping.is_set():
            reason = "shutdown" if self.agg.stopping.is_set() else "too-few-contributors"
            return await self._abort(r, reason, "upload", contributors)
        # The encrypted sum goes to every committee member (they fetch it by stream).
        t0 = time.perf_counter()
        st.sum_chunks = await loop.run_in_executor(self.executor, accumulator.result)
        st.sum_blob = b"".join(st.sum_chunks)
        receipts = [receipt_to_pb(accumulator.receipts[u]) for u in contributors]
        cdigest = ckks.ciphertext_digest(st.sum_chunks)
        for m in self.committee:
            request = fpb.CkksDecryptRequest(
                receipts=receipts, chunk_bytes=[len(c) for c in st.sum_chunks],
                ciphertext_digest=cdigest, upload_sum=(m == self.lead),
            )  # fmt: skip
            await agg.broadcast({m: _event(round=r, decrypt=request)})
        committee = set(self.committee)

        def unfinished() -> set[int]:  # members whose part is still to come
            waiting = committee - set(st.attestations)
            return waiting | {self.lead} if st.decrypted is None else waiting

        await self._until(
            lambda: (
                not unfinished()
                or bool(st.decrypt_refused)
                or not unfinished() <= set(agg.queues)  # one of them left: it will not come
            ),
            fed.deadlines["unmasking"],
        )
        stage_seconds["decrypt"] = time.perf_counter() - t0
        keys = {m: fed.roster[m] for m in self.committee}
        gone = sorted(unfinished() - set(agg.queues))
        if gone:
            log.error("round %d: nothing released: committee member(s) %s left", r, gone)
            return await self._abort(r, "committee-member-missing", "decrypt", contributors)
        try:
            if st.decrypt_refused:
                raise ckks.CommitteeDisagreement(f"decryption refused: {st.decrypt_refused}")
            agreed = ckks.agree_on_sum(
                st.attestations.values(), keys, federation=fed.name, run_id=self.run_id, round=r
            )
            if st.attestations[self.lead].contributors != contributors:
                raise ckks.CommitteeDisagreement("the committee signed another contributor set")
            if st.decrypted is None:
                raise ckks.CommitteeDisagreement("the lead sent no decrypted sum")
            wide = np.frombuffer(st.decrypted, dtype="<u8")
            total = wide.astype(np.uint32 if fed.dp.bits <= 32 else np.uint64)
            if ckks.sum_digest(total, fed.dp.bits) != agreed:
                raise ckks.CommitteeDisagreement(
                    "the decrypted sum does not match the agreed digest"
                )
        except ckks.CkksError as exc:
            log.error("round %d: nothing released: %s", r, exc)
            return await self._abort(r, "committee-disagreement", "decrypt", contributors)
        dropped = sorted(set(u1) - set(contributors))
        fields = {
            **base,
            "survivor_sets": {
                "U1": u1, "U2": u1, "U3": list(contributors), "U4": list(contributors),
                "U5": list(contributors),
            },
            "dropped": {"masked-input": dropped} if dropped else {},  # audit.STAGES name
            "misbehaving": {},
            "contributors": list(contributors),
            "committee": self.committee,
            "ciphertext_digest": cdigest.hex(),
            "attestations": [
                {"member": a.member, "signature": a.signature.hex()}
                for a in st.attestations.values()
            ],
            "stage_seconds": stage_seconds,
        }  # fmt: skip
        attestations = [attestation_to_pb(st.attestations[m]) for m in self.committee]
        await agg.release_round(
            r, total, contributors, rotation_seed, fields, t_round, attestations=attestations
        )
        self.uploads = None
        return True

    async def _abort(self, r: int, reason: str, stage: str, contributors) -> bool:
        log.error("round %d aborted at %s: %s", r, stage, reason)
        self.agg.transcript.append(
            "round-aborted",
            {"round": r, "reason": reason, "stage": stage, "path": "ckks",
             "contributors": list(contributors)},
        )  # fmt: skip
        await self.agg._announce(r, released=False, reason=reason)
        self.uploads = None
        return False


def _event(*, round: int = 0, **body) -> fpb.AggregatorEvent:
    return fpb.AggregatorEvent(round=round, ckks=fpb.CkksEvent(**body))


# --- the participant side -----------------------------------------------------------------


class CkksNode:
    """A participant's CKKS path (and, for committee members, their decryption role)."""

    def __init__(self, participant) -> None:
        self.p = participant
        self.fed = participant.config.federation
        self.me = participant.member.id
        self.committee = committee_ids(self.fed)
        self.lead = self.committee[0]
        self.run_id: bytes | None = None
        self.agreement: crypto.AgreementKey | None = None
        self.keys: ckks.CommitteeKeys | None = None
        self.public_context: bytes | None = None  # the verified serialized public context
        self.params: ckks.CkksParameters | None = None
        self.member: ckks.CommitteeMember | None = None
        self.pending: dict[int, dict] = {}  # round -> what the ledger revision needs
        self.pool = None

    # -- messages -------------------------------------------------------------------

    async def _send(self, round_number: int = 0, **body) -> None:
        await self.p.stub.Submit(
            fpb.NodeMessage(round=round_number, ckks=fpb.CkksNodeMessage(**body)),
            timeout=SUBMIT_TIMEOUT,
        )

    async def _refuse(self, round_number: int, reason: str) -> None:
        log.warning("ckks: refused%s: %s", f" round {round_number}" if round_number else "", reason)
        try:
            await self._send(round_number, refusal=reason[:200])
        except grpc.aio.AioRpcError as exc:
            log.warning("could not tell the aggregator: %s", exc.code().name)

    async def on_event(self, event: fpb.AggregatorEvent) -> None:
        e = event.ckks
        kind = e.WhichOneof("body")
        try:
            if kind == "setup":
                await self.on_setup(e.setup)
            elif kind == "enrolments":
                await self.on_enrolments(e.enrolments)
            elif kind == "context":
                await self.on_context(e.context)
            elif kind == "round_config":
                await self.on_round(event.round, e.round_config)
            elif kind == "decrypt":
                await self.on_decrypt(event.round, e.decrypt)
        except (ckks.CkksError, transport.VectorTransferError) as exc:
            await self._refuse(event.round, f"{kind}: {exc}")
        except grpc.aio.AioRpcError as exc:  # e.g. the upload deadline passed
            log.warning("ckks %s (round %d): %s %s", kind, event.round, exc.code().name,
                        exc.details())  # fmt: skip

    async def on_setup(self, setup: fpb.CkksRunSetup) -> None:
        if list(setup.committee) != self.committee:
            raise ckks.ContextAuthenticationError(
                "the aggregator names another committee than the federation config"
            )
        if setup.bits != self.fed.dp.bits:
            raise ckks.ContextAuthenticationError("set-up bits differ from the federation config")
        self.run_id = setup.run_id
        self.public_context = self.params = self.member = None
        if self.me in self.committee[1:]:
            self.agreement, enrolment = ckks.enrol_member(
                self.p.signing_key, member=self.me, federation=self.fed.name, run_id=self.run_id
            )
            await self._send(enrolment=enrolment_to_pb(enrolment))

    async def on_enrolments(self, message: fpb.CkksEnrolments) -> None:
        if self.me != self.lead or self.run_id is None:
            return
        fed = self.fed
        loop = asyncio.get_running_loop()
        self.keys = await loop.run_in_executor(
            None,
            lambda: ckks.CommitteeKeys.generate(
                len(fed.participants), fed.dp.bits, federation=fed.name, run_id=self.run_id,
                lead=self.me, signing_key=self.p.signing_key,
            ),
        )  # fmt: skip
        sealed = []
        for m in message.enrolments:
            enrolment = enrolment_from_pb(m)
            if enrolment.member not in self.committee[1:]:
                raise ckks.ContextAuthenticationError(
                    f"enrolment of {enrolment.member}, not a member"
                )
            sealed.append(
                sealed_to_pb(self.keys.seal_secret_context(enrolment, fed.roster[enrolment.member]))
            )
        release = fpb.CkksContextRelease(
            announcement=announcement_to_pb(self.keys.announcement()), sealed=sealed
        )
        await self._send(release=release)

    async def on_context(self, delivery: fpb.CkksContextDelivery) -> None:
        fed = self.fed
        announcement = announcement_from_pb(delivery.announcement)
        # Refuse (visibly) a public context not signed by the lead the roster names.
        ckks.verify_public_context(
            announcement, fed.roster[self.lead], federation=fed.name, run_id=self.run_id,
            n_clients=len(fed.participants), bits=fed.dp.bits,
        )  # fmt: skip
        if self.me == self.lead:
            if self.keys is None or announcement != self.keys.announcement():
                raise ckks.ContextAuthenticationError("the relayed announcement is not this lead's")
            secret = self.keys.secret_context()
        elif self.me in self.committee:
            if not delivery.HasField("sealed") or self.agreement is None:
                raise ckks.ContextAuthenticationError("no sealed secret context for this member")
            secret = ckks.open_secret_context(
                sealed_from_pb(delivery.sealed), self.agreement, member=self.me,
                lead_public_key=fed.roster[self.lead], announcement=announcement,
                federation=fed.name, run_id=self.run_id,
            )  # fmt: skip
            self.agreement.erase()
            self.agreement = None
        else:
            secret = None
        if secret is not None:
            self.member = ckks.CommitteeMember(
                self.me, secret, announcement.parameters, self.p.signing_key,
                federation=fed.name, run_id=self.run_id, roster=fed.roster,
                minimum_contributors=fed.dp.minimum_contributors,
            )  # fmt: skip
            if self.keys is not None:
                self.keys.erase()  # the member object holds the lead's context from here on
        self.public_context = announcement.public_context
        self.params = announcement.parameters
        log.info("ckks: public context verified (signed by lead %d)", self.lead)
        await self._send(ready=True)

    # -- a round --------------------------------------------------------------------

    def check_round(self, round_number: int, cfg: fpb.CkksRoundConfig):
        fed, p = self.fed, self.p
        if self.public_context is None or cfg.run_id != self.run_id:
            raise RoundRefused("no verified public context for this run")
        digest = round_config_digest(fed.name, cfg.run_id, cfg.application)
        if not crypto.verify_signature(fed.aggregator.signing_public_key, digest, cfg.signature):
            raise RoundRefused("round config not signed by the aggregator")
        app = fpb.RoundApplication.FromString(cfg.application)
        if app.ddg.bits != self.params.bits:
            raise RoundRefused("round bits differ from the announced CKKS parameters")
        params = p.check_application(app, round_number, bits=self.params.bits)
        return app, params, digest

    async def on_round(self, round_number: int, cfg: fpb.CkksRoundConfig) -> None:
        p = self.p
        try:
            app, params, digest = self.check_round(round_number, cfg)
        except RoundRefused as exc:
            await self._refuse(round_number, f"refused: {exc}")
            return
        timings: dict[str, float] = {}
        meta = {
            "round": round_number, "node_id": self.me, "path": "ckks",
            "session_id": round_session_id(self.fed.name, self.run_id, round_number).hex(),
            "config_digest": digest.hex(), "provisional": True, "verified_survivors": None,
            "assumed_colluders": p.config.policy.assumed_colluders,
        }  # fmt: skip
        try:
            encoded = await p._encode_update(app, params, timings)
        except (RoundRefused, grpc.aio.AioRpcError, ValueError) as exc:
            await self._refuse(round_number, f"refused: {exc}")
            return
        # Once the ciphertext leaves, a sum with our noise may be released with as few
        # contributors as the committee accepts: charge that worst case now (fail closed).
        record = p._worst_case_record(params, self.fed.dp.minimum_contributors)
        try:
            p.ledger.charge(record, meta=meta)
        except dp.PrivacyBudgetExceeded as exc:
            await self._refuse(round_number, f"refused: privacy budget: {exc}")
            return
        self.pending[round_number] = {"params": params, "meta": meta, "timings": timings}
        t0 = time.perf_counter()
        chunks = await asyncio.get_running_loop().run_in_executor(
            p.training_executor, self._encrypt, encoded
        )
        receipt = ckks.sign_upload_receipt(
            chunks, p.signing_key, federation=self.fed.name, run_id=self.run_id,
            round=round_number, participant=self.me,
        )  # fmt: skip
        timings["ckks_encrypt"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if p.crash_before_upload == round_number:
            log.warning("fault injection: exiting before the upload of round %d", round_number)
            os._exit(137)
        await p.stub.UploadCiphertext(
            _upload_messages(chunks, receipt, round_number, self.run_id), timeout=UPLOAD_TIMEOUT
        )
        timings["network_upload"] = time.perf_counter() - t0
        if p.crash_after_upload == round_number:
            log.warning("fault injection: exiting right after the upload of round %d", round_number)
            os._exit(137)

    def _encrypt(self, encoded: np.ndarray) -> list[bytes]:
        chunks = self.params.chunks(encoded.size)
        if chunks >= POOL_MIN_CHUNKS:
            # in worker processes even when there is one: TenSEAL holds the GIL, and
            # the node's event loop (stream, uploads) must keep running meanwhile
            workers = max(1, min(4, (os.cpu_count() or 2) - 1))
            if self.pool is None:  # created once (spawn: safe beside gRPC)
                self.pool = ckks.encryption_pool(workers)
                log.info("encrypting %d-chunk updates in %d worker process(es)", chunks, workers)
            return ckks.encrypt_update(
                encoded, self.params.bits, self.public_context, workers, executor=self.pool
            )
        return ckks.encrypt_update(encoded, self.params.bits, self.public_context)

    async def on_decrypt(self, round_number: int, request: fpb.CkksDecryptRequest) -> None:
        if self.member is None:
            raise ckks.CkksDecryptionRefused("this node holds no decryption key")
        p = self.p
        expected = sum(request.chunk_bytes)
        call = p.stub.GetEncryptedSum(fpb.ModelRequest(round=round_number), timeout=UPLOAD_TIMEOUT)
        received = await transport.receive_vector(call, expected_bytes=expected)
        data, chunks, offset = received.data, [], 0
        for size in request.chunk_bytes:
            chunks.append(data[offset : offset + size])
            offset += size
        if ckks.ciphertext_digest(chunks) != request.ciphertext_digest:
            raise ckks.CkksDecryptionRefused("the encrypted sum does not match its digest")
        receipts = [receipt_from_pb(r) for r in request.receipts]
        total, attestation = await asyncio.get_running_loop().run_in_executor(
            p.crypto_executor,
            lambda: self.member.decrypt_and_attest(chunks, receipts, round=round_number),
        )
        if request.upload_sum:
            header = fpb.VectorHeader(round=round_number, session_id=self.run_id)
            vector = np.ascontiguousarray(total, dtype="<u8").tobytes()
            await p.stub.UploadDecryptedSum(
                transport.chunk_vector(vector, header), timeout=UPLOAD_TIMEOUT
            )
        await self._send(round_number, attestation=attestation_to_pb(attestation))

    def on_result(self, result: fpb.RoundResult) -> None:
        """Revise the provisional charge to the contributor set the committee signed."""
        pending = self.pending.pop(result.round, None)
        if pending is None:
            return
        p = self.p
        if not result.released:
            log.warning("round %d not released: the worst-case charge stays", result.round)
            return
        try:
            ckks.agree_on_sum(
                [attestation_from_pb(a) for a in result.attestations],
                {m: self.fed.roster[m] for m in self.committee},
                federation=self.fed.name, run_id=self.run_id, round=result.round,
            )  # fmt: skip
        except ckks.CkksError as exc:
            log.warning(
                "round %d: result not signed by the committee (%s): charge stays", result.round, exc
            )
            return
        contributors = tuple(result.attestations[0].contributors)
        if self.me not in contributors:
            log.warning("round %d: our upload is not in the sum; the charge stays", result.round)
            return
        params = pending["params"]
        honest = max(1, len(contributors) - p.config.policy.assumed_colluders)
        record = dp.RoundRecord(
            contributors=honest, sigma=params.sigma, gamma=params.gamma, clip=params.clip,
            padded_dim=params.padded_dim, beta=params.beta,
        )  # fmt: skip
        meta = {**pending["meta"], "provisional": False, "verified_survivors": len(contributors)}
        p.ledger.revise_last(record, meta=meta)
        p.rounds_done += 1
        eps, _ = p.ledger.epsilon()
        log.info("round %d: %d contributors signed by the committee; epsilon %.4f",
                 result.round, len(contributors), eps)  # fmt: skip
        p._write_timings_for(result.round, pending["timings"])

    def close(self) -> None:
        if self.member is not None:
            self.member.retire()
        if self.keys is not None:
            self.keys.erase()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _upload_messages(chunks: list[bytes], receipt, round_number: int, run_id: bytes):
    total = sum(len(c) for c in chunks)
    yield fpb.CiphertextUpload(
        header=fpb.VectorHeader(round=round_number, session_id=run_id, total_bytes=total)
    )
    for c in chunks:
        yield fpb.CiphertextUpload(chunk=c)
    yield fpb.CiphertextUpload(receipt=receipt_to_pb(receipt))
