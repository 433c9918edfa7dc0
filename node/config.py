"""Federation, aggregator, node and policy configuration (TOML), validated at load.

Every error names the file, the key and what is allowed, e.g.
``federation.toml: [dp] bits = 70: must be an integer in 1..62``. Unknown keys are
errors too (a typo must not silently fall back to a default). Relative paths are
resolved against the directory of the file that names them.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secagg.graph import ThreatModel

SITE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{64}$")
HEX_KEY = re.compile(r"^[0-9a-f]{64}$")
STAGES = ("advertise_keys", "share_keys", "masked_input", "consistency", "unmasking")


class ConfigError(ValueError):
    """A configuration value is missing or outside what is allowed (the text says which)."""


class _Section:
    """Typed, range-checked reads from one TOML table; leftovers are unknown keys."""

    def __init__(self, source: str, name: str, table: Any) -> None:
        self.source, self.name = source, name
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        self._table = dict(table)

    def _where(self, key: str) -> str:
        return f"{self.source}: [{self.name}] {key}"

    def _take(self, key: str, default: Any) -> Any:
        if key in self._table:
            return self._table.pop(key)
        if default is _REQUIRED:
            raise ConfigError(f"{self._where(key)} is required")
        return default

    def integer(self, key: str, lo: int, hi: int | None = None, default: Any = None) -> int:
        value = self._take(key, _REQUIRED if default is None else default)
        allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < lo
            or (hi is not None and value > hi)
        ):
            raise ConfigError(f"{self._where(key)} = {value!r}: must be an integer {allowed}")
        return value

    def number(
        self, key: str, lo: float, hi: float | None = None, *, open_lo: bool = False,
        open_hi: bool = False, default: Any = None, optional: bool = False,
    ) -> float | None:  # fmt: skip
        value = self._take(key, None if optional else (_REQUIRED if default is None else default))
        if value is None:
            return None
        low = "(" if open_lo else "["
        high = f"{hi:g}{')' if open_hi else ']'}" if hi is not None else "inf)"
        bad = (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        )
        if not bad:
            bad = (value <= lo if open_lo else value < lo) or (
                hi is not None and (value >= hi if open_hi else value > hi)
            )
        if bad:
            raise ConfigError(
                f"{self._where(key)} = {value!r}: must be a number in {low}{lo:g}, {high}"
            )
        return float(value)

    def choice(self, key: str, allowed: tuple[str, ...], default: Any = None) -> str:
        value = self._take(key, _REQUIRED if default is None else default)
        if value not in allowed:
            raise ConfigError(
                f"{self._where(key)} = {value!r}: must be one of {', '.join(allowed)}"
            )
        return value

    def text(
        self, key: str, pattern: re.Pattern | None = None, what: str = "", default: Any = None
    ) -> str:
        value = self._take(key, _REQUIRED if default is None else default)
        if not isinstance(value, str) or not value or (pattern and not pattern.match(value)):
            raise ConfigError(
                f"{self._where(key)} = {value!r}: must be {what or 'a non-empty string'}"
            )
        return value

    def path(self, key: str, base: Path, *, optional: bool = False) -> Path | None:
        value = self._take(key, None if optional else _REQUIRED)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self._where(key)} = {value!r}: must be a path")
        p = Path(value)
        return p if p.is_absolute() else (base / p)

    def threat_model(self) -> ThreatModel:
        """corrupt_fraction, dropout_fraction and aggregator (the SecAgg threat model)."""
        try:
            return ThreatModel(
                corrupt_fraction=self.number(
                    "corrupt_fraction", 0.0, 1.0, open_hi=True, default=0.1
                ),
                dropout_fraction=self.number(
                    "dropout_fraction", 0.0, 1.0, open_hi=True, default=0.1
                ),
                lying_aggregator=self.choice(
                    "aggregator", ("dropout-lying", "honest-but-curious"), "dropout-lying"
                )
                == "dropout-lying",
            )
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(f"{self.source}: [{self.name}] {exc}") from None

    def done(self) -> None:
        if self._table:
            raise ConfigError(
                f"{self.source}: [{self.name}] has unknown key(s): {', '.join(sorted(self._table))}"
            )


_REQUIRED = object()


def _load_toml(path: Path) -> dict:
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _sections(path: Path, doc: dict, allowed: tuple[str, ...]) -> None:
    unknown = set(doc) - set(allowed)
    if unknown:
        raise ConfigError(
            f"{path.name}: unknown section(s) or key(s): {', '.join(sorted(unknown))}"
        )


# --- the federation (shared by every party) ----------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    id: int  # 0 for the aggregator
    fingerprint: str
    signing_public_key: bytes


@dataclass(frozen=True)
class ModelSettings:
    kind: str
    dataset: str
    epochs: int
    learning_rate: float
    batch_size: int
    server_learning_rate: float
    seed: int
    hidden: int  # width of the mlp's hidden layer


@dataclass(frozen=True)
class DpSettings:
    epsilon: float | None  # target over all rounds; or a fixed sigma
    sigma: float | None
    delta: float
    bits: int
    clip: float
    minimum_contributors: int  # what the aggregator plans sigma for


@dataclass(frozen=True)
class SecAggSettings:
    graph: str
    threat: ThreatModel


@dataclass(frozen=True)
class CkksSettings:
    committee: tuple[str, ...]  # roster site names; the first is the lead


@dataclass(frozen=True)
class Federation:
    path: Path
    name: str
    rounds: int
    address: str
    ca_certificate: Path
    aggregator: Member
    participants: tuple[Member, ...]
    model: ModelSettings
    dp: DpSettings
    secagg: SecAggSettings
    deadlines: dict[str, float] = field(default_factory=dict)
    path_kind: str = "masking"  # [federation] path: "masking" or "ckks"
    ckks: CkksSettings | None = None

    def member_by_name(self, name: str) -> Member | None:
        return next((m for m in self.participants if m.name == name), None)

    @property
    def roster(self) -> dict[int, bytes]:
        return {m.id: m.signing_public_key for m in self.participants}


def _member(src: str, table: Any, label: str, *, with_id: bool) -> Member:
    s = _Section(src, label, table)
    name = s.text("name", SITE_NAME, "a site name ([a-z0-9-], 1..63 chars)")
    member_id = s.integer("id", 1, 2**32 - 1) if with_id else 0
    fp = s.text("certificate_fingerprint", FINGERPRINT, "'sha256:' + 64 lowercase hex digits")
    key = s.text("signing_public_key", HEX_KEY, "64 lowercase hex digits (Ed25519 public key)")
    s.done()
    return Member(name, member_id, fp, bytes.fromhex(key))


def load_federation(path: str | Path) -> Federation:
    path = Path(path)
    src, base = path.name, path.parent
    doc = _load_toml(path)
    _sections(
        path,
        doc,
        ("federation", "aggregator", "participants", "model", "dp", "secagg", "deadlines", "ckks"),
    )
    fed = _Section(src, "federation", doc.get("federation", {}))
    name = fed.text("name")
    rounds = fed.integer("rounds", 1, 100_000)
    address = fed.text("address", re.compile(r"^[^\s:]+:\d{1,5}$"), "host:port")
    ca = fed.path("ca_certificate", base)
    path_kind = fed.choice("path", ("masking", "ckks"), "masking")
    fed.done()
    aggregator = _member(src, doc.get("aggregator", {}), "aggregator", with_id=False)
    raw = doc.get("participants")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{src}: [[participants]] must list at least 3 participants")
    participants = tuple(
        _member(src, t, f"participants #{i + 1}", with_id=True) for i, t in enumerate(raw)
    )
    if len(participants) < 3:
        raise ConfigError(
            f"{src}: [[participants]] must list at least 3 participants, got {len(participants)}"
        )
    for attr in ("id", "name", "fingerprint", "signing_public_key"):
        values = [getattr(m, attr) for m in participants] + (
            [] if attr == "id" else [getattr(aggregator, attr)]
        )
        if len(set(values)) != len(values):
            raise ConfigError(
                f"{src}: [[participants]] {attr} values must be unique (aggregator included)"
            )
    m = _Section(src, "model", doc.get("model", {}))
    model = ModelSettings(
        kind=m.choice("kind", ("logreg", "mlp"), "logreg"),
        dataset=m.choice("dataset", ("digits", "breast_cancer"), "digits"),
        epochs=m.integer("epochs", 1, 1000, 1),
        learning_rate=m.number("learning_rate", 0.0, 100.0, open_lo=True, default=0.1),
        batch_size=m.integer("batch_size", 1, 1 << 20, 32),
        server_learning_rate=m.number(
            "server_learning_rate", 0.0, 100.0, open_lo=True, default=1.0
        ),
        seed=m.integer("seed", 0, 2**31 - 1, 0),
        hidden=m.integer("hidden", 1, 1 << 20, 32),
    )
    m.done()
    d = _Section(src, "dp", doc.get("dp", {}))
    epsilon = d.number("epsilon", 0.0, open_lo=True, optional=True)
    sigma = d.number("sigma", 0.0, open_lo=True, optional=True)
    if (epsilon is None) == (sigma is None):
        raise ConfigError(
            f"{src}: [dp] set exactly one of epsilon (a target) or sigma (fixed noise)"
        )
    dp_settings = DpSettings(
        epsilon=epsilon,
        sigma=sigma,
        delta=d.number("delta", 0.0, 1.0, open_lo=True, open_hi=True, default=1e-5),
        bits=d.integer("bits", 1, 62, 16),
        clip=d.number("clip", 0.0, open_lo=True, default=1.0),
        minimum_contributors=d.integer(
            "minimum_contributors", 2, len(participants), min(3, len(participants))
        ),
    )
    d.done()
    sa = _Section(src, "secagg", doc.get("secagg", {}))
    graph = sa.choice("graph", ("harary", "full"), "harary")
    threat = sa.threat_model()
    sa.done()
    dl = _Section(src, "deadlines", doc.get("deadlines", {}))
    deadlines = {"join": dl.number("join", 0.0, 3600.0, open_lo=True, default=60.0)}
    for stage in STAGES:
        deadlines[stage] = dl.number(
            stage, 0.0, 3600.0, open_lo=True, default=60.0 if stage == "masked_input" else 20.0
        )
    dl.done()
    ckks = _ckks_settings(src, doc, path_kind, participants)
    return Federation(
        path=path, name=name, rounds=rounds, address=address, ca_certificate=ca,
        aggregator=aggregator, participants=participants, model=model, dp=dp_settings,
        secagg=SecAggSettings(graph, threat), deadlines=deadlines, path_kind=path_kind,
        ckks=ckks,
    )  # fmt: skip


def _ckks_settings(
    src: str, doc: dict, path_kind: str, participants: tuple[Member, ...]
) -> CkksSettings | None:
    """[ckks] committee = ["site-1", ...]: required iff [federation] path = "ckks"."""
    if path_kind != "ckks":
        if "ckks" in doc:
            raise ConfigError(
                f'{src}: [ckks] is only allowed with [federation] path = "ckks" (path = {path_kind!r})'
            )
        return None
    if "ckks" not in doc:
        raise ConfigError(f'{src}: [ckks] committee is required when [federation] path = "ckks"')
    s = _Section(src, "ckks", doc["ckks"])
    committee = s._take("committee", _REQUIRED)
    names = {m.name for m in participants}
    if (
        not isinstance(committee, list)
        or not committee
        or not all(isinstance(c, str) for c in committee)
    ):
        raise ConfigError(
            f"{src}: [ckks] committee = {committee!r}: must be a non-empty list of roster site "
            "names (the first is the lead)"
        )
    unknown = [c for c in committee if c not in names]
    if unknown:
        raise ConfigError(
            f"{src}: [ckks] committee = {committee!r}: {', '.join(map(repr, unknown))} "
            "not in [[participants]]"
        )
    if len(set(committee)) != len(committee):
        raise ConfigError(f"{src}: [ckks] committee = {committee!r}: names must be distinct")
    s.done()
    return CkksSettings(tuple(committee))


# --- the aggregator's own file ---------------------------------------------------------


@dataclass(frozen=True)
class AggregatorConfig:
    path: Path
    federation: Federation
    listen: str
    certificate: Path
    key: Path
    signing_key: Path
    run_directory: Path
    evaluation_data: Path | None
    workers: int


# Mask-removal worker processes when [server] workers is not set: every core, but
# at most 8 (each worker is a Python process with numpy loaded, ~40 MB).
DEFAULT_AGGREGATOR_WORKERS = max(1, min(8, os.cpu_count() or 1))


def load_aggregator_config(path: str | Path) -> AggregatorConfig:
    path = Path(path)
    doc = _load_toml(path)
    _sections(path, doc, ("federation", "server"))
    if not isinstance(doc.get("federation"), str):
        raise ConfigError(f'{path.name}: federation = "path/to/federation.toml" is required')
    federation = load_federation(path.parent / doc["federation"])
    s = _Section(path.name, "server", doc.get("server", {}))
    cfg = AggregatorConfig(
        path=path,
        federation=federation,
        listen=s.text("listen", re.compile(r"^[^\s:]+:\d{1,5}$"), "host:port", "127.0.0.1:0"),
        certificate=s.path("certificate", path.parent),
        key=s.path("key", path.parent),
        signing_key=s.path("signing_key", path.parent),
        run_directory=s.path("run_directory", path.parent),
        evaluation_data=s.path("evaluation_data", path.parent, optional=True),
        workers=s.integer("workers", 1, 256, DEFAULT_AGGREGATOR_WORKERS),
    )
    s.done()
    return cfg


# --- a node's own files: its config and its local policy ---------------------------------


@dataclass(frozen=True)
class Policy:
    """What this node accepts, whatever the aggregator asks."""

    path: Path
    epsilon_cap: float
    delta: float
    assumed_colluders: int
    minimum_contributors: int
    threat: ThreatModel


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    federation: Federation
    name: str
    certificate: Path
    key: Path
    signing_key: Path
    data: Path
    ledger: Path
    policy: Policy


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    doc = _load_toml(path)
    _sections(path, doc, ("policy",))
    s = _Section(path.name, "policy", doc.get("policy", {}))
    colluders = s.integer("assumed_colluders", 0, 100_000, 0)
    minimum = s.integer("minimum_contributors", 2, 100_000, 3)
    if minimum - colluders < 1:
        raise ConfigError(
            f"{path.name}: [policy] minimum_contributors ({minimum}) must exceed assumed_colluders "
            f"({colluders}): otherwise no honest noise is guaranteed"
        )
    threat = s.threat_model()
    policy = Policy(
        path=path,
        epsilon_cap=s.number("epsilon_cap", 0.0, open_lo=True),
        delta=s.number("delta", 0.0, 1.0, open_lo=True, open_hi=True, default=1e-5),
        assumed_colluders=colluders,
        minimum_contributors=minimum,
        threat=threat,
    )
    s.done()
    return policy


def load_node_config(path: str | Path) -> NodeConfig:
    path = Path(path)
    doc = _load_toml(path)
    _sections(path, doc, ("federation", "policy", "node"))
    for key in ("federation", "policy"):
        if not isinstance(doc.get(key), str):
            raise ConfigError(f'{path.name}: {key} = "path/to/{key}.toml" is required')
    federation = load_federation(path.parent / doc["federation"])
    policy = load_policy(path.parent / doc["policy"])
    s = _Section(path.name, "node", doc.get("node", {}))
    name = s.text("name", SITE_NAME, "a site name ([a-z0-9-], 1..63 chars)")
    if federation.member_by_name(name) is None:
        raise ConfigError(
            f"{path.name}: [node] name = {name!r} is not a participant of the federation"
        )
    cfg = NodeConfig(
        path=path,
        federation=federation,
        name=name,
        certificate=s.path("certificate", path.parent),
        key=s.path("key", path.parent),
        signing_key=s.path("signing_key", path.parent),
        data=s.path("data", path.parent),
        ledger=s.path("ledger", path.parent),
        policy=policy,
    )
    s.done()
    return cfg
