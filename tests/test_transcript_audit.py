"""Run transcript (hash chain + signatures), ledger metadata, and `blindsum audit`."""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
from pathlib import Path

import pytest

from dp.accounting import RoundRecord, epsilon_for
from dp.errors import DpError, DpParameterError, PrivacyBudgetExceeded
from dp.ledger import PrivacyLedger, load_entries
from node import audit
from node.cli import ArgumentParser
from node.transcript import (
    GENESIS_PREV,
    TranscriptError,
    TranscriptWriter,
    canonical_json,
    verify_transcript,
)
from secagg.crypto import SigningKey

KEY = SigningKey.from_seed(bytes(range(32)))  # test-only fixed keys
OTHER = SigningKey.from_seed(bytes(range(1, 33)))
DELTA = 1e-5


# -- transcript ----------------------------------------------------------------------------
def _small_transcript(path: Path, key: SigningKey = KEY) -> list[dict]:
    with TranscriptWriter(path, key) as w:
        return [
            w.append("run-start", {"federation": "hôpitaux-é", "roster": [{"id": 1}]}),
            w.append("round", {"round": 1, "epsilon": 0.5, "ids": [1, 2, 3]}),
            w.append("run-end", {"rounds_completed": 1, "epsilon": 0.5}),
        ]


def test_round_trip_chain_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "transcript.jsonl"
    written = _small_transcript(path)
    read = verify_transcript(path, KEY.public)
    assert read == written == verify_transcript(path)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    assert [r["seq"] for r in read] == [0, 1, 2]
    assert read[0]["prev"] == GENESIS_PREV
    for i in (1, 2):
        assert read[i]["prev"] == hashlib.sha256(lines[i - 1]).hexdigest()
    for raw, rec in zip(lines, read, strict=False):
        assert raw == canonical_json(rec)  # canonical, unicode kept as UTF-8
        assert rec["signer"] == KEY.public.hex() and rec["time"].endswith("+00:00")
        unsigned = {k: v for k, v in rec.items() if k not in ("hash", "signature")}
        assert rec["hash"] == hashlib.sha256(canonical_json(unsigned)).hexdigest()
    assert "hôpitaux-é".encode() in lines[0]


def _line_of(data: bytes, pos: int) -> int:
    return data[:pos].count(b"\n") + 1


@pytest.mark.parametrize("mask", [0x01, 0x20, 0x80])
def test_every_single_byte_change_is_detected(tmp_path: Path, mask: int) -> None:
    path = tmp_path / "transcript.jsonl"
    _small_transcript(path)
    original = path.read_bytes()
    for pos in range(len(original)):  # every byte: values, keys, punctuation, newlines
        data = bytearray(original)
        data[pos] ^= mask
        path.write_bytes(bytes(data))
        with pytest.raises(TranscriptError) as info:
            verify_transcript(path, KEY.public)
        assert str(info.value).startswith(f"transcript.jsonl line {_line_of(original, pos)}: ")
        with pytest.raises(TranscriptError):  # also without a pinned key
            verify_transcript(path)


def test_semantically_equal_rewrites_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "transcript.jsonl"
    _small_transcript(path)
    original = path.read_bytes()
    for old, new in [
        (b'"seq":1', b'"seq": 1'),  # whitespace
        (b'"epsilon":0.5', b'"epsilon":5e-1'),  # number format
        (b'"kind":"round"', b'"kind":"\\u0072ound"'),  # escape
    ]:
        assert old in original
        path.write_bytes(original.replace(old, new, 1))
        with pytest.raises(TranscriptError, match="line 2: .*canonical"):
            verify_transcript(path, KEY.public)
    path.write_bytes(original.replace(b"\n", b"\r\n"))
    with pytest.raises(TranscriptError, match="line 1"):
        verify_transcript(path, KEY.public)


