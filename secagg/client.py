"""The participant's secure-aggregation state machine (sans-I/O).

`SecAggClient.receive(bytes) -> bytes | None` takes one serialized
ServerMessage and returns the serialized ClientMessage to send back. Every rule
a participant enforces (spec/secagg.md, "What a participant must refuse") is
checked here, in the handler of the stage it belongs to. Any failed check
raises `ProtocolAbort` with its own reason, after the client has erased every
secret it held; the client then refuses everything else.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from blindsum.v1 import secagg_pb2 as pb
from secagg import crypto, shamir, wire
from secagg.errors import (
    AbortReason,
    ConfigurationError,
    CryptoError,
    MalformedMessage,
    ProtocolAbort,
    SecAggError,
)
from secagg.graph import (
    GraphParams,
    NeighbourGraph,
    ThreatModel,
    check_parameters,
    find_parameters,
    full_graph_parameters,
)


@dataclass(frozen=True)
class ParticipantPolicy:
    """What a participant accepts, whatever the aggregator asks.

    minimum_aggregate: refuse to sign a survivor set U3 smaller than this (the
        number of inputs the released sum must at least contain).
    threat: the participant's own threat model; the (k, t) the aggregator offers
        must be at least as strong as what this model requires.
    """

    minimum_aggregate: int = 3
    threat: ThreatModel = field(default_factory=ThreatModel)

    def __post_init__(self) -> None:
        if self.minimum_aggregate < 2:
            raise ConfigurationError(
                f"minimum_aggregate={self.minimum_aggregate}: must be at least 2"
            )


class ClientState(enum.Enum):
    WAITING_CONFIG = 0
    ADVERTISED = 1
    SHARED = 2
    MASKED = 3
    SIGNED = 4
    DONE = 5
    ABORTED = 6


# Which request each state waits for, and the stage at which it was answered.
_EXPECTED = {
    ClientState.WAITING_CONFIG: "round_config",
    ClientState.ADVERTISED: "share_keys_request",
    ClientState.SHARED: "masked_input_request",
    ClientState.MASKED: "consistency_request",
    ClientState.SIGNED: "unmasking_request",
}
_ORDER = list(_EXPECTED.values())

SELF_SEED = "self-seed"
MASK_KEY = "mask-key"


def _abort(reason: AbortReason, detail: str = "", culprit: int | None = None) -> ProtocolAbort:
    return ProtocolAbort(reason, detail, culprit=culprit)


class SecAggClient:
    """One participant in one aggregation session. Create a new one per session."""

    def __init__(
        self,
        *,
        participant_id: int,
        signing_key: crypto.SigningKey,
        roster: Mapping[int, bytes],
        aggregator_key: bytes,
        policy: ParticipantPolicy | None = None,
        input_vector: np.ndarray | None = None,
    ) -> None:
        if participant_id not in roster:
            raise ConfigurationError(f"participant id {participant_id} is not in the roster")
        self.id = participant_id
        self._signing_key = signing_key
        self._roster = dict(roster)
        self._aggregator_key = aggregator_key
        self.policy = policy or ParticipantPolicy()
        self._input: np.ndarray | None = None
        if input_vector is not None:
            self.set_input(input_vector)
        self.state = ClientState.WAITING_CONFIG
        # What this participant has revealed, per peer: never both kinds of one peer.
        self.released: dict[int, str] = {}
        self.abort_reason: AbortReason | None = None
        # Public state learnt during the session.
        self.config: pb.RoundConfig | None = None
        self.config_digest = b""
        self.session_id = b""
        self.graph: NeighbourGraph | None = None
        self.neighbours: tuple[int, ...] = ()
        self.u2_neighbours: frozenset[int] = frozenset()
        self.u3: tuple[int, ...] = ()
        self._advertisement: pb.AdvertiseKeys | None = None
        self._ids_u1: frozenset[int] = frozenset()
        # Secrets (erased on completion and on abort).
        self._channel_key: crypto.AgreementKey | None = None
        self._mask_key: crypto.AgreementKey | None = None
        self._self_seed: bytearray | None = None
        self._channel_keys: dict[int, bytes] = {}
        self._pair_seeds: dict[int, bytes] = {}
        self._held_self_seed_shares: dict[int, bytes] = {}
        self._held_mask_key_shares: dict[int, bytes] = {}

    def __repr__(self) -> str:
        return f"SecAggClient(id={self.id}, state={self.state.name})"

    # -- public API ------------------------------------------------------------

    def set_input(self, vector: np.ndarray) -> None:
        """The vector to aggregate (values in [0, 2^bits)); needed before stage 2."""
        arr = np.asarray(vector)
        if arr.ndim != 1 or arr.dtype.kind != "u":
            raise ConfigurationError("input vector must be a 1-D unsigned integer array")
        self._input = arr.copy()  # private copy: erased (zeroed) with the other secrets

    def receive(self, data: bytes) -> bytes | None:
        """Handle one serialized ServerMessage; return the serialized reply (or None)."""
        if self.state is ClientState.ABORTED:
            raise _abort(AbortReason.WRONG_STAGE, "this session was aborted")
        try:
            msg = wire.parse_server_message(data)
            kind = msg.WhichOneof("body")
            if kind == "abort":
                self._fail(AbortReason.NOT_ENOUGH_PARTICIPANTS)
                return None
            if self.state is ClientState.DONE:
                if kind == "unmasking_request":
                    raise _abort(AbortReason.SECOND_UNMASKING_REQUEST)
                raise _abort(AbortReason.REPLAY, f"{kind} after the session finished")
            expected = _EXPECTED[self.state]
            if kind != expected:
                if _ORDER.index(kind) < _ORDER.index(expected):
                    raise _abort(AbortReason.REPLAY, f"{kind} was already answered")
                raise _abort(AbortReason.WRONG_STAGE, f"got {kind}, expected {expected}")
            handler = getattr(self, f"_on_{kind}")
            reply: pb.ClientMessage = handler(getattr(msg, kind))
            return reply.SerializeToString()
        except ProtocolAbort as exc:
            self._fail(exc.reason)
            raise
        except SecAggError as exc:  # configuration problems found mid-session
            self._fail(AbortReason.MALFORMED_MESSAGE)
            raise _abort(AbortReason.MALFORMED_MESSAGE, str(exc)) from exc

    def abort_message(self) -> bytes:
        """A ClientMessage telling the aggregator this participant refused."""
        reason = self.abort_reason.value if self.abort_reason else "refused"
        return pb.ClientMessage(
            abort=pb.Abort(session_id=self.session_id, reason=reason)
        ).SerializeToString()

    def close(self) -> None:
        """Give up the session (deadline passed, process stopping): erase every secret."""
        if self.state is not ClientState.DONE:
            self._fail(self.abort_reason or AbortReason.SHUTDOWN)
        self._erase()

    def holds_secrets(self) -> bool:
        """True while any secret is still held (tests check erasure with this)."""
        return bool(
            self._channel_key
            or self._mask_key
            or self._self_seed
            or self._channel_keys
            or self._pair_seeds
            or self._held_self_seed_shares
            or self._held_mask_key_shares
            or self._input is not None
        )

    # -- stage 0 ---------------------------------------------------------------

    def _on_round_config(self, signed: pb.SignedRoundConfig) -> pb.ClientMessage:
        digest = wire.config_digest(signed.round_config)
        if not crypto.verify_signature(self._aggregator_key, digest, signed.signature):
            raise _abort(AbortReason.CONFIG_SIGNATURE, "round config not signed by the aggregator")
        cfg = wire.parse_round_config(signed.round_config)
        invited = set(cfg.participants)
        if len(invited) > len(self._roster):
            raise _abort(
                AbortReason.TOO_MANY_PARTICIPANTS,
                f"{len(invited)} invited, roster has {len(self._roster)}",
            )
        unknown = invited - self._roster.keys()
        if unknown:
            raise _abort(
                AbortReason.UNKNOWN_PARTICIPANT,
                f"invited ids not in the roster: {sorted(unknown)[:5]}",
            )
        if self.id not in invited:
            raise _abort(AbortReason.UNKNOWN_PARTICIPANT, "this participant is not invited")
        if self._input is not None:
            self._check_input(cfg)
        self.config, self.config_digest = cfg, digest
        self._channel_key = crypto.AgreementKey.generate()
        self._mask_key = crypto.AgreementKey.generate()
        c_pk, s_pk = self._channel_key.public, self._mask_key.public
        ad = pb.AdvertiseKeys(
            sender=self.id,
            config_digest=digest,
            channel_public_key=c_pk,
            mask_public_key=s_pk,
            signature=self._signing_key.sign(wire.advertise_payload(digest, self.id, c_pk, s_pk)),
        )
        self._advertisement = ad
        self.state = ClientState.ADVERTISED
        return pb.ClientMessage(advertise_keys=ad)

    # -- stage 1 ---------------------------------------------------------------

    def _on_share_keys_request(self, req: pb.ShareKeysRequest) -> pb.ClientMessage:
        assert self.config is not None and self._mask_key and self._channel_key
        ads = list(req.advertisements)
        invited = set(self.config.participants)
        if len(ads) > len(invited):
            raise _abort(
                AbortReason.TOO_MANY_PARTICIPANTS,
                f"{len(ads)} advertisements for {len(invited)} invited",
            )
        ids = wire.unique_ids((a.sender for a in ads), "advertisements")
        if set(ids) - invited:
            raise _abort(
                AbortReason.UNKNOWN_PARTICIPANT, "advertisement from an id that was not invited"
            )
        by_id = {a.sender: a for a in ads}
        mine = by_id.get(self.id)
        if mine is None:
            raise _abort(AbortReason.MISSING_KEY, "our own advertisement is missing")
        if mine.SerializeToString() != self._advertisement.SerializeToString():
            raise _abort(AbortReason.INVALID_KEY, "our own advertisement was altered")
        seen: set[bytes] = set()
        for a in ads:
            for key in (a.channel_public_key, a.mask_public_key):
                wire.require_length(
                    key,
                    wire.PUBLIC_KEY_BYTES,
                    f"public key of {a.sender}",
                    AbortReason.INVALID_KEY,
                    a.sender,
                )
                if key in seen:
                    raise _abort(
                        AbortReason.DUPLICATE_KEY,
                        f"a public key of {a.sender} was advertised twice",
                        a.sender,
                    )
                seen.add(key)
            if a.config_digest != self.config_digest:
                raise _abort(
                    AbortReason.CONFIG_MISMATCH,
                    f"participant {a.sender} saw a different round config",
                    a.sender,
                )
        p = req.graph
        params = GraphParams(n=p.n, k=p.k, t=p.t, full=p.full)
        if params.n != len(ads):
            raise _abort(
                AbortReason.WEAK_PARAMETERS,
                f"graph n={params.n} but {len(ads)} participants advertised",
            )
        if len(ads) < self.policy.minimum_aggregate:
            raise _abort(
                AbortReason.BELOW_MINIMUM_AGGREGATE, f"only {len(ads)} participants advertised keys"
            )
        self._check_graph_parameters(params)
        self.session_id = crypto.session_id(
            self.config_digest,
            [
                (a.sender, a.channel_public_key, a.mask_public_key)
                for a in sorted(ads, key=lambda a: a.sender)
            ],
        )
        self.graph = NeighbourGraph.build(sorted(ids), params, self.session_id)
        self.neighbours = tuple(self.graph.neighbours(self.id))
        self._ids_u1 = frozenset(ids)
        if len(self.neighbours) < params.t:
            raise _abort(
                AbortReason.BELOW_THRESHOLD, f"{len(self.neighbours)} neighbours < t={params.t}"
            )
        for v in self.neighbours:
            a = by_id[v]
            if not a.signature:
                raise _abort(AbortReason.MISSING_SIGNATURE, f"advertisement of {v} is unsigned", v)
            payload = wire.advertise_payload(
                a.config_digest, v, a.channel_public_key, a.mask_public_key
            )
            if not crypto.verify_signature(self._roster[v], payload, a.signature):
                raise _abort(AbortReason.BAD_SIGNATURE, f"advertisement of {v}", v)
            try:
                self._channel_keys[v] = crypto.agree(
                    self._channel_key,
                    a.channel_public_key,
                    session=self.session_id,
                    purpose=crypto.CHANNEL_PURPOSE,
                    a=self.id,
                    b=v,
                )
                self._pair_seeds[v] = crypto.agree(
                    self._mask_key,
                    a.mask_public_key,
                    session=self.session_id,
                    purpose=crypto.PAIR_MASK_PURPOSE,
                    a=self.id,
                    b=v,
                )
            except CryptoError as exc:
                raise _abort(AbortReason.INVALID_KEY, f"public key of {v}", v) from exc
        self._self_seed = bytearray(crypto.random_bytes(32))
        seed_shares = shamir.split(bytes(self._self_seed), params.t, self.neighbours)
        key_shares = shamir.split(self._mask_key.secret_bytes(), params.t, self.neighbours)
        commit = wire.SessionCommitters(self.session_id)
        out = pb.ShareKeys(
            session_id=self.session_id,
            sender=self.id,
            self_seed_commitment=commit.self_seed(bytes(self._self_seed), owner=self.id),
        )
        for v in self.neighbours:
            bundle = pb.ShareBundle(
                session_id=self.session_id,
                sender=self.id,
                recipient=v,
                self_seed_share=seed_shares[v],
                mask_key_share=key_shares[v],
            )
            enc = out.shares.add(
                recipient=v,
                self_seed_share_commitment=commit.self_seed_share(
                    seed_shares[v], owner=self.id, holder=v
                ),
                mask_key_share_commitment=commit.mask_key_share(
                    key_shares[v], owner=self.id, holder=v
                ),
            )
            enc.ciphertext = crypto.seal(
                self._channel_keys[v],
                bundle.SerializeToString(),
                session=self.session_id,
                stage=1,
                sender=self.id,
                recipient=v,
                associated=wire.share_associated_data(enc),
            )
        out.signature = self._signing_key.sign(wire.share_keys_payload(out))
        self._mask_key.erase()  # its shares are out; the public key is all we still need
        self._mask_key = None
        self.state = ClientState.SHARED
        return pb.ClientMessage(share_keys=out)

    # -- stage 2 ---------------------------------------------------------------

    def _on_masked_input_request(self, req: pb.MaskedInputRequest) -> pb.ClientMessage:
        assert self.config is not None and self.graph is not None
        self._check_session(req.session_id)
        t = self.graph.params.t
        senders = wire.unique_ids((r.sender for r in req.shares), "routed shares")
        neighbours = set(self.neighbours)
        held_seed: dict[int, bytes] = {}
        held_key: dict[int, bytes] = {}
        commit = wire.SessionCommitters(self.session_id)
        for routed in req.shares:
            v, enc = routed.sender, routed.shares
            if v == self.id or enc.recipient != self.id:
                raise _abort(
                    AbortReason.SHARE_ROUTING, f"shares routed from {v} to {enc.recipient}"
                )
            if v not in neighbours:
                raise _abort(AbortReason.UNKNOWN_PARTICIPANT, f"shares from non-neighbour {v}")
            try:
                plain = crypto.open_(
                    self._channel_keys[v],
                    enc.ciphertext,
                    session=self.session_id,
                    stage=1,
                    sender=v,
                    recipient=self.id,
                    associated=wire.share_associated_data(enc),
                )
            except CryptoError as exc:
                raise _abort(AbortReason.SHARE_AUTHENTICATION, f"shares from {v}") from exc
            try:
                bundle = wire.parse_share_bundle(plain)
            except MalformedMessage as exc:
                raise _abort(
                    AbortReason.SHARE_COMMITMENT, f"undecodable shares from {v}", v
                ) from exc
            if (
                bundle.session_id != self.session_id
                or bundle.sender != v
                or bundle.recipient != self.id
            ):
                raise _abort(
                    AbortReason.SHARE_ROUTING,
                    f"share bundle from {v} names another session or party",
                    v,
                )
            good_seed = enc.self_seed_share_commitment == commit.self_seed_share(
                bundle.self_seed_share, owner=v, holder=self.id
            )
            good_key = enc.mask_key_share_commitment == commit.mask_key_share(
                bundle.mask_key_share, owner=v, holder=self.id
            )
            if (
                not (good_seed and good_key)
                or len(bundle.self_seed_share) != shamir.SHARE_BYTES
                or len(bundle.mask_key_share) != shamir.SHARE_BYTES
            ):
                raise _abort(
                    AbortReason.SHARE_COMMITMENT,
                    f"shares from {v} do not match their commitments",
                    v,
                )
            held_seed[v], held_key[v] = bundle.self_seed_share, bundle.mask_key_share
        if len(senders) < t:
            raise _abort(
                AbortReason.BELOW_THRESHOLD, f"{len(senders)} neighbours shared keys, t={t}"
            )
        if self._input is None:
            raise ConfigurationError("no input vector was provided before masking")
        self._check_input(self.config)
        self._held_self_seed_shares, self._held_mask_key_shares = held_seed, held_key
        self.u2_neighbours = frozenset(senders)
        masked = self._masked_input()
        self.state = ClientState.MASKED
        return pb.ClientMessage(
            masked_input=pb.MaskedInput(
                session_id=self.session_id,
                sender=self.id,
                vector=wire.encode_vector(masked, self.config.bits),
            )
        )

    def _masked_input(self) -> np.ndarray:
        """y = x + PRG(b_u) + sum_v sign(u, v) PRG(s_uv) mod 2^bits; then drop the seeds."""
        cfg = self.config
        dtype = crypto.mask_dtype(cfg.bits)
        # Mask our private copy in place (no second d-sized buffer); from here on
        # the plaintext input no longer exists in this object.
        x, self._input = self._input, None
        y = x if x.dtype == dtype else x.astype(dtype)
        if y is not x:
            x.fill(0)
        gen = crypto.MaskGenerator()
        gen.add(
            y,
            bytes(self._self_seed),
            session=self.session_id,
            owners=(self.id,),
            vector=cfg.vector_name,
            bits=cfg.bits,
        )
        for v in sorted(self.u2_neighbours):
            gen.add(
                y,
                self._pair_seeds[v],
                session=self.session_id,
                owners=(min(self.id, v), max(self.id, v)),
                vector=cfg.vector_name,
                bits=cfg.bits,
                subtract=self.id > v,
            )
        crypto.reduce_mod(y, cfg.bits)
        # The aggregator rebuilds what it needs from shares; we no longer need these.
        self._erase_own_seeds()
        return y

    # -- stage 3 ---------------------------------------------------------------

    def _on_consistency_request(self, req: pb.ConsistencyRequest) -> pb.ClientMessage:
        assert self.graph is not None
        self._check_session(req.session_id)
        u3 = wire.unique_ids(req.survivors, "survivor set U3")
        if set(u3) - self._ids_u1:
            raise _abort(AbortReason.UNKNOWN_PARTICIPANT, "U3 names ids that never advertised keys")
        if self.id not in u3:
            raise _abort(AbortReason.NOT_SUBSET, "U3 does not contain this participant")
        u3_neighbours = set(u3) & set(self.neighbours)
        if not u3_neighbours <= self.u2_neighbours:
            raise _abort(
                AbortReason.NOT_SUBSET, "U3 names neighbours that never shared keys with us"
            )
        t = self.graph.params.t
        if len(u3_neighbours) < t:
            raise _abort(
                AbortReason.BELOW_THRESHOLD, f"{len(u3_neighbours)} surviving neighbours < t={t}"
            )
        if len(u3) < self.policy.minimum_aggregate:
            raise _abort(
                AbortReason.BELOW_MINIMUM_AGGREGATE,
                f"|U3|={len(u3)} < policy minimum {self.policy.minimum_aggregate}",
            )
        self.u3 = tuple(sorted(u3))
        digest = wire.survivors_digest(self.u3)
        sig = self._signing_key.sign(wire.consistency_payload(self.session_id, digest))
        self.state = ClientState.SIGNED
        return pb.ClientMessage(
            consistency_signature=pb.ConsistencySignature(
                session_id=self.session_id, sender=self.id, survivors_digest=digest, signature=sig
            )
        )

    # -- stage 4 ---------------------------------------------------------------

    def _on_unmasking_request(self, req: pb.UnmaskingRequest) -> pb.ClientMessage:
        assert self.graph is not None
        self._check_session(req.session_id)
        t = self.graph.params.t
        u3 = set(self.u3)
        neighbours = set(self.neighbours)
        own_digest = wire.survivors_digest(self.u3)
        signers = wire.unique_ids((s.sender for s in req.signatures), "consistency signatures")
        for s in req.signatures:
            if s.sender not in neighbours:
                raise _abort(
                    AbortReason.UNKNOWN_PARTICIPANT, f"signature from non-neighbour {s.sender}"
                )
            if s.sender not in u3:
                raise _abort(
                    AbortReason.NOT_SUBSET, f"signature from {s.sender}, which is not in U3"
                )
            if s.session_id != self.session_id:
                raise _abort(
                    AbortReason.WRONG_SESSION,
                    f"signature of {s.sender} is for another session",
                    s.sender,
                )
            if not s.signature:
                raise _abort(
                    AbortReason.MISSING_SIGNATURE,
                    f"no consistency signature from {s.sender}",
                    s.sender,
                )
            payload = wire.consistency_payload(s.session_id, s.survivors_digest)
            if not crypto.verify_signature(self._roster[s.sender], payload, s.signature):
                raise _abort(
                    AbortReason.BAD_SIGNATURE, f"consistency signature of {s.sender}", s.sender
                )
            if s.survivors_digest != own_digest:
                raise _abort(
                    AbortReason.INCONSISTENT_SURVIVORS,
                    f"{s.sender} signed a different U3",
                    s.sender,
                )
        if len(signers) < t:
            raise _abort(
                AbortReason.BELOW_THRESHOLD, f"{len(signers)} consistency signatures < t={t}"
            )
        alive = wire.unique_ids(req.alive, "alive list")
        dead = wire.unique_ids(req.dead, "dead list")
        if self.id in alive or self.id in dead:
            raise _abort(AbortReason.SELF_IN_REQUEST)
        both = set(alive) & set(dead)
        if both:
            raise _abort(
                AbortReason.BOTH_SHARES_REQUESTED, f"ids in both lists: {sorted(both)[:5]}"
            )
        for v in dead:
            if v not in self._held_mask_key_shares:
                raise _abort(AbortReason.DEAD_PEER_UNKNOWN, f"dead peer {v}: no share held")
            if v in u3:
                raise _abort(
                    AbortReason.BOTH_SHARES_REQUESTED, f"dead list names {v}, which is in U3"
                )
        for v in alive:
            if v not in u3 or v not in self._held_self_seed_shares:
                raise _abort(
                    AbortReason.REQUEST_MISMATCH, f"alive list names {v}, not a surviving neighbour"
                )
        expected_alive = u3 & neighbours
        expected_dead = set(self._held_mask_key_shares) - u3
        if set(alive) != expected_alive or set(dead) != expected_dead:
            raise _abort(AbortReason.REQUEST_MISMATCH, "alive/dead lists differ from the signed U3")
        for v in alive:
            if self.released.get(v, SELF_SEED) != SELF_SEED:
                raise _abort(
                    AbortReason.BOTH_SHARES_REQUESTED, f"mask-key share of {v} already released"
                )
        for v in dead:
            if self.released.get(v, MASK_KEY) != MASK_KEY:
                raise _abort(
                    AbortReason.BOTH_SHARES_REQUESTED, f"self-seed share of {v} already released"
                )
        resp = pb.UnmaskingResponse(session_id=self.session_id, sender=self.id)
        for v in sorted(alive):
            resp.self_seed_shares.add(owner=v, share=self._held_self_seed_shares[v])
            self.released[v] = SELF_SEED
        for v in sorted(dead):
            resp.mask_key_shares.add(owner=v, share=self._held_mask_key_shares[v])
            self.released[v] = MASK_KEY
        self._erase()
        self.state = ClientState.DONE
        return pb.ClientMessage(unmasking_response=resp)

    # -- helpers ---------------------------------------------------------------

    def _check_graph_parameters(self, params: GraphParams) -> None:
        """Refuse any (k, t) weaker than what our own threat model computes for this n."""
        threat = self.policy.threat
        try:
            check_parameters(params, threat)
            own = (
                full_graph_parameters(params.n, threat)
                if params.full
                else find_parameters(params.n, threat)
            )
        except ConfigurationError as exc:
            raise _abort(AbortReason.WEAK_PARAMETERS, str(exc)) from exc
        if params.k < own.k or (params.k == own.k and params.t < own.t):
            raise _abort(
                AbortReason.WEAK_PARAMETERS,
                f"offered k={params.k}, t={params.t}; our threat model needs k>={own.k}, t>={own.t}",
            )

    def _check_session(self, session_id: bytes) -> None:
        if session_id != self.session_id:
            raise _abort(AbortReason.WRONG_SESSION, "message for another session")

    def _check_input(self, cfg: pb.RoundConfig) -> None:
        x = self._input
        if x.shape[0] != cfg.dimension:
            raise ConfigurationError(
                f"input has {x.shape[0]} elements, the round needs {cfg.dimension}"
            )
        if cfg.bits < 64 and x.size and int(x.max()) >> cfg.bits:
            raise ConfigurationError(f"input has elements outside [0, 2^{cfg.bits})")

    def _fail(self, reason: AbortReason) -> None:
        self._erase()
        self.abort_reason = reason
        self.state = ClientState.ABORTED

    def _erase_own_seeds(self) -> None:
        if self._self_seed is not None:
            self._self_seed[:] = bytes(len(self._self_seed))
            self._self_seed = None
        self._pair_seeds.clear()
        self._channel_keys.clear()
        for key in (self._channel_key, self._mask_key):
            if key is not None:
                key.erase()
        self._channel_key = self._mask_key = None

    def _erase(self) -> None:
        self._erase_own_seeds()
        self._held_self_seed_shares.clear()
        self._held_mask_key_shares.clear()
        self._erase_input()

    def _erase_input(self) -> None:
        if self._input is not None:
            self._input.fill(0)
        self._input = None
