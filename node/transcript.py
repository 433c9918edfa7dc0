"""The aggregator's run transcript: hash-chained, Ed25519-signed JSON lines.

Every line of ``transcript.jsonl`` is one record, written in canonical JSON
(``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)``, UTF-8) followed by ``"\\n"``::

    {"body": {...}, "hash": hex, "kind": str, "prev": hex, "seq": int,
     "signature": hex, "signer": hex, "time": "2025-01-01T00:00:00.000000+00:00"}

- ``seq``: 0, 1, 2, ... with no gap;
- ``time``: UTC, ISO-8601 (informational: clocks are not trusted, not checked for order);
- ``prev``: hex SHA-256 of the previous line's bytes (its full canonical JSON,
  hash and signature included, without the newline); 64 zeros on line 0;
- ``signer``: hex raw Ed25519 public key of the aggregator;
- ``hash``: hex SHA-256 of the canonical JSON of the record without "hash" and
  "signature";
- ``signature``: hex Ed25519 signature (RFC 8032) over the 32 hash bytes.

`verify_transcript` also requires every line to be byte-for-byte the canonical
serialisation of what it parses to, so any changed byte (in a value, a key, the
punctuation, an escape, the number format or a newline) is detected, not only
changes that alter a value. What a hash chain cannot show by itself is that
records were dropped *from the end* at a record boundary: the auditor relies on the
"run-end" record and on the nodes' own ledgers for that.

Record kinds written by the aggregator (`verify_transcript` does not look inside
bodies; ``node.audit`` does):

``run-start``
    {"federation": str, "config_digest": hex, "roster": [{"name", "id",
    "fingerprint", "signing_public_key"}], "dp": {"target_epsilon", "delta",
    "bits", "clip", optional "assumed_colluders", "min_contributors", ...},
    "secagg": {...}}
``round``
    {"round": int, "config_digest": hex, "session_id": hex,
    "survivor_sets": {"U1": [ids], ..., "U5": [ids]},
    "dropped": {"share-keys": [ids], "masked-input": [ids], "consistency": [ids],
    "unmasking": [ids]},  (U1\\U2, U2\\U3, U3\\U4, U4\\U5 except refusals)
    "refused": {"<id>": reason}, "dp_record": RoundRecord.to_json() (contributors =
    the noise shares the aggregator accounts with, assumed colluders already
    subtracted), "sum_digest": hex SHA-256 of the released integer sum bytes,
    "epsilon": the aggregator's cumulative epsilon at "delta" after this round,
    "delta": float, optional "accuracy": float}
``round-aborted``
    {"round": int, "reason": str, "stage": str}  (no sum released: no privacy cost)
``run-end``
    {"rounds_completed": int, "epsilon": float, "delta": float,
    "final_model_digest": hex}

Transcripts are public: `TranscriptWriter.append` refuses bodies with keys that
name secrets (secret, private, password, passphrase), as a guard against accidents.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from secagg.crypto import SigningKey, verify_signature

__all__ = [
    "GENESIS_PREV",
    "TranscriptError",
    "TranscriptWriter",
    "canonical_json",
    "record_hash",
    "scan_transcript",
    "verify_transcript",
]

GENESIS_PREV = "0" * 64
_FIELDS = frozenset({"seq", "kind", "time", "prev", "body", "signer", "hash", "signature"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_KIND = re.compile(r"[a-z][a-z0-9-]{0,63}")
_SECRET_KEY = re.compile(r"secret|private|password|passphrase", re.IGNORECASE)


class TranscriptError(ValueError):
    """A transcript is malformed, tampered with, or cannot be written as asked."""


def canonical_json(obj: Any) -> bytes:
    """The canonical UTF-8 bytes of `obj` (sorted keys, no spaces, no NaN/inf)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def record_hash(record: dict) -> str:
    """Hex SHA-256 of the canonical JSON of `record` without "hash" and "signature"."""
    unsigned = {k: v for k, v in record.items() if k not in ("hash", "signature")}
    return hashlib.sha256(canonical_json(unsigned)).hexdigest()


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def _secret_key_path(obj: Any, path: str = "body") -> str | None:
    """The path of the first dict key in `obj` that names a secret, if any."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and _SECRET_KEY.search(k):
                return f"{path}.{k}"
            found = _secret_key_path(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            found = _secret_key_path(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _is_utc_iso(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return t.utcoffset() == _dt.timedelta(0)


def scan_transcript(
    path: str | os.PathLike[str], public_key: bytes | None = None
) -> tuple[list[dict], TranscriptError | None]:
    """The records that verify, in order, and the first problem (None if none).

    Same checks as `verify_transcript`, but returns the verified prefix together with
    the error instead of raising (auditors analyse what precedes a broken line).
    OSError (missing/unreadable file) propagates: that is not a transcript problem.
    """
    path = Path(path)
    data = path.read_bytes()
    name = path.name
    records: list[dict] = []
    if not data:
        return records, None
    expected_signer = public_key.hex() if public_key is not None else None
    prev = GENESIS_PREV
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail is b"" iff the file ends with "\n"
    for lineno, raw in enumerate(complete + ([tail] if tail else []), 1):

        def fail(what: str, lineno: int = lineno) -> tuple[list[dict], TranscriptError]:
            return records, TranscriptError(f"{name} line {lineno}: {what}")

        if lineno > len(complete):
            return fail("truncated (no newline at the end of the last line)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return fail("not valid UTF-8")
        try:
            rec = json.loads(text)
        except (ValueError, RecursionError):
            return fail("not valid JSON")
        if not isinstance(rec, dict):
            return fail("not a JSON object")
        if set(rec) != _FIELDS:
            missing, extra = sorted(_FIELDS - set(rec)), sorted(set(rec) - _FIELDS)
            return fail(f"wrong fields (missing {missing}, unexpected {extra})")
        try:
            canonical = canonical_json(rec)
        except ValueError:
            return fail("contains a non-finite number")
        if canonical != raw:
            return fail("not in canonical form (bytes differ from the canonical JSON)")
        seq = rec["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq != lineno - 1:
            return fail(f"seq is {seq!r}, expected {lineno - 1}")
        if not (isinstance(rec["kind"], str) and _KIND.fullmatch(rec["kind"])):
            return fail("kind is not a lower-case name")
        if not _is_utc_iso(rec["time"]):
            return fail("time is not a UTC ISO-8601 timestamp")
        if not isinstance(rec["body"], dict):
            return fail("body is not a JSON object")
        for field, pattern in (("prev", _HEX64), ("hash", _HEX64), ("signer", _HEX64)):
            if not (isinstance(rec[field], str) and pattern.fullmatch(rec[field])):
                return fail(f"{field} is not 64 lower-case hex digits")
        if not (isinstance(rec["signature"], str) and _HEX128.fullmatch(rec["signature"])):
            return fail("signature is not 128 lower-case hex digits")
        if rec["prev"] != prev:
            return fail("prev does not match the previous record (chain broken)")
        if rec["hash"] != record_hash(rec):
            return fail("hash does not match the record's contents")
        if expected_signer is None:
            expected_signer = rec["signer"]
        if rec["signer"] != expected_signer:
            what = "the given public key" if public_key is not None else "line 1's signer"
            return fail(f"signer is not {what}")
        if not verify_signature(
            bytes.fromhex(expected_signer),
            bytes.fromhex(rec["hash"]),
            bytes.fromhex(rec["signature"]),
        ):
            return fail("signature does not verify")
        records.append(rec)
        prev = hashlib.sha256(raw).hexdigest()
    return records, None


def verify_transcript(path: str | os.PathLike[str], public_key: bytes | None = None) -> list[dict]:
    """Verify the whole transcript at `path`; return its records (parsed lines).

    Checks, line by line: UTF-8, JSON object with exactly the record fields, bytes
    equal to the canonical JSON, seq continuity from 0, prev links, hash, and the
    Ed25519 signature under `public_key` (or, if None, under line 1's signer, which
    must then sign every line: that proves integrity only, not who wrote it).
    Raises TranscriptError("<file> line N: <what is wrong>") at the first problem;
    OSError if the file cannot be read. An empty file is an empty (valid) chain.
    """
    if public_key is not None and (
        not isinstance(public_key, bytes | bytearray) or len(public_key) != 32
    ):
        raise TranscriptError("public_key must be 32 raw bytes")
    records, error = scan_transcript(path, None if public_key is None else bytes(public_key))
    if error is not None:
        raise error
    return records


class TranscriptWriter:
    """Appends signed, hash-chained records to a transcript file (one JSON line each).

    A new file is created exclusively; an existing one is refused unless
    ``resume=True``, in which case it is first verified under this key and the chain
    continues from its last record. Every line is flushed and fsync'ed before
    `append` returns. Thread-safe. Use as a context manager or call `close()`.
    """

    def __init__(
        self, path: str | os.PathLike[str], signing_key: SigningKey, *, resume: bool = False
    ) -> None:
        if not isinstance(signing_key, SigningKey):
            raise TypeError("signing_key must be a secagg.crypto.SigningKey")
        self.path = Path(path)
        self._key = signing_key
        self._signer = signing_key.public.hex()
        self._lock = threading.Lock()
        self._broken = False
        self._seq = 0
        self._prev = GENESIS_PREV
        if self.path.exists():
            if not resume:
                raise TranscriptError(
                    f"{self.path.name}: already exists; refusing to overwrite or append "
                    "(pass resume=True to continue its chain)"
                )
            records = verify_transcript(self.path, signing_key.public)
            if records:
                last = records[-1]
                self._seq = last["seq"] + 1
                self._prev = hashlib.sha256(canonical_json(last)).hexdigest()
            self._fh = self.path.open("ab")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("xb")
            _fsync_dir(self.path.parent)

    def __repr__(self) -> str:
        return (
            f"TranscriptWriter(path={str(self.path)!r}, signer={self._signer[:16]}..., "
            f"next_seq={self._seq})"
        )

    @property
    def next_seq(self) -> int:
        return self._seq

    def append(self, kind: str, body: dict) -> dict:
        """Sign and durably write one record; return it as it will read back."""
        if not (isinstance(kind, str) and _KIND.fullmatch(kind)):
            raise TranscriptError("kind must be a lower-case name like 'round' or 'run-start'")
        if not isinstance(body, dict):
            raise TranscriptError("body must be a dict")
        leaked = _secret_key_path(body)
        if leaked:
            raise TranscriptError(f"refusing to write {leaked}: transcripts are public")
        with self._lock:
            if self._broken:
                raise TranscriptError(f"{self.path.name}: an earlier write failed; not appending")
            if self._fh.closed:
                raise TranscriptError(f"{self.path.name}: writer is closed")
            record: dict[str, Any] = {
                "seq": self._seq,
                "kind": kind,
                "time": _utc_now(),
                "prev": self._prev,
                "body": body,
                "signer": self._signer,
            }
            try:
                # Round-trip through JSON so the record is exactly what a reader parses.
                record = json.loads(canonical_json(record))
            except (TypeError, ValueError) as exc:
                raise TranscriptError(
                    f"body of a {kind!r} record is not JSON-serialisable with finite numbers "
                    f"({type(exc).__name__})"
                ) from None
            h = record_hash(record)
            record["hash"] = h
            record["signature"] = self._key.sign(bytes.fromhex(h)).hex()
            line = canonical_json(record)
            if json.loads(line) != record or canonical_json(json.loads(line)) != line:
                raise TranscriptError(f"a {kind!r} record does not round-trip through JSON")
            try:
                self._fh.write(line + b"\n")
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError:
                self._broken = True  # a partial line may be on disk: never chain after it
                raise
            self._seq += 1
            self._prev = hashlib.sha256(line).hexdigest()
            return record

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> TranscriptWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