def test_deleted_reordered_truncated(tmp_path: Path) -> None:
    path = tmp_path / "transcript.jsonl"
    _small_transcript(path)
    lines = path.read_bytes().splitlines(keepends=True)
    cases = {
        "line 1: seq is 1, expected 0": lines[1:],
        "line 2: seq is 2, expected 1": [lines[0], lines[2]],
        "line 2: seq is 2, expected 1 ": [lines[0], lines[2], lines[1]],
        "line 3: truncated": [lines[0], lines[1], lines[2][:-1]],
        "line 3: not valid JSON": [lines[0], lines[1], lines[2][:-10] + b"\n"],
        "line 3: truncated ": [lines[0], lines[1], lines[2][:40]],
    }
    for message, parts in cases.items():
        path.write_bytes(b"".join(parts))
        with pytest.raises(TranscriptError, match=message.strip()):
            verify_transcript(path, KEY.public)
    # An attacker fixing up seq after deleting a line still breaks prev.
    rec = json.loads(lines[2])
    rec["seq"] = 1
    path.write_bytes(lines[0] + canonical_json(rec) + b"\n")
    with pytest.raises(TranscriptError, match="line 2: prev"):
        verify_transcript(path, KEY.public)


def _resign(rec: dict, key: SigningKey) -> dict:
    from node.transcript import record_hash

    rec = dict(rec, signer=key.public.hex())
    rec["hash"] = record_hash(rec)
    rec["signature"] = key.sign(bytes.fromhex(rec["hash"])).hex()
    return rec


def test_wrong_signer_and_forgery(tmp_path: Path) -> None:
    path = tmp_path / "transcript.jsonl"
    records = _small_transcript(path)
    with pytest.raises(TranscriptError, match="line 1: signer is not the given public key"):
        verify_transcript(path, OTHER.public)
    # A body changed and the record re-hashed and re-signed by another key.
    forged = copy.deepcopy(records)
    forged[1]["body"]["epsilon"] = 0.01
    forged[1] = _resign(forged[1], OTHER)
    path.write_bytes(b"".join(canonical_json(r) + b"\n" for r in forged))
    with pytest.raises(TranscriptError, match="line 2: signer is not line 1's signer"):
        verify_transcript(path)
    # Right signer field, but a signature by someone else.
    forged[1]["signer"] = KEY.public.hex()
    path.write_bytes(b"".join(canonical_json(r) + b"\n" for r in forged))
    with pytest.raises(TranscriptError, match="line 2: (hash|signature)"):
        verify_transcript(path)
    # Re-signing everything self-consistently passes self-certification only.
    whole = tmp_path / "whole" / "transcript.jsonl"
    _small_transcript(whole, OTHER)
    assert len(verify_transcript(whole)) == 3
    with pytest.raises(TranscriptError, match="line 1: signer"):
        verify_transcript(whole, KEY.public)


def test_resume_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "transcript.jsonl"
    with TranscriptWriter(path, KEY) as w:
        w.append("run-start", {"a": 1})
        w.append("round", {"round": 1})
    with pytest.raises(TranscriptError, match="already exists"):
        TranscriptWriter(path, KEY)
    with pytest.raises(TranscriptError, match="line 1: signer"):
        TranscriptWriter(path, OTHER, resume=True)
    with TranscriptWriter(path, KEY, resume=True) as w:
        assert w.next_seq == 2
        assert w.append("round", {"round": 2})["seq"] == 2
        assert "seed" not in repr(w)
        with pytest.raises(TranscriptError, match="transcripts are public"):
            w.append("round", {"keys": [{"secret_share": "00"}]})
        with pytest.raises(TranscriptError, match="finite"):
            w.append("round", {"epsilon": math.nan})
        with pytest.raises(TranscriptError, match="kind"):
            w.append("Round 3", {})
        assert w.next_seq == 3  # refusals wrote nothing
    records = verify_transcript(path, KEY.public)
    assert [r["body"].get("round") for r in records] == [None, 1, 2]
    # A tampered file is not resumed.
    path.write_bytes(path.read_bytes().replace(b'"round":2', b'"round":3'))
    with pytest.raises(TranscriptError, match="line 3"):
        TranscriptWriter(path, KEY, resume=True)
    # resume=True on a missing file starts a new chain.
    fresh = tmp_path / "new.jsonl"
    with TranscriptWriter(fresh, KEY, resume=True) as w:
        assert w.append("run-start", {})["prev"] == GENESIS_PREV


# -- ledger metadata ---------------------------------------------------------------------
def _rec(n: int = 7, sigma: float = 1.0) -> RoundRecord:
    return RoundRecord(contributors=n, sigma=sigma, gamma=1e-3, clip=1.0, padded_dim=1024)


