"""A node's own privacy ledger: round records as JSON lines, priced by dp.accounting.

File format, one JSON object per line::

    {"format": "blindsum.dp.round/v1", "record": {...RoundRecord...}}
    {"format": "blindsum.dp.round/v1", "record": {...}, "meta": {"round": 3, ...}}

"meta" is optional (lines written before it existed, or charged without it, have
none) and describes the round for auditors: typically round, session_id (hex),
config_digest (hex), verified_survivors (|U3| from the signed ConsistencyCheck
set), assumed_colluders and node_id. It is public metadata: never put secrets in it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

from dp.accounting import RoundRecord, epsilon_for
from dp.errors import DpError, DpParameterError, PrivacyBudgetExceeded

_FORMAT = "blindsum.dp.round/v1"
_META_MAX_BYTES = 64 * 1024


def _check_meta(meta: object) -> dict | None:
    """A JSON-safe copy of `meta` (string keys, finite numbers), or DpParameterError."""
    if meta is None:
        return None
    if not isinstance(meta, Mapping):
        raise DpParameterError("meta must be a dict or None")
    if not all(isinstance(k, str) for k in meta):
        raise DpParameterError("meta keys must be strings")
    try:
        text = json.dumps(dict(meta), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DpParameterError("meta must be JSON-serialisable with finite numbers") from exc
    if len(text) > _META_MAX_BYTES:
        raise DpParameterError(f"meta must be at most {_META_MAX_BYTES} bytes of JSON")
    return json.loads(text)


def load_entries(path: str | os.PathLike[str]) -> list[tuple[RoundRecord, dict | None]]:
    """(record, meta) pairs of the ledger file at `path`; [] if it does not exist.

    Raises DpError naming the first line that is not a valid round record (fail
    closed: an unreadable ledger is never treated as empty). meta is None for lines
    without one.
    """
    path = Path(path)
    if not path.exists():
        return []
    out: list[tuple[RoundRecord, dict | None]] = []
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if obj.get("format") != _FORMAT:
                    raise ValueError("unknown format")
                record = RoundRecord.from_json(obj["record"])
                meta = obj.get("meta")
                if meta is not None and not isinstance(meta, dict):
                    raise ValueError("meta is not an object")
                out.append((record, meta))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise DpError(f"{path}: line {lineno} is not a valid round record") from exc
    return out


class PrivacyLedger:
    """Append-only list of RoundRecords persisted at `path` (JSON lines).

    `charge(record)` refuses, *before anything is written*, a round that would take
    epsilon at `delta` past `epsilon_cap`.
    """

    def __init__(self, path: str | os.PathLike[str], *, delta: float, epsilon_cap: float) -> None:
        if not (isinstance(delta, int | float) and 0 < delta < 1):
            raise DpParameterError("delta must be in (0, 1)")
        if not (isinstance(epsilon_cap, int | float) and epsilon_cap > 0):
            raise DpParameterError("epsilon_cap must be > 0")
        self.path = Path(path)
        self.delta = float(delta)
        self.epsilon_cap = float(epsilon_cap)
        self._entries: list[tuple[RoundRecord, dict | None]] = self._load()
        self._records: list[RoundRecord] = [r for r, _ in self._entries]

    def __repr__(self) -> str:
        return (
            f"PrivacyLedger(path={str(self.path)!r}, rounds={len(self._records)}, "
            f"delta={self.delta:g}, epsilon_cap={self.epsilon_cap:g})"
        )

    def _load(self) -> list[tuple[RoundRecord, dict | None]]:
        return load_entries(self.path)

    @property
    def records(self) -> tuple[RoundRecord, ...]:
        return tuple(self._records)

    @property
    def entries(self) -> tuple[tuple[RoundRecord, dict | None], ...]:
        """(record, meta) pairs in charge order; meta is None where none was stored.
        The meta dicts are copies: changing them does not change the ledger."""
        return tuple(
            (r, None if m is None else json.loads(json.dumps(m))) for r, m in self._entries
        )

    def epsilon(self) -> tuple[float, int]:
        """(epsilon, optimal RDP order) spent so far at the ledger's delta."""
        return epsilon_for(self._records, self.delta)

    def epsilon_after(self, record: RoundRecord) -> float:
        return epsilon_for([*self._records, record], self.delta)[0]

    def check(self, record: RoundRecord) -> float:
        """Raise PrivacyBudgetExceeded if `record` would pass the cap; else the new eps."""
        eps = self.epsilon_after(record)
        if not (math.isfinite(eps) and eps <= self.epsilon_cap):
            raise PrivacyBudgetExceeded(
                f"round refused: epsilon would reach {eps:.6g} > cap {self.epsilon_cap:g} "
                f"at delta={self.delta:g} after {len(self._records)} recorded rounds"
            )
        return eps

    def charge(self, record: RoundRecord, *, meta: Mapping | None = None) -> float:
        """Check, then append `record` (and optional public `meta`, stored on the same
        line) durably; returns epsilon including it. Nothing is written if the cap
        would be passed or meta is not JSON-safe."""
        meta = _check_meta(meta)
        eps = self.check(record)
        obj: dict = {"format": _FORMAT, "record": record.to_json()}
        if meta is not None:
            obj["meta"] = meta
        line = json.dumps(obj, sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._records.append(record)
        self._entries.append((record, meta))
        return eps

    def revise_last(self, record: RoundRecord, *, meta: Mapping | None = None) -> float:
        """Replace the last entry, a provisional (worst-case) charge, by the verified one.

        A node charges the worst case before its masked input leaves (fail closed),
        then revises it once it has verified and signed the survivor set. Only a
        revision that keeps every parameter and does not lower the cost below what
        was verified is allowed: the same round, the same sigma/gamma/clip/d'/beta/q,
        and at least as many contributors (fewer would mean a larger epsilon, which
        is a new charge, not a revision).
        """
        meta = _check_meta(meta)
        if not self._entries:
            raise DpError("nothing to revise: the ledger is empty")
        old, old_meta = self._entries[-1]
        if not (old_meta and old_meta.get("provisional")):
            raise DpError("only a provisional entry can be revised")
        if meta is not None and meta.get("round") != old_meta.get("round"):
            raise DpError("a revision must be for the same round as the provisional entry")
        same = {k: v for k, v in old.to_json().items() if k != "contributors"}
        if {k: v for k, v in record.to_json().items() if k != "contributors"} != same:
            raise DpError("a revision may only change the number of contributors")
        if record.contributors < old.contributors:
            raise DpError(
                "a revision may not lower the contributor count below the provisional one"
            )
        lines = self.path.read_text(encoding="utf-8").splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        obj: dict = {"format": _FORMAT, "record": record.to_json()}
        if meta is not None:
            obj["meta"] = meta
        lines[-1] = json.dumps(obj, sort_keys=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._records[-1] = record
        self._entries[-1] = (record, meta)
        return epsilon_for(self._records, self.delta)[0]
