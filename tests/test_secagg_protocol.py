"""SecAgg/SecAgg+ state machines end to end in the in-memory simulator.

Correctness (exact sums, dropouts at every stage up to the threshold and one
beyond) and the active-adversary rules: each attack is played by a malicious
aggregator (or participant) through the simulator's tamper hooks, and the test
asserts the matching refusal and that no participant released both shares of
any peer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blindsum.v1 import secagg_pb2 as pb
from secagg import crypto, wire
from secagg.client import ClientState, ParticipantPolicy
from secagg.errors import AbortReason, MalformedMessage, ProtocolAbort
from secagg.graph import ThreatModel
from secagg.server import ServerStage
from secagg.simulate import STAGES, make_federation, random_inputs, run_simulation

FULL = {"graph": "full"}


def assert_safe(result) -> None:
    """Invariants of every run: no holder released both shares of a peer, nothing
    released to the aggregator on both kinds for one owner, every secret erased."""
    assert result.both_shares_released() == []
    assert result.owners_with_both_kinds() == []
    for client in result.clients.values():
        assert not client.holds_secrets()


def assert_aborted(result) -> None:
    assert result.released is None
    assert result.server.result is None
    assert_safe(result)


# --- correctness ------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 16, 32, 40, 62])
@pytest.mark.parametrize("graph", ["full", "harary"])
def test_exact_sum_mod_2_to_the_bits(bits, graph):
    inputs = random_inputs(12, 257, bits)
    result = run_simulation(inputs, bits=bits, graph=graph)
    assert result.server_abort is None
    assert result.released.dtype == crypto.mask_dtype(bits)
    expected = sum(int(x) for x in (v[5] for v in inputs.values())) % (1 << bits)
    assert int(result.released[5]) == expected
    assert result.correct
    assert_safe(result)


def test_mask_workers_failing_abort_the_round_and_release_nothing():
    """A mask worker that dies (here: the map raises as a broken process pool does)
    aborts the round with INTERNAL_ERROR: the partly unmasked sum is dropped and
    participants are told, instead of the exception escaping with state held."""
    from concurrent.futures.process import BrokenProcessPool

    def broken_map(fn, tasks):
        raise BrokenProcessPool("a worker died")

    inputs = random_inputs(8, 64, 16)
    result = run_simulation(
        inputs, bits=16, graph="full", dropouts={3: "masked-input"}, map_function=broken_map
    )
    assert result.server_abort is not None
    assert result.server_abort.reason is AbortReason.INTERNAL_ERROR
    assert "BrokenProcessPool" in str(result.server_abort)
    assert result.server.stage is ServerStage.ABORTED
    assert result.server._sum is None and not result.server._share_keys
    assert_aborted(result)


def test_mask_worker_processes_survive_ctrl_c():
    """Ctrl-C signals the whole process group; the workers leave stopping to the
    driver (a worker killed by SIGINT would break the pool mid-round)."""
    import os
    import signal
    import time

    from secagg.server import mask_worker_pool

    pool = mask_worker_pool(1)
    try:
        pid = pool.submit(os.getpid).result(timeout=60)
        os.kill(pid, signal.SIGINT)
        time.sleep(0.3)
        assert pool.submit(os.getpid).result(timeout=60) == pid
    finally:
        pool.shutdown()


def test_simulation_reports_progress_per_stage():
    calls = []
    inputs = random_inputs(6, 8, 16)
    result = run_simulation(
        inputs, bits=16, dropouts={2: "masked-input"}, progress=lambda *a: calls.append(a)
    )
    assert result.correct
    assert list(dict.fromkeys(stage for stage, _, _ in calls)) == list(STAGES)
    for stage in STAGES:
        counts = [(done, total) for s, done, total in calls if s == stage]
        total = counts[0][1]
        assert [done for done, _ in counts] == list(range(total + 1))
        assert {t for _, t in counts} == {total}
    # 6 participants are asked to advertise; 5 survivors reach unmasking
    assert [c for c in calls if c[0] == "advertise-keys"][-1][2] == 6
    assert [c for c in calls if c[0] == "unmasking"][-1][2] == 5


def test_worker_processes_exit_with_their_parent(tmp_path):
    """A parent that dies without shutting its pool down (SIGKILL, os._exit) must not
    leave its workers blocked forever on their job queue."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    script, pid_file = tmp_path / "parent.py", tmp_path / "worker.pid"
    script.write_text(
        "import os, sys\n"
        "from secagg.processes import worker_pool\n"
        "if __name__ == '__main__':\n"
        "    pool = worker_pool(1)\n"
        "    pid = pool.submit(os.getpid).result(timeout=60)\n"
        "    open(sys.argv[1], 'w').write(str(pid))\n"
        "    os._exit(0)\n"
    )
    subprocess.run(
        [sys.executable, str(script), str(pid_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
        check=True,
    )
    worker = int(pid_file.read_text())

    def alive() -> bool:
        try:
            status = Path(f"/proc/{worker}/status").read_text()
        except FileNotFoundError:
            return False
        return "State:\tZ" not in status  # a zombie has exited

    deadline = time.monotonic() + 30
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive()


def test_extreme_values_wrap_correctly():
    bits = 40
    top = (1 << bits) - 1
    inputs = {u: np.full(8, top, dtype=np.uint64) for u in range(1, 8)}
    result = run_simulation(inputs, bits=bits, **FULL)
    assert result.correct
    assert int(result.released[0]) == (7 * top) % (1 << bits)


def _full_graph_slack():
    """n = 10 on the full graph: t and how many neighbours may vanish (k - t)."""
    result = run_simulation(random_inputs(10, 4, 16), bits=16, **FULL)
    return result.t, result.k - result.t


@pytest.mark.parametrize("stage", STAGES[1:])
def test_dropouts_up_to_threshold_then_abort(stage):
    t, slack = _full_graph_slack()
    assert slack >= 1
    inputs = random_inputs(10, 33, 16)
    ok = run_simulation(inputs, bits=16, dropouts={u: stage for u in range(1, 1 + slack)}, **FULL)
    assert ok.server_abort is None, ok.server_abort
    assert ok.correct
    # Who contributed: dropping before the masked input removes the input.
    if stage in ("share-keys", "masked-input"):
        assert set(ok.survivor_sets[3]) == set(range(1 + slack, 11))
    else:
        assert set(ok.survivor_sets[3]) == set(range(1, 11))
    assert_safe(ok)
    too_many = run_simulation(
        inputs, bits=16, dropouts={u: stage for u in range(1, 2 + slack)}, **FULL
    )
    assert too_many.server_abort is not None
    assert_aborted(too_many)


def test_dropouts_mixed_across_stages_harary():
    inputs = random_inputs(40, 16, 32)
    result = run_simulation(
        inputs,
        bits=32,
        dropouts={1: "share-keys", 2: "masked-input", 3: "consistency", 4: "unmasking"},
    )
    assert not result.full_graph
    assert result.correct
    assert 1 not in result.survivor_sets[2] and 2 not in result.survivor_sets[3]
    assert 3 in result.survivor_sets[3] and 3 not in result.survivor_sets[4]
    assert_safe(result)


def _random_dropout_round(data, n):
    threat = ThreatModel(corrupt_fraction=0.05, dropout_fraction=0.1)
    dropped = data.draw(st.lists(st.integers(1, n), unique=True, max_size=int(0.1 * n)))
    stages = data.draw(
        st.lists(st.sampled_from(STAGES[1:]), min_size=len(dropped), max_size=len(dropped))
    )
    inputs = random_inputs(n, 8, 16)
    result = run_simulation(
        inputs, bits=16, threat=threat, dropouts=dict(zip(dropped, stages, strict=True))
    )
    assert not result.full_graph and result.k < n - 1
    assert result.correct
    assert_safe(result)


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_secagg_plus_n200_random_dropouts(data):
    _random_dropout_round(data, 200)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_secagg_plus_n60_random_dropouts(data):
    """The n = 200 case above, smaller, so it runs in the default suite."""
    _random_dropout_round(data, 60)


def test_below_minimum_aggregate_is_refused_by_participants():
    inputs = random_inputs(6, 4, 16)
    policy = ParticipantPolicy(minimum_aggregate=6, threat=ThreatModel(corrupt_fraction=0.0))
    result = run_simulation(inputs, bits=16, policy=policy, dropouts={1: "masked-input"}, **FULL)
    reasons = {e.reason for e in result.client_aborts.values()}
    assert reasons == {AbortReason.BELOW_MINIMUM_AGGREGATE}
    assert_aborted(result)


# --- helpers for playing a malicious aggregator ---------------------------------------


def rewrite(data: bytes, edit) -> bytes:
    msg = wire.parse_server_message(data)
    edit(msg)
    return msg.SerializeToString()


def run_attack(tamper, *, n=8, client_tamper=None, federation=None, **kw):
    inputs = random_inputs(n, 16, 16)
    kw.setdefault("graph", "full")
    return run_simulation(
        inputs, bits=16, tamper=tamper, client_tamper=client_tamper, federation=federation, **kw
    )


VICTIM = 3


def only_victim(stage_name, edit):
    def tamper(stage, outgoing):
        if stage == stage_name:
            outgoing[VICTIM] = [rewrite(m, edit) for m in outgoing[VICTIM]]
        return outgoing

    return tamper


def victim_reason(result) -> AbortReason:
    assert VICTIM in result.client_aborts, result.client_aborts
    return result.client_aborts[VICTIM].reason


# --- unmasking attacks -------------------------------------------------------------------


def test_overlapping_alive_and_dead_lists_refused():
    def edit(msg):
        msg.unmasking_request.dead.append(msg.unmasking_request.alive[0])

    result = run_attack(only_victim("unmasking", edit))
    assert victim_reason(result) is AbortReason.BOTH_SHARES_REQUESTED
    assert VICTIM not in result.released_shares
    assert_safe(result)


def test_dead_list_naming_an_alive_peer_refused():
    def edit(msg):
        req = msg.unmasking_request
        moved = req.alive.pop()
        req.dead.append(moved)

    result = run_attack(only_victim("unmasking", edit))
    assert victim_reason(result) is AbortReason.BOTH_SHARES_REQUESTED
    assert_safe(result)


def test_second_unmasking_request_refused():
    def tamper(stage, outgoing):
        if stage == "unmasking":
            first = outgoing[VICTIM][0]

            def swap(msg):  # ask for the other share of every peer
                req = msg.unmasking_request
                alive, dead = list(req.alive), list(req.dead)
                del req.alive[:], req.dead[:]
                req.dead.extend(alive)
                req.alive.extend(dead)

            outgoing[VICTIM] = [first, rewrite(first, swap), first]
        return outgoing

    result = run_attack(tamper)
    assert victim_reason(result) is AbortReason.SECOND_UNMASKING_REQUEST
    kinds = {k for kinds in result.released_shares[VICTIM].values() for k in kinds}
    assert kinds == {"self-seed"}  # the first (honest) answer only
    assert_safe(result)


def test_dead_list_naming_peer_that_never_shared_refused():
    dropped = 1  # advertises keys, never sends its shares

    def edit(msg):
        msg.unmasking_request.dead.append(dropped)

    result = run_attack(only_victim("unmasking", edit), dropouts={dropped: "share-keys"})
    assert victim_reason(result) is AbortReason.DEAD_PEER_UNKNOWN
    assert_safe(result)


def test_self_in_unmasking_request_refused():
    def edit(msg):
        msg.unmasking_request.dead.append(VICTIM)

    result = run_attack(only_victim("unmasking", edit))
    assert victim_reason(result) is AbortReason.SELF_IN_REQUEST
    assert_safe(result)


def test_unmasking_lists_contradicting_signed_u3_refused():
    def edit(msg):
        msg.unmasking_request.alive.pop()  # silently omit one alive neighbour

    result = run_attack(only_victim("unmasking", edit))
    assert victim_reason(result) is AbortReason.REQUEST_MISMATCH
    assert_safe(result)


# --- share-channel attacks ---------------------------------------------------------


def _capture_share_keys(store):
    def client_tamper(stage, sender, reply):
        msg = wire.parse_client_message(reply)
        if msg.WhichOneof("body") == "share_keys":
            store[sender] = msg.share_keys
        return reply

    return client_tamper


@pytest.mark.parametrize("rewrite_recipient", [False, True])
def test_own_share_ciphertext_reflected_back_refused(rewrite_recipient):
    sent: dict[int, pb.ShareKeys] = {}

    def edit(msg):
        routed = msg.masked_input_request.shares[0]
        own = next(s for s in sent[VICTIM].shares if s.recipient == routed.sender)
        routed.shares.CopyFrom(own)
        if rewrite_recipient:
            routed.shares.recipient = VICTIM

    result = run_attack(only_victim("masked-input", edit), client_tamper=_capture_share_keys(sent))
    expected = AbortReason.SHARE_AUTHENTICATION if rewrite_recipient else AbortReason.SHARE_ROUTING
    assert victim_reason(result) is expected
    assert_safe(result)


def test_tampered_share_ciphertext_refused():
    def edit(msg):
        shares = msg.masked_input_request.shares[0].shares
        ct = bytearray(shares.ciphertext)
        ct[20] ^= 1
        shares.ciphertext = bytes(ct)

    result = run_attack(only_victim("masked-input", edit))
    assert victim_reason(result) is AbortReason.SHARE_AUTHENTICATION
    assert_safe(result)


def test_swapped_share_commitment_refused():
    def edit(msg):
        shares = msg.masked_input_request.shares[0].shares
        shares.self_seed_share_commitment = bytes(32)

    result = run_attack(only_victim("masked-input", edit))
    # The commitments are authenticated with the ciphertext: changing one breaks GCM.
    assert victim_reason(result) is AbortReason.SHARE_AUTHENTICATION


# --- replays -----------------------------------------------------------------------


def test_replayed_message_from_earlier_stage_refused():
    previous: dict[int, list[bytes]] = {}

    def tamper(stage, outgoing):
        if stage == "masked-input":
            outgoing[VICTIM] = previous[VICTIM] + outgoing[VICTIM]
        if stage == "share-keys":
            previous.update(outgoing)
        return outgoing

    result = run_attack(tamper)
    assert victim_reason(result) is AbortReason.REPLAY
    assert_safe(result)


def test_replayed_message_from_earlier_session_refused():
    ids = list(range(1, 9))
    federation = make_federation(ids)
    old: dict[int, list[bytes]] = {}

    def record(stage, outgoing):
        if stage == "masked-input":
            old.update(outgoing)
        return outgoing

    first = run_attack(record, federation=federation)
    assert first.correct

    def replay(stage, outgoing):
        if stage == "masked-input":
            outgoing[VICTIM] = old[VICTIM]
        return outgoing

    result = run_attack(replay, federation=federation)
    assert victim_reason(result) is AbortReason.WRONG_SESSION
    assert_safe(result)


# --- signatures, configs, parameters -----------------------------------------------------


def _edit_neighbour_ad(edit_ad):
    def edit(msg):
        ad = next(a for a in msg.share_keys_request.advertisements if a.sender != VICTIM)
        edit_ad(ad)

    return edit


def test_forged_advertisement_signature_refused():
    def forge(ad):
        sig = bytearray(ad.signature)
        sig[0] ^= 1
        ad.signature = bytes(sig)

    result = run_attack(only_victim("share-keys", _edit_neighbour_ad(forge)))
    assert victim_reason(result) is AbortReason.BAD_SIGNATURE
    assert_safe(result)


def test_missing_advertisement_signature_refused():
    def strip(ad):
        ad.signature = b""

    result = run_attack(only_victim("share-keys", _edit_neighbour_ad(strip)))
    assert victim_reason(result) is AbortReason.MISSING_SIGNATURE


def test_substituted_public_key_refused():
    """The aggregator swaps in its own key for a neighbour: the signature no longer holds."""

    def swap(ad):
        ad.mask_public_key = crypto.AgreementKey.generate().public

    result = run_attack(only_victim("share-keys", _edit_neighbour_ad(swap)))
    assert victim_reason(result) is AbortReason.BAD_SIGNATURE


def test_duplicate_key_refused():
    def dup(msg):
        ads = msg.share_keys_request.advertisements
        other = next(a for a in ads if a.sender != VICTIM)
        target = next(a for a in ads if a.sender not in (VICTIM, other.sender))
        target.mask_public_key = other.mask_public_key

    result = run_attack(only_victim("share-keys", dup))
    assert victim_reason(result) is AbortReason.DUPLICATE_KEY


def test_missing_own_advertisement_refused():
    def drop_own(msg):
        ads = [a for a in msg.share_keys_request.advertisements if a.sender != VICTIM]
        del msg.share_keys_request.advertisements[:]
        msg.share_keys_request.advertisements.extend(ads)

    result = run_attack(only_victim("share-keys", drop_own))
    assert victim_reason(result) is AbortReason.MISSING_KEY


def test_unknown_participant_advertisement_refused():
    def add_stranger(msg):
        ad = msg.share_keys_request.advertisements.add()
        ad.CopyFrom(msg.share_keys_request.advertisements[0])
        ad.sender = 99

    result = run_attack(only_victim("share-keys", add_stranger))
    assert victim_reason(result) in (
        AbortReason.TOO_MANY_PARTICIPANTS,
        AbortReason.UNKNOWN_PARTICIPANT,
    )


def test_forged_consistency_signature_refused():
    def forge(msg):
        sig = msg.unmasking_request.signatures[0]
        raw = bytearray(sig.signature)
        raw[5] ^= 1
        sig.signature = bytes(raw)

    result = run_attack(only_victim("unmasking", forge))
    assert victim_reason(result) is AbortReason.BAD_SIGNATURE
    assert VICTIM not in result.released_shares
    assert_safe(result)


def test_missing_consistency_signatures_refused():
    def strip(msg):
        del msg.unmasking_request.signatures[:]

    result = run_attack(only_victim("unmasking", strip))
    assert victim_reason(result) is AbortReason.BELOW_THRESHOLD


def test_different_u3_shown_to_different_participants_refused():
    """The aggregator shows U3 minus one to a participant, then forwards that
    participant's signature to its neighbours: they see a different U3."""
    odd_one = 2
    captured: dict[int, pb.ConsistencySignature] = {}

    def client_tamper(stage, sender, reply):
        msg = wire.parse_client_message(reply)
        if msg.WhichOneof("body") == "consistency_signature":
            captured[sender] = msg.consistency_signature
        return reply

    def tamper(stage, outgoing):
        if stage == "consistency":

            def shrink(msg):
                survivors = [u for u in msg.consistency_request.survivors if u != 8]
                del msg.consistency_request.survivors[:]
                msg.consistency_request.survivors.extend(survivors)

            outgoing[odd_one] = [rewrite(m, shrink) for m in outgoing[odd_one]]
        if stage == "unmasking":

            def inject(msg):
                sigs = [s for s in msg.unmasking_request.signatures if s.sender != odd_one]
                del msg.unmasking_request.signatures[:]
                msg.unmasking_request.signatures.extend(sigs + [captured[odd_one]])

            outgoing[VICTIM] = [rewrite(m, inject) for m in outgoing[VICTIM]]
        return outgoing

    result = run_attack(tamper, client_tamper=client_tamper)
    assert victim_reason(result) is AbortReason.INCONSISTENT_SURVIVORS
    assert result.client_aborts[VICTIM].culprit == odd_one
    assert VICTIM not in result.released_shares
    assert_safe(result)


@pytest.mark.parametrize("field", ["t", "k"])
def test_lowered_threshold_or_degree_refused(field):
    def lower(msg):
        graph = msg.share_keys_request.graph
        setattr(graph, field, getattr(graph, field) - (1 if field == "t" else 2))
        graph.full = False

    result = run_attack(only_victim("share-keys", lower), n=40, graph="harary")
    assert victim_reason(result) is AbortReason.WEAK_PARAMETERS
    assert_safe(result)


def test_different_round_config_shown_to_one_participant_refused():
    """A validly signed but different config for one participant; its advertisement is
    forwarded to the others anyway: they see a different config digest."""
    ids = list(range(1, 9))
    federation = make_federation(ids)
    aggregator_key = federation[0]
    odd_one = 2
    captured: dict[int, pb.AdvertiseKeys] = {}

    def client_tamper(stage, sender, reply):
        msg = wire.parse_client_message(reply)
        if msg.WhichOneof("body") == "advertise_keys":
            captured[sender] = msg.advertise_keys
        return reply

    def tamper(stage, outgoing):
        if stage == "advertise-keys":

            def other_config(msg):
                cfg = pb.RoundConfig.FromString(msg.round_config.round_config)
                cfg.vector_name = "other"
                raw = cfg.SerializeToString()
                msg.round_config.round_config = raw
                msg.round_config.signature = aggregator_key.sign(wire.config_digest(raw))

            outgoing[odd_one] = [rewrite(m, other_config) for m in outgoing[odd_one]]
        if stage == "share-keys":

            def inject(msg):
                msg.share_keys_request.advertisements.append(captured[odd_one])

            outgoing[VICTIM] = [rewrite(m, inject) for m in outgoing[VICTIM]]
        return outgoing

    result = run_attack(tamper, client_tamper=client_tamper, federation=federation)
    assert odd_one in result.rejected  # the honest server code refuses it too
    assert result.rejected[odd_one].reason is AbortReason.CONFIG_MISMATCH
    assert victim_reason(result) is AbortReason.CONFIG_MISMATCH
    assert_safe(result)


def test_round_config_not_signed_by_aggregator_refused():
    def resign(msg):
        msg.round_config.signature = crypto.SigningKey.generate().sign(
            wire.config_digest(msg.round_config.round_config)
        )

    result = run_attack(only_victim("advertise-keys", resign))
    assert victim_reason(result) is AbortReason.CONFIG_SIGNATURE


# --- a malicious participant -----------------------------------------------------------


def test_bad_share_from_participant_is_detected_and_sender_named():
    liar = 4

    def client_tamper(stage, sender, reply):
        if sender == liar and stage == "unmasking":
            msg = wire.parse_client_message(reply)
            share = bytearray(msg.unmasking_response.self_seed_shares[0].share)
            share[0] ^= 1
            msg.unmasking_response.self_seed_shares[0].share = bytes(share)
            return msg.SerializeToString()
        return reply

    result = run_attack(None, n=10, client_tamper=client_tamper)
    assert result.rejected[liar].reason is AbortReason.BAD_SHARE
    assert result.rejected[liar].culprit == liar
    assert result.server.misbehaving == {liar: AbortReason.BAD_SHARE}
    assert liar not in result.survivor_sets[5]
    assert result.correct  # enough honest shares remain
    assert_safe(result)


def test_participant_sending_bad_shares_at_share_keys_is_named():
    liar = 4

    def client_tamper(stage, sender, reply):
        if sender == liar and stage == "share-keys":
            msg = wire.parse_client_message(reply)
            msg.share_keys.shares[0].mask_key_share_commitment = bytes(32)
            return msg.SerializeToString()
        return reply

    result = run_attack(None, n=8, client_tamper=client_tamper)
    # The signature no longer covers the altered commitment: the server refuses it.
    assert result.rejected[liar].reason is AbortReason.BAD_SIGNATURE
    assert liar not in result.survivor_sets[2]
    assert result.correct


# --- malformed messages ------------------------------------------------------------------


def test_malformed_vector_from_participant_rejected_round_goes_on():
    bad = {5: lambda v: v[:-4], 6: lambda v: v + b"\0\0\0\0"}

    def client_tamper(stage, sender, reply):
        if stage == "masked-input" and sender in bad:
            msg = wire.parse_client_message(reply)
            msg.masked_input.vector = bad[sender](msg.masked_input.vector)
            return msg.SerializeToString()
        return reply

    result = run_attack(None, n=10, client_tamper=client_tamper)
    for u in bad:
        assert isinstance(result.rejected[u], MalformedMessage)
        assert u not in result.survivor_sets[3]
    assert result.correct  # the sum was not touched by the refused vectors


def test_out_of_range_elements_rejected():
    def client_tamper(stage, sender, reply):
        if stage == "masked-input" and sender == 5:
            msg = wire.parse_client_message(reply)
            vec = np.frombuffer(msg.masked_input.vector, dtype="<u4").copy()
            vec[3] = 1 << 16  # bits = 16
            msg.masked_input.vector = vec.tobytes()
            return msg.SerializeToString()
        return reply

    result = run_attack(None, n=10, client_tamper=client_tamper)
    assert isinstance(result.rejected[5], MalformedMessage)
    assert "outside" in str(result.rejected[5])
    assert result.correct


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff", b"", b"\x0a\x05abc"])
def test_server_refuses_garbage_state_unchanged(garbage):
    from secagg.server import SecAggServer

    agg, keys, roster = make_federation([1, 2, 3, 4])
    server = SecAggServer(
        signing_key=agg, roster=roster, participants=[1, 2, 3, 4], bits=16, dimension=4
    )
    with pytest.raises(ProtocolAbort) as err:
        server.receive(1, garbage)
    assert err.value.reason is AbortReason.MALFORMED_MESSAGE
    assert server.stage is ServerStage.ADVERTISE_KEYS
    assert server.expected() == frozenset({1, 2, 3, 4})


def test_server_refuses_unauthenticated_sender_field():
    from secagg.client import SecAggClient
    from secagg.server import SecAggServer

    agg, keys, roster = make_federation([1, 2, 3, 4])
    server = SecAggServer(
        signing_key=agg, roster=roster, participants=[1, 2, 3, 4], bits=16, dimension=4
    )
    client = SecAggClient(
        participant_id=1, signing_key=keys[1], roster=roster, aggregator_key=agg.public
    )
    ad = client.receive(server.start())
    with pytest.raises(MalformedMessage):
        server.receive(2, ad)  # participant 2's channel carrying 1's message
    server.receive(1, ad)
    with pytest.raises(ProtocolAbort) as err:
        server.receive(1, ad)
    assert err.value.reason is AbortReason.REPLAY
    with pytest.raises(ProtocolAbort) as err:
        server.receive(77, ad)
    assert err.value.reason is AbortReason.UNKNOWN_PARTICIPANT


@pytest.mark.parametrize("cut", [1, 10, -1])
def test_participant_aborts_on_truncated_message(cut):
    from secagg.client import SecAggClient
    from secagg.server import SecAggServer

    agg, keys, roster = make_federation([1, 2, 3])
    server = SecAggServer(
        signing_key=agg, roster=roster, participants=[1, 2, 3], bits=16, dimension=4
    )
    client = SecAggClient(
        participant_id=1, signing_key=keys[1], roster=roster, aggregator_key=agg.public
    )
    data = server.start()
    with pytest.raises(ProtocolAbort) as err:
        client.receive(data[:cut])
    assert err.value.reason in (AbortReason.MALFORMED_MESSAGE, AbortReason.CONFIG_SIGNATURE)
    assert client.state is ClientState.ABORTED
    assert not client.holds_secrets()
    with pytest.raises(ProtocolAbort):
        client.receive(data)  # an aborted session stays aborted


def test_wrong_stage_message_refused():
    def tamper(stage, outgoing):
        if stage == "share-keys":
            # skip ahead: a consistency request before any keys were shared
            outgoing[VICTIM] = [
                pb.ServerMessage(
                    consistency_request=pb.ConsistencyRequest(survivors=[1, 2])
                ).SerializeToString()
            ]
        return outgoing

    result = run_attack(tamper)
    assert victim_reason(result) is AbortReason.WRONG_STAGE


def test_errors_never_carry_secret_material():
    """Abort texts and reprs name ids and stages only."""
    result = run_attack(only_victim("unmasking", lambda m: m.unmasking_request.dead.append(VICTIM)))
    text = str(result.client_aborts[VICTIM]) + repr(result.clients[VICTIM])
    assert len(text) < 200
    for client in result.clients.values():
        assert "secret" not in repr(client).lower()