def test_ledger_meta_round_trip_and_old_format(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    old_line = json.dumps(
        {"format": "blindsum.dp.round/v1", "record": _rec(5).to_json()}, sort_keys=True
    )
    path.write_text(old_line + "\n", encoding="utf-8")  # written by the previous version
    led = PrivacyLedger(path, delta=DELTA, epsilon_cap=1e6)
    assert led.entries == ((_rec(5), None),) and led.records == (_rec(5),)
    meta = {"round": 3, "session_id": "ab" * 32, "verified_survivors": 8, "assumed_colluders": 1}
    eps = led.charge(_rec(7), meta=meta)
    led.charge(_rec(6))  # without meta: byte-identical to the old format
    assert path.read_text().splitlines()[2] == json.dumps(
        {"format": "blindsum.dp.round/v1", "record": _rec(6).to_json()}, sort_keys=True
    )
    again = PrivacyLedger(path, delta=DELTA, epsilon_cap=1e6)
    assert again.entries == ((_rec(5), None), (_rec(7), meta), (_rec(6), None))
    assert load_entries(path) == list(again.entries)
    assert again.epsilon()[0] == pytest.approx(epsilon_for([_rec(5), _rec(7), _rec(6)], DELTA)[0])
    assert eps == pytest.approx(epsilon_for([_rec(5), _rec(7)], DELTA)[0])
    again.entries[1][1]["round"] = 99  # a copy
    assert again.entries[1][1]["round"] == 3


def test_ledger_refuses_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    led = PrivacyLedger(path, delta=DELTA, epsilon_cap=1e6)
    led.charge(_rec(), meta={"round": 1})
    before = path.read_bytes()
    tight = PrivacyLedger(path, delta=DELTA, epsilon_cap=led.epsilon()[0] * 1.01)
    with pytest.raises(PrivacyBudgetExceeded):
        tight.charge(_rec(), meta={"round": 2})
    for bad in ({"x": math.inf}, {1: "int key"}, ["not", "a", "dict"], {"o": object()}):
        with pytest.raises(DpParameterError):
            led.charge(_rec(), meta=bad)
    assert path.read_bytes() == before and len(tight.entries) == len(led.entries) == 1
    path.write_text(
        before.decode() + '{"format": "blindsum.dp.round/v1", "record": {}, "meta": 3}\n'
    )
    with pytest.raises(DpError, match="line 2"):
        load_entries(path)


# -- audit: a synthetic run ----------------------------------------------------------------
ROSTER = list(range(1, 9))
COLLUDERS = 1


def _u(*drops: set[int]) -> dict[str, list[int]]:
    """U1..U5 from the full roster minus the ids dropped before each stage."""
    out, alive = {}, set(ROSTER)
    for name, gone in zip(audit.U_NAMES, drops, strict=True):
        alive = alive - gone
        out[name] = sorted(alive)
    return out


# (survivor sets, dropped, refused) per round
ROUNDS = [
    (_u(set(), set(), set(), set(), set()), {}, {}),
    (_u(set(), set(), {4}, set(), set()), {"masked-input": [4]}, {}),
    (_u({8}, {2}, set(), set(), {6}), {"share-keys": [2], "unmasking": [6]}, {"8": "budget"}),
    (_u(set(), set(), set(), {5}, set()), {"consistency": [5]}, {}),
]
SIGMA = 1.0


def _round_record(u: dict) -> RoundRecord:
    return _rec(n=len(u["U3"]) - COLLUDERS, sigma=SIGMA)


def _bodies() -> list[tuple[str, dict]]:
    digest = "c0" * 32
    out = [
        (
            "run-start",
            {
                "federation": "test",
                "config_digest": digest,
                "roster": [
                    {
                        "name": f"node-{i}",
                        "id": i,
                        "fingerprint": f"{i:064x}",
                        "signing_public_key": SigningKey.from_seed(bytes([i]) * 32).public.hex(),
                    }
                    for i in ROSTER
                ],
                "dp": {
                    "target_epsilon": 8.0,
                    "delta": DELTA,
                    "bits": 16,
                    "clip": 1.0,
                    "assumed_colluders": COLLUDERS,
                },
                "secagg": {"threshold": 5, "graph": "complete"},
            },
        )
    ]
    records = []
    for r, (u, dropped, refused) in enumerate(ROUNDS, 1):
        rec = _round_record(u)
        records.append(rec)
        out.append(
            (
                "round",
                {
                    "round": r,
                    "config_digest": digest,
                    "session_id": f"{r:064x}",
                    "survivor_sets": u,
                    "dropped": {s: dropped.get(s, []) for s in audit.STAGES},
                    "refused": refused,
                    "dp_record": rec.to_json(),
                    "sum_digest": hashlib.sha256(bytes([r])).hexdigest(),
                    "epsilon": epsilon_for(records, DELTA)[0],
                    "delta": DELTA,
                    "accuracy": 0.5 + r / 10,
                },
            )
        )
    out.insert(3, ("round-aborted", {"round": 3, "reason": "not enough", "stage": "masked-input"}))
    out.append(
        (
            "run-end",
            {
                "rounds_completed": len(ROUNDS),
                "epsilon": epsilon_for(records, DELTA)[0],
                "delta": DELTA,
                "final_model_digest": "ee" * 32,
            },
        )
    )
    return copy.deepcopy(out)  # tests mutate bodies; ROUNDS must stay intact


def _write_run(run_dir: Path, bodies: list[tuple[str, dict]] | None = None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    with TranscriptWriter(run_dir / "transcript.jsonl", KEY) as w:
        for kind, body in bodies or _bodies():
            w.append(kind, body)
    return run_dir


def _write_ledger(path: Path, node: int, *, tweak=None) -> Path:
    led = PrivacyLedger(path, delta=DELTA, epsilon_cap=1e6)
    led.charge(_rec(3, sigma=0.2), meta={"round": 1, "session_id": "99" * 32})  # another run
    for r, (u, _, _) in enumerate(ROUNDS, 1):
        if node not in u["U3"]:
            continue
        rec, meta = (
            _round_record(u),
            {
                "round": r,
                "session_id": f"{r:064x}",
                "config_digest": "c0" * 32,
                "verified_survivors": len(u["U3"]),
                "assumed_colluders": COLLUDERS,
                "node_id": node,
            },
        )
        if tweak:
            rec, meta = tweak(r, rec, meta)
        if rec is not None:
            led.charge(rec, meta=meta)
    return path


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="blindsum")  # the dispatcher's one-line-error parser
    audit.add_parser(
        parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    )
    return parser


def _cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    args = _parser().parse_args(["audit", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def _checks(result: dict) -> set[str]:
    return {p["check"] for p in result["problems"]}


def test_audit_valid_run(tmp_path: Path, capsys) -> None:
    run = _write_run(tmp_path / "run")
    ledger = _write_ledger(tmp_path / "node3.jsonl", 3)
    res = audit.run_audit(run, public_key=KEY.public, ledgers=[ledger])
    assert res["valid"], res["problems"]
    all_records = [_round_record(u) for u, _, _ in ROUNDS]
    assert res["epsilon_recomputed"] == pytest.approx(epsilon_for(all_records, DELTA)[0], rel=1e-12)
    assert [r["u_sizes"][2] for r in res["rounds"]] == [8, 7, 6, 8]
    assert [r["status"] for r in res["rounds"]] == ["ok"] * 4
    assert res["aborted_rounds"] == [{"round": 3, "stage": "masked-input", "reason": "not enough"}]
    rep = res["ledgers"][str(ledger)]
    assert rep["node"] == 3 and rep["matched_rounds"] == [1, 2, 3, 4]
    assert rep["entries_other_runs"] == 1 and rep["missing_rounds"] == []
    assert rep["epsilon_this_run"] == pytest.approx(res["epsilon_recomputed"], rel=1e-12)
    assert rep["epsilon_all_entries"] > rep["epsilon_this_run"]
    # Human output through the command, key from aggregator.signing.pub.
    (run / "aggregator.signing.pub").write_text(KEY.public.hex() + "\n")
    code, out, err = _cli(capsys, [str(run), "--ledger", f"node-3={ledger}"])
    assert code == 0, out + err
    capsys.readouterr()
    # A node that counts more contributors than it verified (minus its colluders).
    bad = _write_ledger(tmp_path / "bad3.jsonl", 3, tweak=lambda r, rec, m: (_rec(50), m))
    code, out, err = _cli(capsys, [str(run), "--ledger", f"3={bad}"])
    assert code == 1 and "INVALID" in out and "problem [ledger] round 1:" in out
    code, out, err = _cli(capsys, [str(run), "--ledger", f"node-3={ledger}"])
    assert code == 0, out + err
    assert "VALID" in out and "eps recomputed" in out and "aggregator.signing.pub" in out
    assert "out of band" in err and len(err.strip().splitlines()) == 1


def test_audit_self_certified_warns(tmp_path: Path, capsys) -> None:
    run = _write_run(tmp_path / "run")
    code, out, err = _cli(capsys, [str(run)])
    assert code == 0 and "self-certified" in err and "proves integrity only" in err
    assert len(err.strip().splitlines()) == 1


def _mutate(fn) -> list[tuple[str, dict]]:
    bodies = _bodies()
    fn(bodies)
    return bodies


def test_audit_flags_under_claim(tmp_path: Path, capsys) -> None:
    def lower(bodies):
        bodies[2][1]["epsilon"] *= 0.9  # round 2

    assert [b.get("round") for _, b in _bodies()] == [None, 1, 2, 3, 3, 4, None]
    run = _write_run(tmp_path / "run", _mutate(lower))
    code, out, _ = _cli(capsys, [str(run), "--public-key", KEY.public.hex(), "--json"])
    assert code == 1
    res = json.loads(out)
    assert not res["valid"] and _checks(res) == {"under-claim"}
    assert [p["round"] for p in res["problems"]] == [2]
    assert [r["status"] for r in res["rounds"]] == ["ok", "under-claim", "ok", "ok"]

    # A tiny numerical difference (< 1e-9 relative) is not an under-claim; over-claims are notes.
    def wiggle(bodies):
        bodies[2][1]["epsilon"] *= 1 - 1e-12
        bodies[4][1]["epsilon"] *= 1.5

    res = audit.run_audit(_write_run(tmp_path / "run2", _mutate(wiggle)), public_key=KEY.public)
    assert res["valid"] and any("conservative" in n for n in res["notes"])


def test_audit_flags_contributors_and_sets(tmp_path: Path) -> None:
    def bad(bodies):
        bodies[1][1]["dp_record"]["contributors"] = 9  # > |U3| = 8
        bodies[2][1]["dp_record"]["contributors"] = 7  # = |U3|, but one colluder assumed
        u = bodies[4][1]["survivor_sets"]
        u["U4"] = [*u["U4"], 2]  # 2 dropped at share-keys, reappears in U4
        bodies[5][1]["dropped"]["consistency"] = []  # 5 left silently

    res = audit.run_audit(_write_run(tmp_path / "run", _mutate(bad)), public_key=KEY.public)
    msgs = [(p["check"], p["round"], p["message"]) for p in res["problems"]]
    assert ("contributors", 1) in {(c, r) for c, r, _ in msgs}
    assert any(r == 1 and "> |U3| = 8" in m for _, r, m in msgs)
    assert any(r == 2 and "assumed colluders" in m for _, r, m in msgs)
    assert any(r == 3 and "U4 is not a subset of U3" in m for _, r, m in msgs)
    assert any(r == 4 and "without being listed" in m for _, r, m in msgs)
    assert not res["valid"]
    statuses = {r["round"]: r["status"] for r in res["rounds"]}
    assert "contributors" in statuses[1] and statuses[4] == "dropped"


def test_audit_flags_ledger_disagreements(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run")

    def tweak(r, rec, meta):
        if r == 2:  # the node verified fewer survivors, yet counts as many contributors
            return _rec(rec.contributors), dict(meta, verified_survivors=6)
        if r == 3:
            return None, meta  # the node's input was in the sum, but no charge
        if r == 4:
            return _rec(rec.contributors, sigma=SIGMA * 2), meta
        return rec, meta

    ledger = _write_ledger(tmp_path / "node1.jsonl", 1, tweak=tweak)
    res = audit.run_audit(run, public_key=KEY.public, ledgers=[ledger])
    assert not res["valid"]
    by_round = {}
    for p in res["problems"]:
        by_round.setdefault(p["round"], []).append(p["message"])
    assert any("> its verified |U3| 6" in m for m in by_round[2])
    assert any("verified |U3| = 6 != transcript |U3| = 7" in m for m in by_round[2])
    assert any("no entry" in m for m in by_round[3])
    assert any("sigma" in m for m in by_round[4])
    assert 1 not in by_round
    assert res["ledgers"][str(ledger)]["missing_rounds"] == [3]

    # Rounds cut from the end of the transcript: the ledger still holds them.
    cut = _bodies()[:-2]  # drop round 4 and run-end
    res = audit.run_audit(
        _write_run(tmp_path / "cut", cut),
        public_key=KEY.public,
        ledgers=[(1, _write_ledger(tmp_path / "n1b.jsonl", 1))],
    )
    assert "ledger-extra" in _checks(res)
    assert any("no run-end" in w for w in res["warnings"])


def test_audit_tampered_transcript_and_bad_input(tmp_path: Path, capsys) -> None:
    run = _write_run(tmp_path / "run")
    t = run / "transcript.jsonl"
    t.write_bytes(t.read_bytes().replace(b'"round":2', b'"round":9', 1))
    code, out, _ = _cli(capsys, [str(run), "--public-key", KEY.public.hex(), "--json"])
    res = json.loads(out)
    assert code == 1 and "transcript-integrity" in _checks(res)
    assert res["problems"][0]["message"].startswith("transcript.jsonl line 3: ")
    assert len(res["rounds"]) == 1  # the verified prefix: run-start, round 1
    # Wrong key.
    good = _write_run(tmp_path / "good")
    code, out, _ = _cli(capsys, [str(good), "--public-key", OTHER.public.hex(), "--json"])
    assert code == 1 and "signer is not the given public key" in out
    # Exit 2, one line, no traceback.
    for argv in (
        [str(tmp_path / "missing")],
        [str(good), "--ledger", str(tmp_path / "nope.jsonl")],
        [str(good), "--ledger", "node-99=x.jsonl"],
        [str(good), "--plot", str(tmp_path / "no" / "dir" / "p.png")],
    ):
        code, out, err = _cli(capsys, argv)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, argv
        assert "Traceback" not in err and err.startswith("blindsum audit: error: ")
    (good / "aggregator.signing.pub").write_text("zz")
    code, _, err = _cli(capsys, [str(good)])
    assert code == 2 and "64 hex" in err
    for bad in (["--public-key", "abc"], ["--delta", "2"]):
        with pytest.raises(SystemExit) as info:
            _parser().parse_args(["audit", str(good), *bad])
        assert info.value.code == 2
    capsys.readouterr()


def test_audit_json_shape_delta_and_plot(tmp_path: Path, capsys) -> None:
    run = _write_run(tmp_path / "run")
    ledger = _write_ledger(tmp_path / "node2.jsonl", 2)
    png = tmp_path / "eps.png"
    code, out, err = _cli(
        capsys,
        [str(run), "--public-key", KEY.public.hex(), "--ledger", str(ledger), "--json"]
        + ["--plot", str(png), "--delta", "1e-6"],
    )
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 1
    res = json.loads(lines[0])
    assert {
        "valid",
        "rounds",
        "epsilon_recomputed",
        "epsilon_claimed",
        "problems",
        "ledgers",
    } <= set(res)
    assert res["valid"] is True and res["problems"] == [] and res["delta"] == 1e-6
    row = res["rounds"][0]
    for key in (
        "round",
        "u_sizes",
        "contributors",
        "sigma",
        "gamma",
        "epsilon_claimed",
        "epsilon_recomputed",
        "epsilon_recomputed_at_claim_delta",
        "status",
    ):
        assert key in row
    # At a smaller delta the recomputed epsilon is larger than the claim (made at 1e-5).
    assert res["epsilon_recomputed"] > res["epsilon_claimed"]
    assert res["rounds"][-1]["epsilon_recomputed_at_claim_delta"] == pytest.approx(
        res["epsilon_claimed"], rel=1e-9
    )
    assert res["ledgers"][str(ledger)]["node"] == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
