"""A node's own privacy ledger: round records as JSON lines, priced by dp.accounting."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from dp.accounting import RoundRecord, epsilon_for
from dp.errors import DpError, DpParameterError, PrivacyBudgetExceeded

_FORMAT = "blindsum.dp.round/v1"


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
        self._records: list[RoundRecord] = self._load()

    def __repr__(self) -> str:
        return (
            f"PrivacyLedger(path={str(self.path)!r}, rounds={len(self._records)}, "
            f"delta={self.delta:g}, epsilon_cap={self.epsilon_cap:g})"
        )

    def _load(self) -> list[RoundRecord]:
        if not self.path.exists():
            return []
        out = []
        with self.path.open("r", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if obj.get("format") != _FORMAT:
                        raise ValueError("unknown format")
                    out.append(RoundRecord.from_json(obj["record"]))
                except (ValueError, KeyError, TypeError) as exc:
                    # Fail closed: a ledger we cannot read must not be treated as empty.
                    raise DpError(
                        f"{self.path}: line {lineno} is not a valid round record"
                    ) from exc
        return out

    @property
    def records(self) -> tuple[RoundRecord, ...]:
        return tuple(self._records)

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

    def charge(self, record: RoundRecord) -> float:
        """Check, then append `record` durably; returns epsilon including it."""
        eps = self.check(record)
        line = json.dumps({"format": _FORMAT, "record": record.to_json()}, sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._records.append(record)
        return eps
