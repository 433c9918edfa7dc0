"""`blindsum audit RUN_DIR`: check a run's privacy claim from its records.

What is checked (each failure is a *problem*; the run is valid iff there is none):

1. RUN_DIR/transcript.jsonl verifies (`node.transcript.verify_transcript`: canonical
   bytes, seq, prev chain, hashes, Ed25519 signatures) under the aggregator key from
   --public-key, else RUN_DIR/aggregator.signing.pub (hex), else the key written in
   the transcript itself (self-certified: that proves integrity only, not authorship;
   a warning says so). On a broken line the records before it are still analysed.
2. Structure: one run-start first, run-end (if present) last and consistent.
3. Per round: survivor sets U1 ⊇ U2 ⊇ U3 ⊇ U4 ⊇ U5 within the roster; every
   participant leaving between stages is listed as dropped at that stage or as
   refused, and nobody else is; dp_record.contributors <= |U3| (minus the policy's
   assumed colluders when run-start declares them); session ids never repeat.
4. Epsilon: recomputed with the same accountant as the nodes (dp.accounting) from
   the transcript's dp_record fields, cumulatively; a claim *lower* than the
   recomputation (relative tolerance 1e-9) is an under-claim. Over-claims are safe
   and only noted. An unpriceable dp_record makes the recomputation infinite from
   that round on (fail closed).
5. Each --ledger (a node's PrivacyLedger file, optionally as ID=FILE or NAME=FILE):
   entries are matched to rounds by session_id (else by round number); reported as
   problems: a node-verified contributor count below the aggregator's, a verified
   |U3| different from the transcript's, differing parameters or config digests,
   rounds in which the node's input was in the sum but its ledger has no entry
   (needs the node's id), and ledger entries carrying a config digest of this run
   (meta "config_digest" or "run_config_digest") whose session the transcript does
   not contain (rounds cut from, or never written to, the transcript).

Exit status: 0 valid, 1 problems found, 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dp_accounting import rdp as dp_rdp

from dp.accounting import ORDERS, RoundRecord, epsilon_for
from dp.errors import DpError
from dp.ledger import load_entries
from node.transcript import scan_transcript

__all__ = ["AuditInputError", "REL_TOL", "add_parser", "run_audit"]

REL_TOL = 1e-9
TRANSCRIPT_NAME = "transcript.jsonl"
PUBLIC_KEY_NAME = "aggregator.signing.pub"
STAGES = ("share-keys", "masked-input", "consistency", "unmasking")  # U_k -> U_k+1
U_NAMES = ("U1", "U2", "U3", "U4", "U5")
_PARAMS = ("sigma", "gamma", "clip", "padded_dim", "beta", "sampling_rate")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class AuditInputError(ValueError):
    """The audit cannot run: missing/unreadable run directory, key, ledger or plot path."""


# -- small validators ---------------------------------------------------------------------
def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _is_hex64(x: object) -> bool:
    return isinstance(x, str) and _HEX64.fullmatch(x) is not None


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _rel_below(claimed: float, actual: float) -> bool:
    """True iff `claimed` is lower than `actual` by more than REL_TOL (relative)."""
    if math.isinf(actual):
        return not math.isinf(claimed)
    return claimed < actual - REL_TOL * max(abs(actual), 1e-300)


def _id_list(x: object) -> list[int] | None:
    if isinstance(x, list) and all(_is_int(v) for v in x) and len(set(x)) == len(x):
        return list(x)
    return None


class _Findings:
    def __init__(self) -> None:
        self.problems: list[dict] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []

    def problem(self, check: str, message: str, *, round_: int | None = None, **extra) -> str:
        self.problems.append({"check": check, "round": round_, "message": message, **extra})
        return check


# -- signer -------------------------------------------------------------------------------
def _parse_key_hex(text: str, source: str) -> bytes:
    text = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise AuditInputError(f"{source}: expected 64 hex digits (a raw Ed25519 public key)")
    return bytes.fromhex(text)


def _choose_signer(
    run_dir: Path, public_key: bytes | None, f: _Findings
) -> tuple[bytes | None, str]:
    pub_file = run_dir / PUBLIC_KEY_NAME
    file_key = None
    if pub_file.exists():
        try:
            file_key = _parse_key_hex(pub_file.read_text(encoding="utf-8"), PUBLIC_KEY_NAME)
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditInputError(
                f"{PUBLIC_KEY_NAME}: cannot read ({type(exc).__name__})"
            ) from None
    if public_key is not None:
        if file_key is not None and file_key != public_key:
            f.warnings.append(f"{PUBLIC_KEY_NAME} differs from --public-key; using --public-key")
        return public_key, "--public-key"
    if file_key is not None:
        f.warnings.append(
            f"aggregator key read from RUN_DIR/{PUBLIC_KEY_NAME}, which whoever can rewrite the "
            "transcript can rewrite too: compare it with the key published out of band"
        )
        return file_key, PUBLIC_KEY_NAME
    f.warnings.append(
        "no --public-key and no aggregator.signing.pub: the transcript is checked against "
        "the key written in it (self-certified), which proves integrity only, not who wrote it"
    )
    return None, "self-certified (transcript line 1)"


# -- transcript structure -----------------------------------------------------------------
def _check_run_start(rec: dict | None, f: _Findings) -> tuple[dict, dict[int, str], set[str]]:
    """(dp policy, roster id -> name, run config digests)."""
    if rec is None or rec["kind"] != "run-start":
        f.problem("structure", "the first record is not a run-start record")
        return {}, {}, set()
    body = rec["body"]
    digests = {body["config_digest"]} if _is_hex64(body.get("config_digest")) else set()
    if not digests:
        f.problem("run-start", "run-start config_digest is not 64 hex digits")
    roster: dict[int, str] = {}
    entries = body.get("roster")
    if not isinstance(entries, list) or not entries:
        f.problem("run-start", "run-start roster is missing or empty")
        entries = []
    for i, e in enumerate(entries):
        if not (isinstance(e, dict) and _is_int(e.get("id")) and isinstance(e.get("name"), str)):
            f.problem("run-start", f"roster entry {i} has no integer id and string name")
            continue
        if e["id"] in roster or e["name"] in roster.values():
            f.problem("run-start", f"roster entry {i} repeats an id or name")
        roster[e["id"]] = e["name"]
        if not _is_hex64(e.get("signing_public_key")):
            f.problem("run-start", f"roster entry {e['name']!r} has no 64-hex signing_public_key")
    policy = body.get("dp")
    if not isinstance(policy, dict):
        f.problem("run-start", "run-start has no dp object")
        policy = {}
    return policy, roster, digests


def _check_sets(body: dict, r: int | None, roster: dict[int, str], f: _Findings) -> list | None:
    """Validate survivor sets, dropped and refused; return [U1..U5] as sets or None."""
    ss = body.get("survivor_sets")
    if not isinstance(ss, dict) or set(ss) != set(U_NAMES):
        f.problem("survivor-sets", "survivor_sets must have exactly U1..U5", round_=r)
        return None
    us = []
    for name in U_NAMES:
        ids = _id_list(ss[name])
        if ids is None:
            f.problem("survivor-sets", f"{name} is not a list of distinct integer ids", round_=r)
            return None
        us.append(set(ids))
    for k in range(4):
        if not us[k + 1] <= us[k]:
            extra = sorted(us[k + 1] - us[k])
            f.problem(
                "survivor-sets",
                f"{U_NAMES[k + 1]} is not a subset of {U_NAMES[k]} (extra ids {extra})",
                round_=r,
            )
    if roster and not us[0] <= roster.keys():
        f.problem(
            "survivor-sets",
            f"U1 has ids not in the roster: {sorted(us[0] - roster.keys())}",
            round_=r,
        )
    refused_raw = body.get("refused", {})
    refused: set[int] = set()
    if not isinstance(refused_raw, dict):
        f.problem("refused", "refused is not an object", round_=r)
    else:
        for key, reason in refused_raw.items():
            if not re.fullmatch(r"-?[0-9]+", key) or not isinstance(reason, str):
                f.problem("refused", f"refused entry {key!r} is not id -> reason", round_=r)
                continue
            refused.add(int(key))
        if roster and not refused <= roster.keys():
            f.problem(
                "refused",
                f"refused ids not in the roster: {sorted(refused - roster.keys())}",
                round_=r,
            )
        if refused & us[4]:
            f.problem("refused", f"refused ids are in U5: {sorted(refused & us[4])}", round_=r)
    dropped = body.get("dropped")
    if not isinstance(dropped, dict) or not set(dropped) <= set(STAGES):
        f.problem("dropped", f"dropped must be an object with keys among {list(STAGES)}", round_=r)
        return us
    for k, stage in enumerate(STAGES):
        ids = _id_list(dropped.get(stage, []))
        if ids is None:
            f.problem("dropped", f"dropped[{stage!r}] is not a list of distinct ids", round_=r)
            continue
        left = us[k] - us[k + 1]
        if not set(ids) <= left:
            f.problem(
                "dropped",
                f"dropped[{stage!r}] lists ids that did not leave between {U_NAMES[k]} and "
                f"{U_NAMES[k + 1]}: {sorted(set(ids) - left)}",
                round_=r,
            )
        unexplained = left - set(ids) - refused
        if unexplained:
            f.problem(
                "dropped",
                f"ids left between {U_NAMES[k]} and {U_NAMES[k + 1]} without being listed as "
                f"dropped at {stage!r} or refused: {sorted(unexplained)}",
                round_=r,
            )
    return us


def _check_round(
    rec: dict, policy: dict, roster: dict[int, str], f: _Findings
) -> tuple[dict, RoundRecord | None]:
    body = rec["body"]
    r = body.get("round") if _is_int(body.get("round")) else None
    n_before = len(f.problems)
    if r is None:
        f.problem("round", f"record seq {rec['seq']}: round is not an integer")
    for field in ("session_id", "config_digest", "sum_digest"):
        if not _is_hex64(body.get(field)):
            f.problem("round", f"{field} is not 64 hex digits", round_=r)
    us = _check_sets(body, r, roster, f)
    record = None
    try:
        raw = body.get("dp_record")
        if not isinstance(raw, dict) or not _is_int(raw.get("contributors")):
            raise ValueError("no integer contributors")
        record = RoundRecord.from_json(raw)
    except (DpError, TypeError, ValueError) as exc:
        f.problem("dp-record", f"dp_record is not a valid RoundRecord ({exc})", round_=r)
    if record is not None and us is not None:
        u3 = len(us[2])
        if record.contributors > u3:
            f.problem(
                "contributors",
                f"dp_record.contributors = {record.contributors} > |U3| = {u3}: the claim "
                "counts noise shares that are not in the sum",
                round_=r,
            )
        colluders = policy.get("assumed_colluders")
        if _is_int(colluders) and colluders > 0 and record.contributors > u3 - colluders:
            f.problem(
                "contributors",
                f"dp_record.contributors = {record.contributors} > |U3| - assumed colluders = "
                f"{u3 - colluders}",
                round_=r,
            )
        least = policy.get("min_contributors")
        if _is_int(least) and record.contributors < least:
            f.problem(
                "contributors",
                f"a sum was released with {record.contributors} contributors < the policy's "
                f"minimum {least}",
                round_=r,
            )
    if record is not None and _is_num(policy.get("clip")) and record.clip != policy["clip"]:
        f.problem(
            "parameters",
            f"dp_record.clip {record.clip} != run-start clip {policy['clip']}",
            round_=r,
        )
    claimed = body.get("epsilon")
    if not (_is_num(claimed) and claimed >= 0):
        f.problem("claim", "epsilon is not a finite number >= 0", round_=r)
        claimed = None
    delta = body.get("delta")
    if not (_is_num(delta) and 0 < delta < 1):
        f.problem("claim", "delta is not in (0, 1)", round_=r)
        delta = None
    elif _is_num(policy.get("delta")) and delta != policy["delta"]:
        f.problem(
            "claim", f"delta {delta:g} differs from run-start delta {policy['delta']:g}", round_=r
        )
    row = {
        "round": r,
        "seq": rec["seq"],
        "session_id": body.get("session_id"),
        "config_digest": body.get("config_digest"),
        "u_sizes": [len(u) for u in us] if us is not None else None,
        "contributors": record.contributors if record else None,
        **{p: getattr(record, p) if record else None for p in _PARAMS},
        "epsilon_claimed": claimed,
        "delta": delta,
        "accuracy": body.get("accuracy") if _is_num(body.get("accuracy")) else None,
        "_us": us,
        "_checks": [p["check"] for p in f.problems[n_before:]],
    }
    return row, record


class _Cumulative:
    """Cumulative epsilon over a growing sequence of rounds: each round's RDP curve is
    computed once (same accountant as dp.epsilon_for, which re-prices every prefix)."""

    def __init__(self) -> None:
        self.curve = None
        self.unpriceable = False
        self._cache: dict[RoundRecord, Any] = {}

    def add(self, record: RoundRecord | None) -> None:
        if record is None:
            self.unpriceable = True
            return
        if record not in self._cache:
            self._cache[record] = record.rdp()
        rdp = self._cache[record]
        self.curve = rdp.copy() if self.curve is None else self.curve + rdp

    def epsilon(self, delta: float) -> float:
        if self.unpriceable:
            return math.inf
        if self.curve is None:
            return 0.0
        return float(dp_rdp.compute_epsilon(ORDERS, self.curve, delta)[0])


# -- ledgers -------------------------------------------------------------------------------
def _resolve_node(token: str, roster: dict[int, str]) -> int:
    if re.fullmatch(r"-?[0-9]+", token):
        return int(token)
    for i, name in roster.items():
        if name == token:
            return i
    raise AuditInputError(f"--ledger {token}=...: {token!r} is neither an id nor a roster name")


def _ledger_specs(ledgers: Sequence, roster: dict[int, str]) -> list[tuple[str, Path, int | None]]:
    specs = []
    for item in ledgers:
        if isinstance(item, tuple):
            node, path = item
            node = _resolve_node(str(node), roster) if node is not None else None
            specs.append((str(path), Path(path), node))
            continue
        text = os.fspath(item)
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)=(.+)", text)
        if m and not Path(text).exists():
            specs.append((text, Path(m.group(2)), _resolve_node(m.group(1), roster)))
        else:
            specs.append((text, Path(text), None))
    return specs


def _audit_ledger(
    label: str,
    path: Path,
    node: int | None,
    rows: list[dict],
    run_digests: set[str],
    delta: float | None,
    f: _Findings,
) -> dict:
    if not path.is_file():
        raise AuditInputError(f"ledger {label}: no such file")
    try:
        entries = load_entries(path)
    except (DpError, OSError, UnicodeDecodeError) as exc:
        raise AuditInputError(f"ledger {label}: unreadable ({exc})") from None
    by_session = {
        row["session_id"]: row for row in rows if row["session_id"] and row["round"] is not None
    }
    by_round = {row["round"]: row for row in rows if row["round"] is not None}
    meta_nodes = {m.get("node_id") for _, m in entries if m and "node_id" in m}
    if node is None and len(meta_nodes) == 1:
        node = next(iter(meta_nodes))
        node = node if _is_int(node) else None
    elif node is not None and meta_nodes - {node}:
        f.problem(
            "ledger", f"ledger {label}: node_id in entries {sorted(map(str, meta_nodes))} != {node}"
        )
    found: list[tuple[dict, RoundRecord, dict]] = []
    no_meta = unmatched = 0
    for record, meta in entries:
        if not meta:
            no_meta += 1
            continue
        sid = meta.get("session_id")
        ours = (
            meta.get("config_digest") in run_digests or meta.get("run_config_digest") in run_digests
        )
        if sid is not None:
            row = by_session.get(sid)
        else:  # weak: by round number, only if nothing says the entry is from another run
            cd = meta.get("config_digest")
            row = by_round.get(meta.get("round")) if cd is None or ours else None
        if row is None:
            unmatched += 1
            if ours:
                f.problem(
                    "ledger-extra",
                    f"ledger {label}: charged round {meta.get('round')!r} (session "
                    f"{str(sid)[:16]!r}...) of this run, which the transcript does not contain",
                    ledger=label,
                )
            continue
        found.append((row, record, meta))
    matched: dict[int, dict] = {}
    seen_rounds: set[int] = set()
    this_run = _Cumulative()
    for row, record, meta in found:
        r = row["round"]
        if r in seen_rounds:
            f.notes.append(f"ledger {label}: round {r} charged more than once (conservative)")
        seen_rounds.add(r)
        this_run.add(record)
        disagreements = []
        if _is_int(meta.get("round")) and meta["round"] != r:
            disagreements.append(f"round number {meta['round']} != transcript round {r}")
        cd = meta.get("config_digest")
        if cd is not None and cd != row["config_digest"]:
            disagreements.append("config_digest differs from the transcript's")
        # A node counting fewer contributors than the aggregator is expected (it
        # subtracts the colluders its own policy assumes): conservative, not a problem.
        # Counting more than it verified minus its colluders would be.
        vs = meta.get("verified_survivors")
        ac = meta.get("assumed_colluders")
        if _is_int(vs) and _is_int(ac) and record.contributors > max(1, vs - ac):
            disagreements.append(
                f"node counts {record.contributors} contributors > its verified |U3| {vs} "
                f"minus its assumed colluders {ac}"
            )
        if _is_int(vs) and row["u_sizes"] is not None and vs != row["u_sizes"][2]:
            disagreements.append(
                f"node verified |U3| = {vs} != transcript |U3| = {row['u_sizes'][2]}"
            )
        for p in _PARAMS:
            theirs = row[p]
            if theirs is not None and not math.isclose(getattr(record, p), theirs, rel_tol=1e-12):
                disagreements.append(f"{p} {getattr(record, p)!r} != transcript {theirs!r}")
        for d in disagreements:
            f.problem("ledger", f"ledger {label}, round {r}: {d}", round_=r, ledger=label)
        matched[r] = {
            "contributors": record.contributors,
            "verified_survivors": vs if _is_int(vs) else None,
            "epsilon_cumulative": _finite_or_none(this_run.epsilon(delta)) if delta else None,
            "disagreements": disagreements,
        }
    missing = []
    for row in rows:
        r, us = row["round"], row["_us"]
        if r in seen_rounds or r is None:
            continue
        if node is None or (us is not None and node in us[2]):
            missing.append(r)
    if node is not None:
        for r in missing:
            f.problem(
                "ledger-missing",
                f"ledger {label}: node {node}'s input was in the sum of round {r} but its "
                "ledger has no entry for it",
                round_=r,
                ledger=label,
            )
    elif missing and found:
        f.warnings.append(
            f"ledger {label}: no entry for rounds {missing} (node id unknown: pass "
            "--ledger ID=FILE to tell absence from a missing charge)"
        )
    all_records = [rec for rec, _ in entries]
    eps_all = epsilon_for(all_records, delta)[0] if delta and all_records else 0.0
    return {
        "path": str(path),
        "node": node,
        "entries": len(entries),
        "matched_rounds": sorted(matched),
        "rounds": {str(r): v for r, v in sorted(matched.items())},
        "missing_rounds": missing,
        "entries_without_meta": no_meta,
        "entries_other_runs": unmatched,
        "epsilon_this_run": _finite_or_none(this_run.epsilon(delta)) if delta else None,
        "epsilon_all_entries": _finite_or_none(eps_all),
        "delta": delta,
    }


# -- the audit -----------------------------------------------------------------------------
def run_audit(
    run_dir: str | os.PathLike[str],
    *,
    public_key: bytes | None = None,
    ledgers: Sequence[
        str | os.PathLike[str] | tuple[int | str | None, str | os.PathLike[str]]
    ] = (),
    delta: float | None = None,
    plot: str | os.PathLike[str] | None = None,
) -> dict:
    """Audit the run in `run_dir`; return the JSON-ready result (see module docstring).

    `ledgers`: paths, "ID=PATH"/"NAME=PATH" strings, or (node, path) pairs. `delta`:
    report recomputed epsilons at this delta (default: the transcript's); claims are
    always compared at the delta they were made at. Raises AuditInputError when the
    audit cannot run (exit status 2); problems found are in result["problems"].
    """
    f = _Findings()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise AuditInputError(f"{run_dir}: not a directory")
    if public_key is not None and (not isinstance(public_key, bytes) or len(public_key) != 32):
        raise AuditInputError("public key must be 32 bytes")
    if delta is not None and not (_is_num(delta) and 0 < delta < 1):
        raise AuditInputError("delta must be in (0, 1)")
    signer, signer_source = _choose_signer(run_dir, public_key, f)
    tpath = run_dir / TRANSCRIPT_NAME
    if not tpath.is_file():
        raise AuditInputError(f"{tpath}: no such file")
    try:
        records, error = scan_transcript(tpath, signer)
    except OSError as exc:
        raise AuditInputError(f"{tpath}: cannot read ({exc.strerror})") from None
    if error is not None:
        f.problem("transcript-integrity", str(error))
        f.warnings.append(f"only the {len(records)} records before the broken line are analysed")
    if not records and error is None:
        f.problem("structure", "the transcript is empty")

    policy, roster, run_digests = _check_run_start(records[0] if records else None, f)
    claim_delta = policy.get("delta") if _is_num(policy.get("delta")) else None
    rows: list[dict] = []
    round_records: list[RoundRecord | None] = []
    aborted: list[dict] = []
    run_end: dict | None = None
    sessions: set[str] = set()
    for rec in records[1:]:
        kind = rec["kind"]
        if run_end is not None:
            f.problem("structure", f"record seq {rec['seq']} ({kind}) follows run-end")
        if kind == "round":
            row, record = _check_round(rec, policy, roster, f)
            prev_r = rows[-1]["round"] if rows else None
            if prev_r is not None and row["round"] is not None and row["round"] <= prev_r:
                row["_checks"].append(
                    f.problem("structure", "round numbers do not increase", round_=row["round"])
                )
            sid = row["session_id"]
            if sid in sessions:
                row["_checks"].append(
                    f.problem(
                        "session", "session_id repeats an earlier round's", round_=row["round"]
                    )
                )
            sessions.add(sid)
            if claim_delta is None and row["delta"] is not None:
                claim_delta = row["delta"]
            rows.append(row)
            round_records.append(record)
        elif kind == "round-aborted":
            b = rec["body"]
            aborted.append(
                {"round": b.get("round"), "stage": b.get("stage"), "reason": b.get("reason")}
            )
        elif kind == "run-end":
            run_end = rec["body"]
        elif kind == "run-start":
            f.problem("structure", f"record seq {rec['seq']}: a second run-start")
        elif kind == "ckks-setup":
            pass  # the CKKS path's key-custody set-up (its rounds are checked like any round)
        else:
            f.warnings.append(f"record seq {rec['seq']}: unknown kind {kind!r} ignored")

    audit_delta = delta if delta is not None else claim_delta
    if rows and audit_delta is None:
        raise AuditInputError("the transcript states no valid delta; pass --delta")

    # Epsilon: recompute cumulatively, compare each claim at the delta it was made at.
    cum = _Cumulative()
    for row, record in zip(rows, round_records, strict=True):
        cum.add(record)
        at_audit = cum.epsilon(audit_delta)
        row["epsilon_recomputed"] = _finite_or_none(at_audit)
        at_claim = at_audit if row["delta"] in (None, audit_delta) else cum.epsilon(row["delta"])
        row["epsilon_recomputed_at_claim_delta"] = _finite_or_none(at_claim)
        claimed = row["epsilon_claimed"]
        if claimed is not None and row["delta"] is not None:
            if _rel_below(claimed, at_claim):
                row["_checks"].append(
                    f.problem(
                        "under-claim",
                        f"claimed epsilon {claimed:.9g} < recomputed {at_claim:.9g} "
                        f"at delta {row['delta']:g}",
                        round_=row["round"],
                    )
                )
            elif claimed > at_claim * (1 + 1e-6) + 1e-12:
                f.notes.append(
                    f"round {row['round']}: claim {claimed:.6g} exceeds recomputation "
                    f"{at_claim:.6g} (conservative)"
                )
    eps_final = cum.epsilon(audit_delta) if rows else 0.0
    eps_final_claim_delta = cum.epsilon(claim_delta) if rows and claim_delta else eps_final
    if rows and not cum.unpriceable:  # the incremental path must agree with epsilon_for
        ref = epsilon_for([r for r in round_records if r is not None], audit_delta)[0]
        if not math.isclose(ref, eps_final, rel_tol=1e-12):
            f.problem("internal", f"accountant disagreement {ref!r} vs {eps_final!r}")

    claimed_final = rows[-1]["epsilon_claimed"] if rows else None
    if run_end is None:
        if records:
            f.warnings.append(
                "no run-end record: the run did not finish, or records were cut from the end "
                "(a hash chain cannot show that; cross-check with the nodes' ledgers)"
            )
    else:
        done = run_end.get("rounds_completed")
        if done != len(rows):
            f.problem(
                "run-end", f"rounds_completed = {done!r} but the transcript has {len(rows)} rounds"
            )
        eps_end, delta_end = run_end.get("epsilon"), run_end.get("delta")
        if not (_is_num(eps_end) and _is_num(delta_end) and 0 < delta_end < 1):
            f.problem("run-end", "run-end epsilon/delta are not valid numbers")
        else:
            claimed_final = eps_end
            actual = cum.epsilon(delta_end) if rows else 0.0
            if _rel_below(eps_end, actual):
                f.problem(
                    "under-claim",
                    f"run-end claims epsilon {eps_end:.9g} < recomputed {actual:.9g} "
                    f"at delta {delta_end:g}",
                )
    target = policy.get("target_epsilon")
    if _is_num(target) and rows and _rel_below(target, eps_final_claim_delta):
        f.problem(
            "budget",
            f"recomputed epsilon {eps_final_claim_delta:.6g} exceeds the run's target "
            f"{target:g} at delta {claim_delta:g}",
        )

    run_digests |= {row["config_digest"] for row in rows if _is_hex64(row["config_digest"])}
    specs = _ledger_specs(ledgers, roster)
    ledger_reports = {
        label: _audit_ledger(label, path, node, rows, run_digests, audit_delta, f)
        for label, path, node in specs
    }

    for row in rows:
        row["status"] = "ok" if not row["_checks"] else ",".join(dict.fromkeys(row["_checks"]))
    for row in rows:  # ledger problems found later also mark their round
        extra = [p["check"] for p in f.problems if p.get("round") == row["round"]]
        if extra:
            row["status"] = ",".join(dict.fromkeys(extra))
    result = {
        "valid": not f.problems,
        "run_dir": str(run_dir),
        "signer": signer.hex() if signer else (records[0]["signer"] if records else None),
        "signer_source": signer_source,
        "transcript_records": len(records),
        "delta": audit_delta,
        "epsilon_recomputed": _finite_or_none(eps_final),
        "epsilon_claimed": claimed_final,
        "target_epsilon": target if _is_num(target) else None,
        "run_complete": run_end is not None,
        "rounds": [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows],
        "aborted_rounds": aborted,
        "problems": f.problems,
        "warnings": f.warnings,
        "notes": f.notes,
        "ledgers": ledger_reports,
    }
    if plot is not None:
        _plot(result, Path(plot))
        result["plot"] = str(plot)
    return result


def _plot(result: dict, path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state (Agg canvas)

    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    rows = result["rounds"]
    xs = [r["round"] for r in rows]
    ax.plot(xs, [r["epsilon_recomputed"] for r in rows], "o-", label="recomputed (auditor)")
    ax.plot(xs, [r["epsilon_claimed"] for r in rows], "x--", label="claimed (aggregator)")
    for rep in result["ledgers"].values():
        pts = [(int(r), v["epsilon_cumulative"]) for r, v in rep["rounds"].items()]
        if pts:
            name = f"node {rep['node']}" if rep["node"] is not None else Path(rep["path"]).name
            ax.plot(*zip(*pts, strict=True), ".:", label=f"ledger: {name} (this run)")
    bad = [r for r in rows if r["status"] != "ok" and r["epsilon_recomputed"] is not None]
    if bad:
        ax.scatter(
            [r["round"] for r in bad],
            [r["epsilon_recomputed"] for r in bad],
            s=120,
            facecolors="none",
            edgecolors="red",
            label="problem",
        )
    if result["target_epsilon"] is not None:
        ax.axhline(result["target_epsilon"], color="grey", lw=0.8, ls="-.", label="target")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel(
        f"cumulative epsilon (delta = {result['delta']:g})" if result["delta"] else "epsilon"
    )
    ax.set_title("blindsum audit: " + ("valid" if result["valid"] else "PROBLEMS FOUND"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    try:
        fig.savefig(path, format="png", dpi=110)
    except OSError as exc:
        raise AuditInputError(f"--plot {path}: cannot write ({exc.strerror})") from None


# -- command line ----------------------------------------------------------------------------
def _hex_key(text: str) -> bytes:
    try:
        return _parse_key_hex(text, "--public-key")
    except AuditInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _delta_arg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(v) and 0 < v < 1):
        raise argparse.ArgumentTypeError(f"{text} is outside the allowed range (0, 1)")
    return v


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `audit` on the dispatcher's subparsers."""
    p = subparsers.add_parser(
        "audit",
        help="verify a run's transcript and recompute its privacy claim",
        description="Verify RUN_DIR/transcript.jsonl, recompute epsilon from its round "
        "records, cross-check node ledgers. Exit 0 valid, 1 problems, 2 bad input.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="directory holding transcript.jsonl")
    p.add_argument(
        "--public-key",
        type=_hex_key,
        metavar="HEX",
        help="the aggregator's Ed25519 public key (64 hex digits)",
    )
    p.add_argument(
        "--ledger",
        action="append",
        default=[],
        metavar="[ID=]FILE",
        help="a node's privacy ledger (repeatable); ID or roster NAME identifies the node",
    )
    p.add_argument(
        "--delta", type=_delta_arg, help="report epsilon at this delta (default: the run's)"
    )
    p.add_argument("--plot", metavar="FILE.png", help="write epsilon over rounds as a PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_audit)


def _fmt(x: float | None, spec: str = ".6g") -> str:
    return "-" if x is None else format(x, spec)


def _cmd_audit(args: argparse.Namespace) -> int:
    try:
        result = run_audit(
            args.run_dir,
            public_key=args.public_key,
            ledgers=args.ledger,
            delta=args.delta,
            plot=args.plot,
        )
    except AuditInputError as exc:
        print(f"blindsum audit: error: {exc}", file=sys.stderr)
        return 2
    for w in result["warnings"]:
        print(f"blindsum audit: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, sort_keys=True, allow_nan=False))
    else:
        _print_human(result)
    return 0 if result["valid"] else 1


def _print_human(result: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # Not a terminal (pipe, file, CI log): a wide fixed width instead of rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    table = Table(title=escape(f"blindsum audit: {result['run_dir']}"))
    for col in ("round", "|U1|", "|U2|", "|U3|", "|U4|", "|U5|", "contrib", "sigma", "gamma"):
        table.add_column(col, justify="right")
    table.add_column("eps claimed", justify="right")
    table.add_column("eps recomputed", justify="right")
    other_delta = any(r["delta"] != result["delta"] for r in result["rounds"])
    if other_delta:
        table.add_column(f"eps @ delta {result['delta']:g}", justify="right")
    table.add_column("status")
    for r in result["rounds"]:
        sizes = r["u_sizes"] or [None] * 5
        status = "[green]ok[/]" if r["status"] == "ok" else f"[red]{r['status']}[/]"
        table.add_row(
            str(r["round"]),
            *("-" if s is None else str(s) for s in sizes),
            "-" if r["contributors"] is None else str(r["contributors"]),
            _fmt(r["sigma"], ".4g"),
            _fmt(r["gamma"], ".4g"),
            _fmt(r["epsilon_claimed"]),
            _fmt(r["epsilon_recomputed_at_claim_delta"]),
            *([_fmt(r["epsilon_recomputed"])] if other_delta else []),
            status,
        )
    console.print(table)
    for label, rep in result["ledgers"].items():
        node = rep["node"] if rep["node"] is not None else "?"
        line = (
            f"ledger {label}: node {node}, {len(rep['matched_rounds'])} rounds matched, "
            f"epsilon this run {_fmt(rep['epsilon_this_run'])}, "
            f"all entries {_fmt(rep['epsilon_all_entries'])}"
        )
        console.print(escape(line), highlight=False)
    for note in result["notes"]:
        console.print(escape(f"note: {note}"), style="dim", highlight=False)
    for p in result["problems"]:
        where = f"round {p['round']}: " if p["round"] is not None else ""
        text = f"[{p['check']}] {where}{p['message']}"
        console.print(f"[red]problem[/] {escape(text)}", highlight=False)
    signer = (
        f"signer {result['signer'][:16]}... ({result['signer_source']})"
        if result["signer"]
        else "no signer"
    )
    eps = f"epsilon {_fmt(result['epsilon_recomputed'])} at delta {_fmt(result['delta'], 'g')}"
    if result["valid"]:
        console.print(
            f"[bold green]VALID[/]: {len(result['rounds'])} rounds, {eps} "
            f"(claimed {_fmt(result['epsilon_claimed'])}), {signer}",
            highlight=False,
        )
    else:
        console.print(
            f"[bold red]INVALID[/]: {len(result['problems'])} problem(s); recomputed {eps}, {signer}",
            highlight=False,
        )
