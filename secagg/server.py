"""The aggregator's secure-aggregation state machine (sans-I/O).

The driver (simulator or gRPC service) feeds it messages with
`receive(sender, bytes)`, where `sender` is the identity the transport
authenticated (never an id written in the message), and calls `advance()` when
every expected message is in or the stage deadline passed. `advance()` returns
the serialized messages for the next stage, keyed by recipient; after the last
stage the noised... (here: masked) sum is in `result`.

A message that fails a check is refused with `ProtocolAbort` (usually
`MalformedMessage`) and leaves the server's state unchanged: one bad participant
cannot corrupt the round. The round itself aborts (nothing released, secrets
erased) only when too few usable messages remain.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from blindsum.v1 import secagg_pb2 as pb
from secagg import crypto, shamir, wire
from secagg.errors import (
    AbortReason,
    ConfigurationError,
    CryptoError,
    MalformedMessage,
    ProtocolAbort,
)
from secagg.graph import (
    GraphParams,
    NeighbourGraph,
    ThreatModel,
    check_parameters,
    find_parameters,
    full_graph_parameters,
)
from secagg.processes import worker_pool


class ServerStage(enum.Enum):
    ADVERTISE_KEYS = 0
    SHARE_KEYS = 1
    MASKED_INPUT = 2
    CONSISTENCY = 3
    UNMASKING = 4
    DONE = 5
    ABORTED = 6


_EXPECTED = {
    ServerStage.ADVERTISE_KEYS: "advertise_keys",
    ServerStage.SHARE_KEYS: "share_keys",
    ServerStage.MASKED_INPUT: "masked_input",
    ServerStage.CONSISTENCY: "consistency_signature",
    ServerStage.UNMASKING: "unmasking_response",
}


@dataclass(frozen=True)
class MaskJob:
    """Masks of one participant to remove from the sum.

    A survivor's self mask (its rebuilt seed b_v), or every pairwise mask between
    a dropped participant (its rebuilt key s_v^SK) and its surviving neighbours:
    those X25519 agreements run in the worker too, since at scale they cost as
    much as the keystreams. Plain bytes, so a job can cross into a worker process.
    """

    owner: int
    self_seed: bytes | None = None
    mask_key: bytes | None = None
    survivors: tuple[tuple[int, bytes], ...] = ()  # (id, mask public key)

    @property
    def cost(self) -> int:
        """Relative work: one keystream, or per survivor an agreement and a keystream."""
        return 1 if self.self_seed is not None else 2 * len(self.survivors)

    def __repr__(self) -> str:  # never show a secret
        return f"MaskJob(owner={self.owner}, survivors={len(self.survivors)})"


# A map function (like builtins.map or Executor.map) the driver may pass to run
# mask jobs on several cores; the core itself never starts threads.
MapFunction = Callable[[Callable, Iterable], Iterable]


class SecAggServer:
    """The aggregator in one aggregation session."""

    def __init__(
        self,
        *,
        signing_key: crypto.SigningKey,
        roster: Mapping[int, bytes],
        participants: Sequence[int],
        bits: int,
        dimension: int,
        vector_name: str = "update",
        federation: str = "",
        round_number: int = 0,
        application: bytes = b"",
        threat: ThreatModel | None = None,
        graph: str = "harary",
        minimum_aggregate: int = 3,
        map_function: MapFunction | None = None,
        workers: int = 1,
    ) -> None:
        if not 1 <= bits <= wire.MAX_BITS:
            raise ConfigurationError(f"bits={bits}: must be in 1..{wire.MAX_BITS}")
        if not 1 <= dimension <= wire.MAX_DIMENSION:
            raise ConfigurationError(f"dimension={dimension}: must be in 1..{wire.MAX_DIMENSION}")
        if graph not in ("harary", "full"):
            raise ConfigurationError(f"graph={graph!r}: must be 'harary' or 'full'")
        unknown = set(participants) - set(roster)
        if unknown:
            raise ConfigurationError(f"participants not in the roster: {sorted(unknown)[:5]}")
        if len(set(participants)) < 3:
            raise ConfigurationError("at least 3 participants are needed")
        self._signing_key = signing_key
        self._roster = dict(roster)
        self.bits = bits
        self.dimension = dimension
        self.threat = threat or ThreatModel()
        self.graph_kind = graph
        self.minimum_aggregate = max(2, minimum_aggregate)
        self._map = map_function or map
        self._workers = max(1, workers)
        cfg = pb.RoundConfig(
            federation=federation,
            round=round_number,
            nonce=crypto.random_bytes(wire.NONCE_BYTES),
            participants=sorted(set(participants)),
            bits=bits,
            dimension=dimension,
            vector_name=vector_name,
            application=application,
        )
        self.config = cfg
        self._config_bytes = cfg.SerializeToString()
        self.config_digest = wire.config_digest(self._config_bytes)
        self.stage = ServerStage.ADVERTISE_KEYS
        self.abort_reason: AbortReason | None = None
        self.session_id = b""
        self.params: GraphParams | None = None
        self.graph: NeighbourGraph | None = None
        # Per-stage sets of participants heard from (U1..U5).
        self.survivor_sets: list[tuple[int, ...]] = []
        self._received: dict[int, pb.Message] = {}
        self.refused: dict[int, str] = {}  # participants that sent an Abort, with their reason
        self.misbehaving: dict[int, AbortReason] = {}
        self._advertisements: dict[int, pb.AdvertiseKeys] = {}
        self._advertised_keys: set[bytes] = set()
        self._share_index: dict[int, dict[int, pb.EncryptedShares]] = {}
        self._share_keys: dict[int, pb.ShareKeys] = {}
        self._signatures: dict[int, pb.ConsistencySignature] = {}
        self._sum: np.ndarray | None = None
        self.result: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"SecAggServer(stage={self.stage.name}, n={len(self.config.participants)})"

    # -- public API ------------------------------------------------------------

    @property
    def u(self) -> dict[int, tuple[int, ...]]:
        """U1..U5 so far, keyed 1..5."""
        return {i + 1: s for i, s in enumerate(self.survivor_sets)}

    def start(self) -> bytes:
        """The signed round config to send to every invited participant."""
        signed = pb.SignedRoundConfig(
            round_config=self._config_bytes,
            signature=self._signing_key.sign(self.config_digest),
        )
        return pb.ServerMessage(round_config=signed).SerializeToString()

    def expected(self) -> frozenset[int]:
        """Who may still send a message in the current stage."""
        if self.stage is ServerStage.ADVERTISE_KEYS:
            pool: Iterable[int] = self.config.participants
        elif self.stage in (ServerStage.DONE, ServerStage.ABORTED):
            return frozenset()
        else:
            pool = self.survivor_sets[-1]
        return frozenset(pool) - self._received.keys() - self.refused.keys()

    def receive(self, sender: int, data: bytes) -> None:
        """Take one message from the authenticated participant `sender`.

        Raises ProtocolAbort (the message is refused, the round goes on) without
        changing any state, except that a participant caught returning a bad
        share is recorded in `misbehaving` and excluded.
        """
        if self.stage in (ServerStage.DONE, ServerStage.ABORTED):
            raise ProtocolAbort(AbortReason.WRONG_STAGE, "the session is over", culprit=sender)
        msg = wire.parse_client_message(data)
        kind = msg.WhichOneof("body")
        pool = (
            self.config.participants
            if self.stage is ServerStage.ADVERTISE_KEYS
            else self.survivor_sets[-1]
        )
        if sender not in pool:
            raise ProtocolAbort(
                AbortReason.UNKNOWN_PARTICIPANT,
                f"{sender} is not expected in this stage",
                culprit=sender,
            )
        if sender in self._received or sender in self.refused:
            raise ProtocolAbort(
                AbortReason.REPLAY, f"second message from {sender} in this stage", culprit=sender
            )
        if kind == "abort":
            self.refused[sender] = msg.abort.reason[:64]
            return
        if kind != _EXPECTED[self.stage]:
            raise ProtocolAbort(
                AbortReason.WRONG_STAGE, f"{kind} during {self.stage.name}", culprit=sender
            )
        body = getattr(msg, kind)
        if body.sender != sender:
            raise MalformedMessage(
                f"sender field {body.sender} is not the authenticated peer {sender}", culprit=sender
            )
        if kind != "advertise_keys" and body.session_id != self.session_id:
            raise ProtocolAbort(
                AbortReason.WRONG_SESSION,
                f"message from {sender} for another session",
                culprit=sender,
            )
        getattr(self, f"_check_{kind}")(sender, body)
        # A masked input was summed on arrival; keep only who sent it (holding the
        # parsed message would keep its whole arena, and so d lanes per participant).
        self._received[sender] = body if kind != "masked_input" else pb.MaskedInput(sender=sender)

    def advance(self) -> dict[int, bytes]:
        """Close the current stage; return the next stage's messages by recipient."""
        if self.stage in (ServerStage.DONE, ServerStage.ABORTED):
            raise ProtocolAbort(AbortReason.WRONG_STAGE, "the session is over")
        heard = tuple(sorted(self._received))
        self.survivor_sets.append(heard)
        received, self._received = self._received, {}
        try:
            return getattr(self, f"_close_{_EXPECTED[self.stage]}")(received)
        except ProtocolAbort as exc:
            self._fail(exc.reason)
            raise
        except Exception as exc:  # e.g. a mask worker process died: fail closed
            self._fail(AbortReason.INTERNAL_ERROR)
            raise ProtocolAbort(AbortReason.INTERNAL_ERROR, type(exc).__name__) from exc

    def close(self) -> None:
        """Give up the session (shutdown): nothing will be released; state erased."""
        if self.stage is not ServerStage.DONE:
            self._fail(AbortReason.SHUTDOWN)

    def abort_message(self) -> bytes:
        reason = self.abort_reason.value if self.abort_reason else "aborted"
        return pb.ServerMessage(
            abort=pb.Abort(session_id=self.session_id, reason=reason)
        ).SerializeToString()

    # -- stage 0 ---------------------------------------------------------------

    def _check_advertise_keys(self, sender: int, ad: pb.AdvertiseKeys) -> None:
        if ad.config_digest != self.config_digest:
            raise ProtocolAbort(
                AbortReason.CONFIG_MISMATCH,
                f"{sender} advertised for another config",
                culprit=sender,
            )
        for key in (ad.channel_public_key, ad.mask_public_key):
            if len(key) != wire.PUBLIC_KEY_BYTES:
                raise MalformedMessage(
                    f"public key of {sender} has {len(key)} bytes", culprit=sender
                )
        keys = {ad.channel_public_key, ad.mask_public_key}
        if len(keys) != 2 or keys & self._advertised_keys:
            raise ProtocolAbort(
                AbortReason.DUPLICATE_KEY,
                f"{sender} advertised a key already in use",
                culprit=sender,
            )
        payload = wire.advertise_payload(
            ad.config_digest, sender, ad.channel_public_key, ad.mask_public_key
        )
        if not crypto.verify_signature(self._roster[sender], payload, ad.signature):
            raise ProtocolAbort(
                AbortReason.BAD_SIGNATURE, f"advertisement of {sender}", culprit=sender
            )
        self._advertised_keys |= keys  # last step: a refused message changes nothing

    def _close_advertise_keys(self, received: dict[int, pb.AdvertiseKeys]) -> dict[int, bytes]:
        n = len(received)
        if n < max(3, self.minimum_aggregate):
            raise ProtocolAbort(
                AbortReason.NOT_ENOUGH_PARTICIPANTS, f"only {n} participants advertised keys"
            )
        try:
            params = (
                full_graph_parameters(n, self.threat)
                if self.graph_kind == "full"
                else find_parameters(n, self.threat)
            )
            check_parameters(params, self.threat)
        except ConfigurationError as exc:
            raise ProtocolAbort(AbortReason.NOT_ENOUGH_PARTICIPANTS, str(exc)) from exc
        ids = sorted(received)
        self._advertisements = received
        self.session_id = crypto.session_id(
            self.config_digest,
            [(u, received[u].channel_public_key, received[u].mask_public_key) for u in ids],
        )
        self.params = params
        self.graph = NeighbourGraph.build(ids, params, self.session_id)
        request = pb.ShareKeysRequest(
            graph=pb.GraphParameters(n=params.n, k=params.k, t=params.t, full=params.full),
            advertisements=[received[u] for u in ids],
        )
        data = pb.ServerMessage(share_keys_request=request).SerializeToString()
        self.stage = ServerStage.SHARE_KEYS
        return {u: data for u in ids}

    # -- stage 1 ---------------------------------------------------------------

    def _check_share_keys(self, sender: int, msg: pb.ShareKeys) -> None:
        if len(msg.self_seed_commitment) != wire.DIGEST_BYTES:
            raise MalformedMessage(
                f"self-seed commitment of {sender} has the wrong length", culprit=sender
            )
        recipients = [s.recipient for s in msg.shares]
        if recipients != list(self.graph.neighbours(sender)):
            raise MalformedMessage(
                f"{sender} sent shares to other parties than its neighbours", culprit=sender
            )
        for s in msg.shares:
            if (
                len(s.self_seed_share_commitment) != wire.DIGEST_BYTES
                or len(s.mask_key_share_commitment) != wire.DIGEST_BYTES
                or not 0 < len(s.ciphertext) <= 1024
            ):
                raise MalformedMessage(
                    f"share ciphertext from {sender} has the wrong size", culprit=sender
                )
        if not crypto.verify_signature(
            self._roster[sender], wire.share_keys_payload(msg), msg.signature
        ):
            raise ProtocolAbort(
                AbortReason.BAD_SIGNATURE, f"share keys of {sender}", culprit=sender
            )

    def _close_share_keys(self, received: dict[int, pb.ShareKeys]) -> dict[int, bytes]:
        t = self.params.t
        self._share_keys = received
        u2 = set(received)
        if len(u2) < max(t, self.minimum_aggregate):
            raise ProtocolAbort(
                AbortReason.NOT_ENOUGH_PARTICIPANTS, f"{len(u2)} participants shared keys, t={t}"
            )
        out: dict[int, bytes] = {}
        for u in sorted(u2):
            req = pb.MaskedInputRequest(session_id=self.session_id)
            for v in self.graph.neighbours(u):
                if v in u2:
                    req.shares.add(sender=v, shares=self._share_for(v, u))
            out[u] = pb.ServerMessage(masked_input_request=req).SerializeToString()
        self.stage = ServerStage.MASKED_INPUT
        return out

    def _share_for(self, owner: int, holder: int) -> pb.EncryptedShares:
        # An owner's shares are sorted by recipient = its sorted neighbour list (checked
        # on arrival); the holder -> share map is built once per owner, since routing
        # and the unmasking checks look up O(n k) shares.
        by_holder = self._share_index.get(owner)
        if by_holder is None:
            by_holder = self._share_index[owner] = dict(
                zip(self.graph.neighbours(owner), self._share_keys[owner].shares, strict=True)
            )
        return by_holder[holder]

    # -- stage 2 ---------------------------------------------------------------

    def _check_masked_input(self, sender: int, msg: pb.MaskedInput) -> None:
        vec = wire.decode_vector(msg.vector, self.dimension, self.bits, culprit=sender)
        if self._sum is None:
            self._sum = np.zeros(self.dimension, dtype=crypto.mask_dtype(self.bits))
        # Summed on arrival (wrap-around mod the lane width is free), so memory
        # stays one vector whatever n is; the vector itself is not kept.
        np.add(self._sum, vec, out=self._sum)

    def _close_masked_input(self, received: dict[int, pb.MaskedInput]) -> dict[int, bytes]:
        u3 = sorted(received)
        need = max(self.params.t, self.minimum_aggregate)
        if len(u3) < need:
            raise ProtocolAbort(
                AbortReason.NOT_ENOUGH_PARTICIPANTS, f"{len(u3)} masked inputs < {need}"
            )
        data = pb.ServerMessage(
            consistency_request=pb.ConsistencyRequest(session_id=self.session_id, survivors=u3)
        ).SerializeToString()
        self.stage = ServerStage.CONSISTENCY
        return {u: data for u in u3}

    # -- stage 3 ---------------------------------------------------------------

    def _check_consistency_signature(self, sender: int, msg: pb.ConsistencySignature) -> None:
        expected = wire.survivors_digest(self.survivor_sets[2])
        if msg.survivors_digest != expected:
            raise ProtocolAbort(
                AbortReason.INCONSISTENT_SURVIVORS, f"{sender} signed another U3", culprit=sender
            )
        payload = wire.consistency_payload(self.session_id, msg.survivors_digest)
        if not crypto.verify_signature(self._roster[sender], payload, msg.signature):
            raise ProtocolAbort(
                AbortReason.BAD_SIGNATURE, f"consistency signature of {sender}", culprit=sender
            )

    def _close_consistency_signature(
        self, received: dict[int, pb.ConsistencySignature]
    ) -> dict[int, bytes]:
        t = self.params.t
        if len(received) < t:
            raise ProtocolAbort(
                AbortReason.NOT_ENOUGH_PARTICIPANTS,
                f"{len(received)} consistency signatures < t={t}",
            )
        self._signatures = received
        u2, u3 = set(self.survivor_sets[1]), set(self.survivor_sets[2])
        out: dict[int, bytes] = {}
        for u in sorted(received):
            neighbours = self.graph.neighbours(u)
            req = pb.UnmaskingRequest(
                session_id=self.session_id,
                signatures=[received[v] for v in neighbours if v in received],
                alive=[v for v in neighbours if v in u3],
                dead=[v for v in neighbours if v in u2 and v not in u3],
            )
            out[u] = pb.ServerMessage(unmasking_request=req).SerializeToString()
        self.stage = ServerStage.UNMASKING
        return out

    # -- stage 4 ---------------------------------------------------------------

    def _check_unmasking_response(self, sender: int, msg: pb.UnmaskingResponse) -> None:
        u2, u3 = set(self.survivor_sets[1]), set(self.survivor_sets[2])
        neighbours = self.graph.neighbours(sender)
        want_seed = [v for v in neighbours if v in u3]
        want_key = [v for v in neighbours if v in u2 and v not in u3]
        if [s.owner for s in msg.self_seed_shares] != want_seed or [
            s.owner for s in msg.mask_key_shares
        ] != want_key:
            raise MalformedMessage(
                f"unmasking response of {sender} does not answer the request", culprit=sender
            )
        commit = wire.SessionCommitters(self.session_id)
        for shares, commit_share, field in (
            (msg.self_seed_shares, commit.self_seed_share, "self_seed_share_commitment"),
            (msg.mask_key_shares, commit.mask_key_share, "mask_key_share_commitment"),
        ):
            for s in shares:
                committed = getattr(self._share_for(s.owner, sender), field)
                if commit_share(s.share, owner=s.owner, holder=sender) != committed:
                    self.misbehaving[sender] = AbortReason.BAD_SHARE
                    raise ProtocolAbort(
                        AbortReason.BAD_SHARE,
                        f"{sender} returned a bad share of {s.owner}",
                        culprit=sender,
                    )

    def _close_unmasking_response(
        self, received: dict[int, pb.UnmaskingResponse]
    ) -> dict[int, bytes]:
        t = self.params.t
        if len(received) < t:
            raise ProtocolAbort(
                AbortReason.NOT_ENOUGH_PARTICIPANTS, f"{len(received)} unmasking responses < t={t}"
            )
        u2, u3 = set(self.survivor_sets[1]), set(self.survivor_sets[2])
        seed_shares: dict[int, dict[int, bytes]] = {v: {} for v in u3}
        key_shares: dict[int, dict[int, bytes]] = {v: {} for v in u2 - u3}
        for holder, resp in received.items():
            for s in resp.self_seed_shares:
                seed_shares[s.owner][holder] = s.share
            for s in resp.mask_key_shares:
                key_shares[s.owner][holder] = s.share
        for owner, shares in list(seed_shares.items()) + list(key_shares.items()):
            if len(shares) < t:
                raise ProtocolAbort(
                    AbortReason.NOT_ENOUGH_PARTICIPANTS,
                    f"{len(shares)} shares of {owner} returned, t={t}",
                )
        jobs: list[MaskJob] = []
        owners = sorted(seed_shares)
        commit = wire.SessionCommitters(self.session_id)
        for v, seed in zip(
            owners, shamir.combine_many([seed_shares[v] for v in owners], t), strict=True
        ):
            if commit.self_seed(seed, owner=v) != self._share_keys[v].self_seed_commitment:
                raise ProtocolAbort(
                    AbortReason.REBUILD_MISMATCH, f"rebuilt self seed of {v}", culprit=v
                )
            jobs.append(MaskJob(v, self_seed=seed))
        dead = sorted(key_shares)
        rebuilt_keys: list[crypto.AgreementKey] = []
        try:
            for v, secret in zip(
                dead, shamir.combine_many([key_shares[v] for v in dead], t), strict=True
            ):
                try:
                    key = crypto.AgreementKey.from_secret(secret)
                except CryptoError as exc:
                    raise ProtocolAbort(
                        AbortReason.REBUILD_MISMATCH, f"rebuilt mask key of {v}", culprit=v
                    ) from exc
                rebuilt_keys.append(key)
                if key.public != self._advertisements[v].mask_public_key:
                    raise ProtocolAbort(
                        AbortReason.REBUILD_MISMATCH, f"rebuilt mask key of {v}", culprit=v
                    )
                survivors = tuple(
                    (u, self._advertisements[u].mask_public_key)
                    for u in self.graph.neighbours(v)
                    if u in u3
                )
                jobs.append(MaskJob(v, mask_key=secret, survivors=survivors))
            self._remove_masks(jobs)
        finally:
            for key in rebuilt_keys:
                key.erase()
        crypto.reduce_mod(self._sum, self.bits)
        self.result, self._sum = self._sum, None
        self.stage = ServerStage.DONE
        self._share_keys.clear()
        self._share_index.clear()
        return {}

    def _remove_masks(self, jobs: list[MaskJob]) -> None:
        """Apply every mask job to the running sum, spread over `workers` partial sums.

        Largest jobs first, each to the group with the least work so far;
        `_mask_group` is a module-level function, so the map may be a thread pool
        or a process pool.
        """
        if not jobs:
            return
        groups: list[list[MaskJob]] = [[] for _ in range(min(self._workers, len(jobs)))]
        load = [0] * len(groups)
        for job in sorted(jobs, key=lambda j: j.cost, reverse=True):
            lightest = load.index(min(load))
            groups[lightest].append(job)
            load[lightest] += job.cost
        common = (self.session_id, self.config.vector_name, self.bits, self._sum.shape[0])
        for partial in self._map(_mask_group, [(*common, group) for group in groups]):
            np.add(self._sum, partial, out=self._sum)

    def _fail(self, reason: AbortReason) -> None:
        self.abort_reason = reason
        self.stage = ServerStage.ABORTED
        self._sum = None
        self.result = None
        self._share_keys.clear()
        self._share_index.clear()


