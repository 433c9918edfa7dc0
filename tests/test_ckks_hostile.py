"""The CKKS aggregator's upload path against hostile sites.

One real aggregator process (`[federation] path = "ckks"`, 13 sites, committee
site-1 + site-2), driven over real mutual-TLS channels by this test, which plays every
site: it answers the key-custody set-up itself (site-2 enrols, site-1 generates and
releases the committee key, the others confirm; site-12 refuses), so that round 1
opens a real upload stage. Each site then makes one hostile (or, as a control, one
honest) UploadCiphertext stream, and the run's signed transcript says whose upload
ended up in the encrypted sum.

Every hostile upload is otherwise well formed (real ciphertexts under the round's
public context, a receipt signed by the uploader), so each refusal is due to the one
check under test: without that check the upload would be accepted.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from blindsum.v1 import federation_pb2 as fpb
from blindsum.v1 import federation_pb2_grpc as fgrpc
from node import ckks
from node.ckks_rounds import (
    MAX_CHUNK_BYTES,
    announcement_to_pb,
    enrolment_from_pb,
    enrolment_to_pb,
    receipt_to_pb,
    sealed_to_pb,
)
from node.config import load_federation
from node.pki import load_signing_key, read_ca_certificate
from node.provision import (
    FederationOptions,
    provision,
    start_aggregator,
    stop_all,
    wait_for_address,
)

pytestmark = pytest.mark.timeout(120)

NODES = 14
OK = "OK"
DEADLINES = {
    "join": 30.0, "advertise_keys": 20.0, "share_keys": 20.0, "masked_input": 30.0,
    "consistency": 5.0, "unmasking": 2.0,
}  # fmt: skip
EVENT_TIMEOUT = 30.0


class _Site:
    """One site's mTLS channel, its Join event stream (read by a thread) and its keys."""

    def __init__(self, fed, federation, address: str, index: int) -> None:
        member = federation.participants[index]
        self.id, self.name = member.id, member.name
        d = fed.root / member.name
        creds = grpc.ssl_channel_credentials(
            root_certificates=read_ca_certificate(fed.root / "ca" / "ca.crt"),
            private_key=(d / f"{member.name}.key").read_bytes(),
            certificate_chain=(d / f"{member.name}.crt").read_bytes(),
        )
        self.channel = grpc.secure_channel(
            address,
            creds,
            options=[
                ("grpc.ssl_target_name_override", "aggregator"),
                ("grpc.max_send_message_length", 4 << 20),
                ("grpc.max_receive_message_length", 16 << 20),
            ],
        )
        self.stub = fgrpc.AggregationStub(self.channel)
        self.signing_key = load_signing_key(d / f"{member.name}.signing.key")
        self.events: queue.Queue = queue.Queue()
        self.fed_name = federation.name

    def join(self) -> None:
        def read() -> None:
            try:
                for event in self.stub.Join(fpb.JoinRequest(federation=self.fed_name)):
                    self.events.put(event)
            except grpc.RpcError as exc:
                self.events.put(exc)

        threading.Thread(target=read, daemon=True, name=f"join-{self.name}").start()

    def next_ckks(self, kind: str) -> fpb.AggregatorEvent:
        """The next CKKS event of this kind (other events are skipped)."""
        deadline = time.monotonic() + EVENT_TIMEOUT
        while True:
            event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(event, grpc.RpcError):
                raise AssertionError(f"{self.name}: event stream ended: {event}")
            if event.HasField("ckks") and event.ckks.WhichOneof("body") == kind:
                return event

    def send(self, **body) -> None:
        self.stub.Submit(fpb.NodeMessage(round=0, ckks=fpb.CkksNodeMessage(**body)), timeout=10)

    def upload(self, messages) -> str | tuple[grpc.StatusCode, str]:
        try:
            self.stub.UploadCiphertext(iter(list(messages)), timeout=30)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
        return OK


def _messages(header=None, chunks=(), receipt=None):
    out = []
    if header is not None:
        out.append(fpb.CiphertextUpload(header=header))
    out += [fpb.CiphertextUpload(chunk=c) for c in chunks]
    if receipt is not None:
        out.append(fpb.CiphertextUpload(receipt=receipt_to_pb(receipt)))
    return out


