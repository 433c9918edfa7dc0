"""The CKKS path end to end (`[federation] path = "ckks"`): real processes, real gRPC
with mutual TLS on 127.0.0.1, a decryption committee of two sites; plus the node's
refusal of a public context not signed by the lead, and the config validation."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import dp
from blindsum.v1 import federation_pb2 as fpb
from node import audit, ckks
from node.ckks_rounds import CkksNode, announcement_to_pb
from node.config import ConfigError, load_federation
from node.federation_demo import run_federation
from node.pki import load_signing_key
from node.provision import (
    FederationOptions,
    provision,
    start_aggregator,
    start_node,
    stop_all,
    wait_for_address,
)
from node.transcript import verify_transcript

pytestmark = pytest.mark.timeout(240)

DEADLINES = {
    "join": 60.0, "advertise_keys": 20.0, "share_keys": 20.0, "masked_input": 30.0,
    "consistency": 8.0, "unmasking": 20.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def ckks_run(tmp_path_factory):
    """4 nodes, 3 rounds, committee = site-1 (lead) + site-2, a loose privacy target;
    site-4 dies after training and encrypting in round 3, before its upload. An mlp
    of 38,410 parameters (d' = 2^16, 16 chunk ciphertexts) so the nodes encrypt in
    worker processes."""
    root = tmp_path_factory.mktemp("ckks") / "run"
    options = FederationOptions(
        nodes=4, rounds=3, epsilon=1000.0, epsilon_cap=1e6, path="ckks", committee=(0, 1),
        deadlines=DEADLINES, model="mlp", hidden=512,
    )  # fmt: skip
    report = run_federation(options, root, kill_at_round=3, timeout=180, baseline=False)
    return root, report


def _rounds(root: Path) -> list[dict]:
    key = bytes.fromhex((root / "run" / "aggregator.signing.pub").read_text().strip())
    return [
        r["body"]
        for r in verify_transcript(root / "run" / "transcript.jsonl", key)
        if r["kind"] == "round"
    ]


def test_three_rounds_released_and_learn(ckks_run):
    root, report = ckks_run
    assert report["ok"], (root / "aggregator.log").read_text()[-3000:]
    assert report["rounds_completed"] == 3
    assert report["killed_node"] == "site-4"
    assert [r["contributors"] for r in report["rounds"][1:]] == [4, 4, 3]
    assert report["final_accuracy"] > report["initial_accuracy"] + 0.2
    rounds = _rounds(root)
    assert [b["path"] for b in rounds] == ["ckks"] * 3
    assert [b["contributors"] for b in rounds] == [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3]]
    # the dropped node is absent from the sum (no recovery stage), listed as dropped
    assert rounds[2]["dropped"] == {"masked-input": [4]}
    assert rounds[2]["survivor_sets"]["U3"] == [1, 2, 3]
    for body in rounds:
        assert {a["member"] for a in body["attestations"]} == {1, 2}
        assert body["dp_record"]["contributors"] == len(body["contributors"])


def test_aggregator_holds_only_public_keys(ckks_run):
    root, _ = ckks_run
    text = (root / "aggregator.log").read_text()
    assert "ckks set-up done" in text and "Traceback" not in text
    for i in range(4):
        log = (root / f"site-{i + 1}" / "node.log").read_text()
        assert "public context verified (signed by lead 1)" in log
        assert "encrypting 16-chunk updates in" in log  # the worker-process path
        assert "Traceback" not in log


def test_ledgers_agree_with_the_transcript(ckks_run):
    root, report = ckks_run
    run_dir = root / "run"
    key = bytes.fromhex((run_dir / "aggregator.signing.pub").read_text().strip())
    ledgers = [(i + 1, root / f"site-{i + 1}" / "ledger.jsonl") for i in range(4)]
    result = audit.run_audit(run_dir, public_key=key, ledgers=ledgers)
    assert result["valid"], result["problems"]
    rounds = _rounds(root)
    for node_id, path in ledgers:
        entries = dp.PrivacyLedger(path, delta=1e-5, epsilon_cap=1e9).entries
        expected_rounds = [1, 2, 3]
        assert [m["round"] for _, m in entries] == expected_rounds
        for (record, meta), body in zip(entries, rounds, strict=True):
            assert meta["session_id"] == body["session_id"] and meta["path"] == "ckks"
            assert record.sigma == body["dp_record"]["sigma"]
            if node_id == 4 and body["round"] == 3:
                # charged fail-closed before the upload that never happened
                assert meta["provisional"] is True
                continue
            assert meta["provisional"] is False
            # the committee-signed receipt count, minus the colluder the node assumes
            assert meta["verified_survivors"] == len(body["contributors"])
            assert record.contributors == meta["verified_survivors"] - 1
    assert all(e > report["aggregator_epsilon"] for e in report["epsilon_per_node"].values())


def test_lost_committee_member_aborts_without_waiting_or_spending(tmp_path):
    """Committee member site-2 dies right after its round-1 upload. Round 1 aborts at
    decryption as soon as it has left (not at the 120-s deadline), nothing released;
    round 2 is refused before anyone trains, so nobody spends privacy on it."""
    deadlines = {**DEADLINES, "unmasking": 120.0}
    options = FederationOptions(
        nodes=4, rounds=2, epsilon=1000.0, epsilon_cap=1e6, path="ckks", committee=(0, 1),
        deadlines=deadlines,
    )  # fmt: skip
    fed = provision(tmp_path / "fed", options)
    aggregator = start_aggregator(fed)
    nodes = []
    try:
        address = wait_for_address(fed, aggregator)
        nodes = [
            start_node(fed, i, address, crash_after_upload=1 if i == 1 else None) for i in range(4)
        ]
        returncode = aggregator.wait(timeout=90)  # well under the decryption deadline
    finally:
        stop_all([aggregator, *nodes])
    assert returncode == 1  # no round released
    key = bytes.fromhex((fed.run_dir / "aggregator.signing.pub").read_text().strip())
    records = verify_transcript(fed.run_dir / "transcript.jsonl", key)
    assert not [r for r in records if r["kind"] == "round"]
    aborted = [r["body"] for r in records if r["kind"] == "round-aborted"]
    assert [(a["round"], a["stage"], a["reason"]) for a in aborted] == [
        (1, "decrypt", "committee-member-missing"),
        (2, "join", "committee-member-missing"),
    ]
    assert aborted[1]["missing"] == [2]
    assert "committee member(s) [2] left" in (fed.root / "aggregator.log").read_text()
    for i in (0, 2, 3):  # charged fail-closed for round 1 only
        entries = dp.PrivacyLedger(fed.ledger(i), delta=1e-5, epsilon_cap=1e9).entries
        assert [(m["round"], m["provisional"]) for _, m in entries] == [(1, True)]


# --- refusal of a public context not signed by the lead (function level) -------------


class _RecordingStub:
    def __init__(self) -> None:
        self.sent: list[fpb.NodeMessage] = []

    async def Submit(self, message, timeout=None):  # noqa: N802 - gRPC method name
        self.sent.append(message)
        return fpb.Ack(accepted=True)


@pytest.fixture(scope="module")
def ckks_federation(tmp_path_factory):
    options = FederationOptions(nodes=3, rounds=1, path="ckks", committee=(0, 1))
    return provision(tmp_path_factory.mktemp("ckks-cfg") / "fed", options)


def _node(fed, index: int) -> tuple[CkksNode, _RecordingStub]:
    federation = load_federation(fed.federation)
    member = federation.participants[index]
    stub = _RecordingStub()
    participant = SimpleNamespace(
        config=SimpleNamespace(federation=federation),
        member=member,
        signing_key=load_signing_key(fed.root / member.name / f"{member.name}.signing.key"),
        stub=stub,
    )
    return CkksNode(participant), stub


def _announce(fed, signer_site: str, run_id: bytes, lead: int = 1):
    federation = load_federation(fed.federation)
    key = load_signing_key(fed.root / signer_site / f"{signer_site}.signing.key")
    keys = ckks.CommitteeKeys.generate(
        len(federation.participants), federation.dp.bits, federation=federation.name,
        run_id=run_id, lead=lead, signing_key=key,
    )  # fmt: skip
    return keys.announcement()


def _deliver(node: CkksNode, announcement) -> None:
    event = fpb.AggregatorEvent(
        ckks=fpb.CkksEvent(
            context=fpb.CkksContextDelivery(announcement=announcement_to_pb(announcement))
        )
    )
    asyncio.run(node.on_event(event))


def test_node_refuses_context_not_signed_by_the_lead(ckks_federation):
    fed = ckks_federation
    node, stub = _node(fed, 2)  # site-3: an ordinary participant
    run_id = b"\x01" * 16
    node.run_id = run_id
    # The aggregator (or site-2) signs an announcement naming site-1 as lead: refused.
    for signer in ("aggregator", "site-2"):
        stub.sent.clear()
        _deliver(node, _announce(fed, signer, run_id))
        assert node.public_context is None
        (msg,) = stub.sent
        assert msg.ckks.WhichOneof("body") == "refusal"
        assert "signature does not verify" in msg.ckks.refusal
    # For another run: refused as well.
    stub.sent.clear()
    _deliver(node, _announce(fed, "site-1", b"\x02" * 16))
    assert node.public_context is None and stub.sent[0].ckks.WhichOneof("body") == "refusal"
    # The real lead's announcement for this run: accepted, the node reports ready.
    stub.sent.clear()
    _deliver(node, _announce(fed, "site-1", run_id))
    assert node.public_context is not None
    assert [m.ckks.WhichOneof("body") for m in stub.sent] == ["ready"]


def test_node_refuses_round_without_verified_context(ckks_federation):
    from node.participant import RoundRefused

    node, _ = _node(ckks_federation, 2)
    node.run_id = b"\x01" * 16
    with pytest.raises(RoundRefused, match="no verified public context"):
        node.check_round(1, fpb.CkksRoundConfig(run_id=node.run_id, application=b""))


# --- config ---------------------------------------------------------------------------


def _edit(path: Path, pattern: str, replacement: str, tmp_path: Path) -> Path:
    text = path.read_text()
    new, count = re.subn(pattern, replacement, text, count=1, flags=re.M)
    assert count == 1, pattern
    out = tmp_path / path.name
    out.write_text(new)
    return out


def test_ckks_config_loads(ckks_federation):
    federation = load_federation(ckks_federation.federation)
    assert federation.path_kind == "ckks"
    assert federation.ckks.committee == ("site-1", "site-2")


@pytest.mark.parametrize(
    "pattern, replacement, message",
    [
        (r"^committee = .*$", 'committee = ["site-9"]', "'site-9' not in [[participants]]"),
        (r"^committee = .*$", "committee = []", "[ckks] committee = []: must be a non-empty list"),
        (r"^committee = .*$", 'committee = ["site-1", "site-1"]', "must be distinct"),
        (r"^committee = .*$", 'committe = ["site-1"]', "[ckks] committee is required"),
        (r"^\[ckks\]\ncommittee = .*$", "", "[ckks] committee is required when"),
        (r'^path = "ckks"$', 'path = "masking"', "[ckks] is only allowed with [federation] path"),
        (
            r'^path = "ckks"$',
            'path = "he"',
            "[federation] path = 'he': must be one of masking, ckks",
        ),
    ],
)
def test_ckks_config_errors_name_the_key(ckks_federation, tmp_path, pattern, replacement, message):
    fed = ckks_federation
    # relative paths in the copy resolve against its own directory
    (tmp_path / "ca").mkdir(exist_ok=True)
    edited = _edit(fed.federation, pattern, replacement, tmp_path)
    with pytest.raises(ConfigError) as err:
        load_federation(edited)
    assert message in str(err.value)