def _mask_group(task: tuple[bytes, str, int, int, list[MaskJob]]) -> np.ndarray:
    """The sum of one group of mask jobs, as a partial sum of `length` lanes."""
    session, vector, bits, length, group = task
    acc = np.zeros(length, dtype=crypto.mask_dtype(bits))
    gen = crypto.MaskGenerator()
    options = {"session": session, "vector": vector, "bits": bits}
    gen.add_many(
        acc, [(j.self_seed, (j.owner,), True) for j in group if j.self_seed is not None], **options
    )
    for job in group:
        if job.mask_key is None:
            continue
        key = crypto.AgreementKey.from_secret(job.mask_key)
        try:
            seeds = crypto.agree_many(
                key,
                job.survivors,
                own_id=job.owner,
                session=session,
                purpose=crypto.PAIR_MASK_PURPOSE,
            )
        finally:
            key.erase()
        # survivor u added +PRG(s_uv) if u < v, else -PRG(s_uv): undo it
        gen.add_many(
            acc,
            [
                (seed, (u, job.owner), u < job.owner)
                for seed, (u, _) in zip(seeds, job.survivors, strict=True)
            ],
            **options,
        )
    return acc


def mask_worker_pool(workers: int, *, wait: bool = True) -> ProcessPoolExecutor:
    """Worker processes for `map_function=pool.map` (mask removal without the GIL);
    see `secagg.processes.worker_pool`. Start-up (interpreter, numpy, pycryptodome)
    happens here, before any round; with wait=False it continues in the background.
    """
    pool = worker_pool(workers)
    ready = [pool.submit(_worker_ready) for _ in range(workers)]
    if wait:
        for future in ready:
            future.result()
    return pool


def _worker_ready() -> None:
    """Nothing: importing this module is what a worker needs to unpickle a mask job."""