def _transcript(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "transcript.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def hostile_round(tmp_path_factory):
    """Runs the scenario once; returns what each probe got back, and the run's record."""
    options = FederationOptions(
        nodes=NODES, rounds=1, epsilon=1000.0, epsilon_cap=1e6, path="ckks", committee=(0, 1),
        deadlines=DEADLINES,
    )  # fmt: skip
    fed = provision(tmp_path_factory.mktemp("ckks-hostile") / "fed", options)
    federation = load_federation(fed.federation)
    proc = start_aggregator(fed)
    sites: dict[int, _Site] = {}
    out: dict[str, object] = {}
    try:
        address = wait_for_address(fed, proc)
        sites = {i + 1: _Site(fed, federation, address, i) for i in range(NODES)}
        s = sites

        # -- no CKKS round open: before anyone joined ------------------------------------
        out["before-join"] = s[1].upload(
            _messages(fpb.VectorHeader(round=1, total_bytes=1), [b"x"])
        )

        for site in s.values():
            site.join()
        run_id = s[1].next_ckks("setup").ckks.setup.run_id
        for i in range(2, NODES + 1):
            assert s[i].next_ckks("setup").ckks.setup.run_id == run_id

        # -- no CKKS round open: during the key-custody set-up ---------------------------
        out["during-setup"] = s[3].upload(
            _messages(fpb.VectorHeader(round=1, session_id=run_id, total_bytes=1), [b"x"])
        )

        # site-2 enrols; the lead (site-1) generates the key and seals it to site-2.
        _, enrolment = ckks.enrol_member(
            s[2].signing_key, member=2, federation=federation.name, run_id=run_id
        )
        s[2].send(enrolment=enrolment_to_pb(enrolment))
        relayed = s[1].next_ckks("enrolments").ckks.enrolments.enrolments
        keys = ckks.CommitteeKeys.generate(
            NODES, federation.dp.bits, federation=federation.name, run_id=run_id, lead=1,
            signing_key=s[1].signing_key,
        )  # fmt: skip
        sealed = [
            sealed_to_pb(keys.seal_secret_context(enrolment_from_pb(e), federation.roster[2]))
            for e in relayed
        ]
        s[1].send(
            release=fpb.CkksContextRelease(
                announcement=announcement_to_pb(keys.announcement()), sealed=sealed
            )
        )
        for i, site in s.items():
            site.next_ckks("context")
            if i == 12:  # refuses the set-up: it will not be invited to round 1
                site.send(refusal="set-up: refused by the test")
            else:
                site.send(ready=True)
        public = keys.public_context_bytes
        keys.erase()

        # -- round 1: a real upload stage is open ----------------------------------------
        r = s[1].next_ckks("round_config").round
        assert r == 1
        for i in range(2, NODES + 1):
            if i != 12:
                assert s[i].next_ckks("round_config").round == r
        start = _transcript(fed.run_dir)[0]
        padded_dim = start["body"]["dp"]["padded_dim"]
        rng = np.random.default_rng(0)
        bits = federation.dp.bits
        chunks_a = ckks.encrypt_update(rng.integers(0, 1 << bits, padded_dim), bits, public)
        chunks_b = ckks.encrypt_update(rng.integers(0, 1 << bits, padded_dim), bits, public)
        n = len(chunks_a)
        size = sum(len(c) for c in chunks_a)
        out["n_chunks"] = n

        def header(**kw):
            fields = {"round": r, "session_id": run_id, "total_bytes": size, **kw}
            return fpb.VectorHeader(**fields)

        def receipt(site: int, chunks=chunks_a, *, key_of: int | None = None, **kw):
            binding = {"federation": federation.name, "run_id": run_id, "round": r, **kw}
            return ckks.sign_upload_receipt(
                chunks, s[key_of or site].signing_key, participant=site, **binding
            )

        def honest(site: int, chunks=chunks_a, **header_fields):
            return _messages(header(**header_fields), chunks, receipt(site, chunks))

        # The round's first upload: real ciphertexts that its receipt's digest does not
        # cover, into an empty sum (see test_first_upload_with_bad_digest_...).
        out["first-upload-bad-digest"] = s[14].upload(
            _messages(header(), chunks_b, receipt(14, chunks_a))
        )
        # Control: an honest upload is accepted; a second one from the same site is not.
        # (From here on the running sum is never only the upload being abandoned.)
        out["honest"] = s[1].upload(honest(1))
        out["duplicate-after-commit"] = s[1].upload(honest(1))

        # The header announces more bytes than the round's chunks may hold.
        out["header-too-large"] = s[3].upload(honest(3, total_bytes=n * MAX_CHUNK_BYTES + 1))
        # A failed upload uses up the site's one upload of the round.
        out["retry-after-failure"] = s[3].upload(honest(3))
        # The header names another round, or another run.
        out["header-wrong-round"] = s[4].upload(honest(4, round=r + 1))
        out["header-wrong-run"] = s[5].upload(honest(5, session_id=os.urandom(16)))
        # A chunk larger than 1 MiB (under the 2 MiB gRPC limit: the handler refuses it).
        out["chunk-too-large"] = s[6].upload(
            _messages(header(), [b"\0" * (MAX_CHUNK_BYTES + 1)], receipt(6))
        )
        # Real ciphertexts, but not the ones the (genuinely signed) receipt's digest covers.
        out["chunk-bad-digest"] = s[7].upload(_messages(header(), chunks_b, receipt(7, chunks_a)))
        # A receipt naming site-8 with the right digest, signed with site-1's key.
        out["receipt-other-key"] = s[8].upload(_messages(header(), chunks_a, receipt(8, key_of=1)))
        # A receipt signed by site-9 for another round (the chunks match its digest).
        out["receipt-wrong-round"] = s[9].upload(
            _messages(header(), chunks_a, receipt(9, round=r + 1))
        )
        # site-1's genuine receipt replayed by site-10.
        out["receipt-of-another-site"] = s[10].upload(_messages(header(), chunks_a, receipt(1)))
        # A chunk that is not a ciphertext for the round's context.
        out["chunk-not-ciphertext"] = s[11].upload(
            _messages(header(), [b"\x01" * len(chunks_a[0])] + chunks_a[1:], receipt(11))
        )
        # site-12 refused the set-up, so it is not invited.
        out["not-invited"] = s[12].upload(honest(12))
        # The header understates the size (the chunks and receipt are honest).
        out["header-too-small"] = s[13].upload(honest(13, total_bytes=1))

        # A second stream from site-2 while its first is still open.
        gate, sent = threading.Event(), threading.Event()

        def held_open():
            yield fpb.CiphertextUpload(header=header())
            for c in chunks_a:
                yield fpb.CiphertextUpload(chunk=c)
            sent.set()
            gate.wait(20)
            yield fpb.CiphertextUpload(receipt=receipt_to_pb(receipt(2)))

        first = s[2].stub.UploadCiphertext.future(held_open(), timeout=30)
        assert sent.wait(10)
        time.sleep(1.0)  # the first stream's handler has registered the upload
        out["duplicate-concurrent"] = s[2].upload(honest(2))
        gate.set()
        try:
            first.result()
            out["first-of-concurrent"] = OK
        except grpc.RpcError as exc:
            out["first-of-concurrent"] = (exc.code(), exc.details())

        # Every invited site has now uploaded or failed: the stage closes, the round ends.
        assert proc.wait(timeout=60) is not None
    finally:
        for site in sites.values():
            site.channel.close()
        stop_all([proc])
    out["records"] = _transcript(fed.run_dir)
    out["log"] = (fed.root / "aggregator.log").read_text()
    return out


def _refused(outcome, code: grpc.StatusCode, *fragments: str) -> None:
    assert outcome != OK, "accepted"
    got, detail = outcome
    assert got == code, (got, detail)
    for fragment in fragments:
        assert fragment in detail, detail


def _round_record(records: list[dict]) -> dict:
    (body,) = [r["body"] for r in records if r["kind"] in ("round", "round-aborted")]
    return body


def test_honest_control_is_accepted(hostile_round):
    assert hostile_round["honest"] == OK
    assert hostile_round["first-of-concurrent"] == OK


@pytest.mark.parametrize("probe", ["before-join", "during-setup"])
def test_upload_without_open_round_is_failed_precondition(hostile_round, probe):
    _refused(hostile_round[probe], grpc.StatusCode.FAILED_PRECONDITION, "no upload stage is open")


def test_header_announcing_too_many_bytes_is_refused(hostile_round):
    _refused(
        hostile_round["header-too-large"],
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "announced upload too large",
    )


@pytest.mark.parametrize("probe", ["header-wrong-round", "header-wrong-run"])
def test_header_for_another_round_or_run_is_refused(hostile_round, probe):
    _refused(hostile_round[probe], grpc.StatusCode.INVALID_ARGUMENT, "bad upload header")


def test_chunk_over_one_mib_is_resource_exhausted(hostile_round):
    _refused(
        hostile_round["chunk-too-large"], grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than 1 MiB"
    )


def test_chunk_not_matching_the_receipt_digest_is_refused(hostile_round):
    _refused(
        hostile_round["chunk-bad-digest"],
        grpc.StatusCode.INVALID_ARGUMENT,
        "does not match its receipt",
    )


def test_chunk_that_is_not_a_ciphertext_is_refused(hostile_round):
    _refused(
        hostile_round["chunk-not-ciphertext"],
        grpc.StatusCode.INVALID_ARGUMENT,
        "is not a ciphertext for this context",
    )


@pytest.mark.parametrize(
    "probe, fragment",
    [
        ("receipt-other-key", "upload receipt of participant 8: signature does not verify"),
        ("receipt-wrong-round", "upload receipt of participant 9 is for another run or round"),
        ("receipt-of-another-site", "upload receipt from unknown participant 1"),
    ],
)
def test_forged_receipt_is_refused_at_upload(hostile_round, probe, fragment):
    _refused(hostile_round[probe], grpc.StatusCode.INVALID_ARGUMENT, fragment)


def test_site_not_invited_is_permission_denied(hostile_round):
    _refused(hostile_round["not-invited"], grpc.StatusCode.PERMISSION_DENIED, "not invited")


@pytest.mark.parametrize(
    "probe", ["retry-after-failure", "duplicate-after-commit", "duplicate-concurrent"]
)
def test_second_upload_stream_from_a_site_is_already_exists(hostile_round, probe):
    _refused(hostile_round[probe], grpc.StatusCode.ALREADY_EXISTS, "already uploaded")


def test_only_honest_uploads_reach_the_encrypted_sum(hostile_round):
    """The transcript's contributor set: the refused uploads are absent from the sum."""
    body = _round_record(hostile_round["records"])
    contributors = set(body["contributors"])
    assert {1, 2} <= contributors
    assert contributors.isdisjoint([*range(3, 13), 14]), contributors
    text = hostile_round["log"]
    for site in range(3, 12):
        assert f"upload of participant {site} abandoned" in text


def test_header_understating_the_size_is_refused(hostile_round):
    _refused(hostile_round["header-too-small"], grpc.StatusCode.INVALID_ARGUMENT)
    assert 13 not in _round_record(hostile_round["records"])["contributors"]


# --- abandoning the only upload in the running sum ------------------------------------

# Regression: abandoning the only upload in a chunk used to subtract it to an exactly
# zero ("transparent") ciphertext, which SEAL refuses with a RuntimeError.


def test_first_upload_with_bad_digest_is_invalid_argument(hostile_round):
    _refused(
        hostile_round["first-upload-bad-digest"],
        grpc.StatusCode.INVALID_ARGUMENT,
        "does not match its receipt",
    )


@pytest.fixture(scope="module")
def small_accumulator_parts():
    import tenseal as ts

    from secagg import crypto

    keys = ckks.CommitteeKeys.generate(
        4, 16, federation="f", run_id=b"r" * 16, lead=1, signing_key=crypto.SigningKey.generate()
    )
    rng = np.random.default_rng(1)
    a = ckks.encrypt_update(rng.integers(0, 1 << 16, 1024), 16, keys.public_context_bytes)
    b = ckks.encrypt_update(rng.integers(0, 1 << 16, 1024), 16, keys.public_context_bytes)

    def fresh():
        pub = ts.context_from(keys.public_context_bytes)
        return ckks.CiphertextAccumulator(
            pub, keys.params, 1024, federation="f", run_id=b"r" * 16, round=1
        )

    yield fresh, a, b, crypto.SigningKey.generate()
    keys.erase()


def test_abandon_with_another_upload_in_the_sum_is_clean(small_accumulator_parts):
    """The same abandon succeeds when the sum holds another upload too (control)."""
    fresh, a, b, key = small_accumulator_parts
    acc = fresh()
    acc.add_upload(2, b, ckks.sign_upload_receipt(
        b, key, federation="f", run_id=b"r" * 16, round=1, participant=2
    ))  # fmt: skip
    acc.begin(7)
    acc.add_chunk(7, a[0])
    acc.abandon(7)
    assert acc.contributors == (2,)


def test_abandon_of_the_only_upload_in_the_sum(small_accumulator_parts):
    fresh, a, b, key = small_accumulator_parts
    acc = fresh()
    acc.begin(7)
    for chunk in a:
        acc.add_chunk(7, chunk)
    acc.abandon(7)
    assert acc.contributors == ()
    # the chunk is empty again: a later upload becomes the whole sum
    acc.add_upload(2, b, ckks.sign_upload_receipt(
        b, key, federation="f", run_id=b"r" * 16, round=1, participant=2
    ))  # fmt: skip
    assert acc.contributors == (2,) and len(acc.result()) == len(b)


def test_commit_with_wrong_receipt_as_first_upload_is_a_ckks_error(small_accumulator_parts):
    fresh, a, b, key = small_accumulator_parts
    acc = fresh()
    wrong = ckks.sign_upload_receipt(
        a, key, federation="f", run_id=b"r" * 16, round=1, participant=7
    )
    acc.begin(7)
    for chunk in b:
        acc.add_chunk(7, chunk)
    with pytest.raises(ckks.CkksError, match="does not match its receipt"):
        acc.commit(7, wrong)
    assert acc.contributors == ()
