"""The federation end to end: real processes, real gRPC with mutual TLS, real
certificates, on 127.0.0.1. Every server is stopped by the test (and stops by
itself when its run ends)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import dp
from blindsum.v1 import federation_pb2 as fpb
from blindsum.v1 import federation_pb2_grpc as fgrpc
from node import audit
from node.federation_demo import run_federation
from node.pki import init_ca, issue_site, read_ca_certificate
from node.provision import (
    FederationOptions,
    provision,
    start_aggregator,
    start_node,
    stop_all,
    wait_for_address,
)
from node.transcript import TranscriptError, verify_transcript

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """4 nodes, 2 rounds, a loose privacy target so learning is visible."""
    root = tmp_path_factory.mktemp("fed") / "run4"
    options = FederationOptions(nodes=4, rounds=2, epsilon=1000.0, epsilon_cap=1e6)
    report = run_federation(options, root, timeout=180)
    return root, report


def test_four_nodes_two_rounds_learn(good_run):
    root, report = good_run
    assert report["ok"], (root / "aggregator.log").read_text()[-3000:]
    assert report["rounds_completed"] == 2
    assert [r["contributors"] for r in report["rounds"][1:]] == [4, 4]
    # Accuracy improves over the initial model (10 classes: chance is 0.1).
    assert report["final_accuracy"] > report["initial_accuracy"] + 0.2


def test_every_ledger_agrees_with_the_transcript(good_run):
    root, report = good_run
    run_dir = root / "run"
    key = bytes.fromhex((run_dir / "aggregator.signing.pub").read_text().strip())
    ledgers = [(i + 1, root / f"site-{i + 1}" / "ledger.jsonl") for i in range(4)]
    result = audit.run_audit(run_dir, public_key=key, ledgers=ledgers)
    assert result["valid"], result["problems"]
    records = verify_transcript(run_dir / "transcript.jsonl", key)
    rounds = [r["body"] for r in records if r["kind"] == "round"]
    assert [r["round"] for r in rounds] == [1, 2]
    for node_id, path in ledgers:
        entries = dp.PrivacyLedger(path, delta=1e-5, epsilon_cap=1e9).entries
        assert [m["round"] for _, m in entries] == [1, 2]
        assert {m["node_id"] for _, m in entries} == {node_id}
        for (record, meta), body in zip(entries, rounds, strict=True):
            assert meta["session_id"] == body["session_id"]
            assert meta["provisional"] is False
            assert meta["verified_survivors"] == len(body["survivor_sets"]["U3"])
            # its own count: the verified U3 minus the colluder it assumes
            assert record.contributors == meta["verified_survivors"] - 1
            assert record.sigma == body["dp_record"]["sigma"]
    # the aggregator's claim uses |U3|; each node's own epsilon is larger (it assumes a colluder)
    assert all(e > report["aggregator_epsilon"] for e in report["epsilon_per_node"].values())


def test_transcript_chain_detects_one_changed_byte(good_run, tmp_path):
    root, _ = good_run
    original = (root / "run" / "transcript.jsonl").read_bytes()
    key = bytes.fromhex((root / "run" / "aggregator.signing.pub").read_text().strip())
    verify_transcript(root / "run" / "transcript.jsonl", key)
    step = max(1, len(original) // 40)
    for pos in range(0, len(original) - 1, step):
        changed = bytearray(original)
        changed[pos] ^= 0x01
        copy = tmp_path / "t.jsonl"
        copy.write_bytes(bytes(changed))
        with pytest.raises(TranscriptError):
            verify_transcript(copy, key)


def test_run_directory_contents(good_run):
    root, _ = good_run
    run_dir = root / "run"
    for name in ("transcript.jsonl", "metrics.csv", "model_final.pt", "status.json"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"


def test_killed_node_and_over_cap_node(tmp_path):
    """6 nodes: site-6's own cap is too small, so it refuses every round (a refusal,
    not a timeout); site-1 dies right after uploading its masked input in round 1.
    Both rounds complete with the others. The aggregator removes masks in its stage
    thread here (workers = 1; good_run uses worker processes)."""
    options = FederationOptions(
        nodes=6, rounds=2, epsilon=1000.0, epsilon_cap=1e6, caps={5: 0.01}, aggregator_workers=1
    )
    report = run_federation(options, tmp_path / "fed", kill_at_round=1, timeout=180)
    root = Path(report["run_dir"])
    assert report["ok"], (root / "aggregator.log").read_text()[-3000:]
    assert report["killed_node"] == "site-1"
    key = bytes.fromhex((root / "run" / "aggregator.signing.pub").read_text().strip())
    rounds = [
        r["body"]
        for r in verify_transcript(root / "run" / "transcript.jsonl", key)
        if r["kind"] == "round"
    ]
    first, second = rounds
    # site-6 refused visibly in both rounds and was never in U1
    for body in rounds:
        assert "6" in {str(k) for k in body["refused"]}
        assert 6 not in body["survivor_sets"]["U1"]
    # site-1's masked input is in round 1's sum (U3), but it never signed (not in U4)
    assert 1 in first["survivor_sets"]["U3"] and 1 not in first["survivor_sets"]["U4"]
    assert first["dropped"]["consistency"] == [1]
    assert 1 not in second["survivor_sets"]["U1"]
    assert len(second["survivor_sets"]["U3"]) == 4
    # site-6 spent nothing; site-1's ledger keeps its fail-closed provisional charge
    assert (
        not (root / "site-6" / "ledger.jsonl").exists()
        or not dp.PrivacyLedger(
            root / "site-6" / "ledger.jsonl", delta=1e-5, epsilon_cap=1e9
        ).records
    )
    entries = dp.PrivacyLedger(
        root / "site-1" / "ledger.jsonl", delta=1e-5, epsilon_cap=1e9
    ).entries
    assert len(entries) == 1 and entries[0][1]["provisional"] is True
    log6 = (root / "site-6" / "node.log").read_text()
    assert "refused" in log6 and "privacy budget" in log6
    # The auditor accepts the run: dropouts and refusals are all explained.
    ledgers = [(i + 1, root / f"site-{i + 1}" / "ledger.jsonl") for i in range(5)]
    result = audit.run_audit(root / "run", public_key=key, ledgers=ledgers)
    assert result["valid"], result["problems"]


# --- the aggregator against hostile or broken clients --------------------------------


@pytest.fixture
def lone_aggregator(tmp_path):
    """An aggregator waiting for its 3 nodes (which never come), for probing."""
    fed = provision(tmp_path / "fed", FederationOptions(nodes=3, rounds=1))
    proc = start_aggregator(fed)
    try:
        address = wait_for_address(fed, proc)
        yield fed, address, proc
    finally:
        stop_all([proc])


def _channel(address, key: Path, cert: Path, ca: Path, target="aggregator"):
    creds = grpc.ssl_channel_credentials(
        root_certificates=read_ca_certificate(ca), private_key=key.read_bytes(),
        certificate_chain=cert.read_bytes(),
    )  # fmt: skip
    return grpc.secure_channel(address, creds, options=[("grpc.ssl_target_name_override", target)])


def _site(fed, name):
    d = fed.root / name
    return d / f"{name}.key", d / f"{name}.crt"


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code()


def test_hostile_clients_get_clear_statuses(lone_aggregator, tmp_path):
    fed, address, proc = lone_aggregator
    ca = fed.root / "ca" / "ca.crt"
    join = fpb.JoinRequest(federation="blindsum-demo")

    # A certificate from another CA (same site name): the TLS handshake fails.
    rogue = tmp_path / "rogue"
    init_ca(rogue / "ca")
    rogue_site = issue_site(rogue / "ca", "site-1", rogue / "site-1")
    with _channel(address, rogue_site.key, rogue_site.certificate, ca) as ch:
        stub = fgrpc.AggregationStub(ch)
        assert _code(lambda: next(iter(stub.Join(join, timeout=5)))) == grpc.StatusCode.UNAVAILABLE

    # The right CA but a site name that is not in the roster.
    mallory = issue_site(fed.root / "ca", "mallory", tmp_path / "mallory")
    with _channel(address, mallory.key, mallory.certificate, ca) as ch:
        stub = fgrpc.AggregationStub(ch)
        assert (
            _code(lambda: next(iter(stub.Join(join, timeout=5))))
            == grpc.StatusCode.PERMISSION_DENIED
        )

    # A roster name, right CA, but not the certificate the roster pins.
    twin = issue_site(fed.root / "ca", "site-2", tmp_path / "twin")
    with _channel(address, twin.key, twin.certificate, ca) as ch:
        stub = fgrpc.AggregationStub(ch)
        assert (
            _code(lambda: stub.Submit(fpb.NodeMessage(round=0), timeout=5))
            == grpc.StatusCode.PERMISSION_DENIED
        )

    key, cert = _site(fed, "site-1")
    with _channel(address, key, cert, ca) as ch:
        stub = fgrpc.AggregationStub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        assert (
            health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            == health_pb2.HealthCheckResponse.SERVING
        )
        # An oversized message is refused by the (small) receive limit.
        big = fpb.NodeMessage(round=0, secagg=b"\0" * (3 << 20))
        assert _code(lambda: stub.Submit(big, timeout=10)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        # No stage is open yet; a message for another round is refused as such.
        assert (
            _code(lambda: stub.Submit(fpb.NodeMessage(round=0, secagg=b"x"), timeout=5))
            == grpc.StatusCode.FAILED_PRECONDITION
        )
        assert (
            _code(lambda: stub.Submit(fpb.NodeMessage(round=7), timeout=5))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        assert (
            _code(lambda: stub.UploadMaskedInput(iter([fpb.VectorChunk(data=b"1")]), timeout=5))
            == grpc.StatusCode.FAILED_PRECONDITION
        )
        # Wrong federation name, and a second event stream for the same site.
        assert (
            _code(lambda: next(iter(stub.Join(fpb.JoinRequest(federation="other"), timeout=5))))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        first = stub.Join(join, timeout=20)
        # the first stream is registered once the aggregator logs the join
        log = fed.root / "aggregator.log"
        for _ in range(100):
            if "participant 1 joined" in log.read_text():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert (
            _code(lambda: next(iter(stub.Join(join, timeout=5)))) == grpc.StatusCode.ALREADY_EXISTS
        )
        first.cancel()
    # The aggregator is still healthy, and stops cleanly on SIGTERM.
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) is not None
    text = (fed.root / "aggregator.log").read_text()
    assert "Traceback" not in text
    assert "rejected peer" in text and "mallory" in text


def test_model_digest_is_what_the_transcript_says(good_run):
    root, _ = good_run
    records = verify_transcript(root / "run" / "transcript.jsonl")
    end = records[-1]
    assert end["kind"] == "run-end" and len(end["body"]["final_model_digest"]) == 64
    assert hashlib.sha256((root / "run" / "transcript.jsonl").read_bytes()).hexdigest()


# --- chunked transfer (the aggregator's upload path), without a network ----------------


def _chunks(items):
    async def gen():
        for item in items:
            yield item

    return gen()


def _receive(items, expected):
    import asyncio

    from node.transport import receive_vector

    return asyncio.run(receive_vector(_chunks(items), expected_bytes=expected))


def _upload(data: bytes):
    from node.transport import chunk_vector

    return list(chunk_vector(data, fpb.VectorHeader(round=1)))


def test_chunked_vector_round_trip():
    data = bytes(range(256)) * 9000  # > 2 chunks
    chunks = _upload(data)
    assert len(chunks) == 3 and all(len(c.data) <= 1 << 20 for c in chunks)
    assert _receive(chunks, len(data)).data == data


@pytest.mark.parametrize(
    "mutate, code",
    [
        (
            lambda c: c[0].header.__setattr__("total_bytes", 10**9),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ),
        (lambda c: c[0].header.__setattr__("total_bytes", 5), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda c: c[-1].__setattr__("data", c[-1].data[:-1]), grpc.StatusCode.INVALID_ARGUMENT),
        (
            lambda c: c[-1].__setattr__("data", b"x" + c[-1].data[1:]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (lambda c: c[1].header.CopyFrom(c[0].header), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda c: c[0].ClearField("header"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            lambda c: c[1].__setattr__("data", c[1].data + b"\0" * (1 << 20)),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ),
    ],
)
def test_chunked_vector_refusals(mutate, code):
    from node.transport import VectorTransferError

    data = b"\x07" * (3 << 20)
    chunks = _upload(data)
    mutate(chunks)
    with pytest.raises(VectorTransferError) as err:
        _receive(chunks, len(data))
    assert err.value.code == code


def test_empty_upload_refused():
    from node.transport import VectorTransferError

    with pytest.raises(VectorTransferError):
        _receive([], 10)


@pytest.mark.parametrize("expect", [{"round": 2}, {"session_id": b"other"}])
def test_chunked_vector_for_another_round_or_session_refused(expect):
    import asyncio

    from node.transport import VectorTransferError, chunk_vector, receive_vector

    data = b"\x01" * 1000
    chunks = list(chunk_vector(data, fpb.VectorHeader(round=1, session_id=b"mine")))
    ok = asyncio.run(
        receive_vector(_chunks(chunks), expected_bytes=1000, round=1, session_id=b"mine")
    )
    assert ok.data == data
    with pytest.raises(VectorTransferError) as err:
        asyncio.run(receive_vector(_chunks(chunks), expected_bytes=1000, **expect))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_stage_stops_waiting_for_participants_that_left():
    """_collect closes the stage once everyone still connected has answered: one
    participant leaving (before or during the stage) does not cost the deadline."""
    import asyncio
    import time

    from node.aggregator import Aggregator

    class ExpectingServer:
        def __init__(self, ids):
            self.waiting, self.refused = set(ids), {}

        def expected(self):
            return frozenset(self.waiting)

        def receive(self, peer, data):
            self.waiting.discard(peer)

    async def stage(leaves_before: bool) -> float:
        agg = Aggregator.__new__(Aggregator)  # only the collection machinery
        agg.stage_event, agg.stopping, agg.accepting = asyncio.Event(), asyncio.Event(), False
        agg.secagg = ExpectingServer({1, 2, 3})
        agg.queues = {1: None, 2: None, 3: None}
        if leaves_before:
            del agg.queues[3]

        async def traffic():
            await asyncio.sleep(0.05)
            if not leaves_before:
                del agg.queues[3]  # what the Join stream's cleanup does
                agg.stage_event.set()
            for peer in (1, 2):
                await asyncio.sleep(0.05)
                await agg._deliver(peer, b"", None)

        task = asyncio.create_task(traffic())
        start = time.monotonic()
        await agg._collect(30.0)
        await task
        return time.monotonic() - start

    for leaves_before in (True, False):
        assert asyncio.run(stage(leaves_before)) < 10.0  # the deadline is 30 s


def _mask_workers_of(pid: int) -> list[int]:
    """Pids of the spawned mask worker processes of process `pid` (Linux /proc)."""
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            out.append(int(child))
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_dead_mask_workers_abort_one_round_then_the_pool_is_replaced(tmp_path):
    """The aggregator's mask worker processes are killed after round 1: the next
    round to unmask aborts as internal-error (nothing released, transcript says so)
    and the one after it completes on a fresh pool."""
    import os
    import time

    options = FederationOptions(nodes=4, rounds=3, epsilon=1000.0, epsilon_cap=1e6)
    fed = provision(tmp_path / "fed", options)
    aggregator = start_aggregator(fed)
    nodes = []
    try:
        address = wait_for_address(fed, aggregator)
        nodes = [start_node(fed, i, address) for i in range(4)]
        deadline = time.monotonic() + 120
        status = {}

        def round_1_released() -> bool:
            r = status.get("round", 0)
            return r >= 2 or (r == 1 and status.get("stage") == "done")

        while not round_1_released() and time.monotonic() < deadline:
            time.sleep(0.05)
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                status = json.loads((fed.run_dir / "status.json").read_text())
        workers = _mask_workers_of(aggregator.pid)
        assert len(workers) == 2  # [server] workers = 2
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        returncode = aggregator.wait(timeout=150)
    finally:
        stop_all([aggregator, *nodes])
    assert returncode == 0
    key = bytes.fromhex((fed.run_dir / "aggregator.signing.pub").read_text().strip())
    records = verify_transcript(fed.run_dir / "transcript.jsonl", key)
    outcome = [
        (r["body"]["round"], r["kind"], r["body"].get("reason"))
        for r in records
        if r["kind"] in ("round", "round-aborted")
    ]
    assert outcome == [
        (1, "round", None),
        (2, "round-aborted", "internal-error"),
        (3, "round", None),
    ]
    log = (fed.root / "aggregator.log").read_text()
    assert "BrokenProcessPool" in log  # the operator sees what failed
