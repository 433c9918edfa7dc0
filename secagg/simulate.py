"""One aggregator and n participants in memory, exchanging serialized messages.

Used by tests (including adversarial ones, through the `tamper` hooks) and by
`blindsum bench secagg`. Everything crosses as bytes, so the byte counts are
the real wire sizes of the protobuf messages (without transport framing).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from secagg import crypto, wire
from secagg.client import ClientState, ParticipantPolicy, SecAggClient
from secagg.errors import AbortReason, ProtocolAbort
from secagg.graph import ThreatModel
from secagg.server import MapFunction, SecAggServer

# Stage names, in order; a participant "dropping at" a stage never sends its
# message of that stage (nor anything later). "consistency" is what the issue
# calls dropping "after sending its masked input".
STAGES = ("advertise-keys", "share-keys", "masked-input", "consistency", "unmasking")

# tamper(stage, outgoing) -> outgoing: the aggregator's messages of `stage`
# (recipient -> list of serialized ServerMessages), to rewrite, drop or add to.
ServerTamper = Callable[[str, dict[int, list[bytes]]], dict[int, list[bytes]]]
# client_tamper(stage, sender, message) -> message: a participant's reply, to corrupt.
ClientTamper = Callable[[str, int, bytes], bytes]


@dataclass
class SimulationResult:
    bits: int
    released: np.ndarray | None  # the aggregate, or None if the round aborted
    expected: np.ndarray | None  # plaintext sum of U3's inputs mod 2^bits
    server_abort: ProtocolAbort | None
    client_aborts: dict[int, ProtocolAbort]
    rejected: dict[int, ProtocolAbort]  # messages the server refused, by sender
    survivor_sets: dict[int, tuple[int, ...]]  # U1..U5
    k: int | None
    t: int | None
    full_graph: bool | None
    # What actually went out on the wire in UnmaskingResponses:
    # holder -> owner -> kinds ("self-seed", "mask-key") released.
    released_shares: dict[int, dict[int, set[str]]]
    participant_seconds: dict[str, dict[int, float]] = field(default_factory=dict)
    aggregator_seconds: dict[str, float] = field(default_factory=dict)
    bytes_up: dict[int, int] = field(default_factory=dict)
    bytes_down: dict[int, int] = field(default_factory=dict)
    clients: dict[int, SecAggClient] = field(default_factory=dict)
    server: SecAggServer | None = None

    @property
    def correct(self) -> bool:
        return (
            self.released is not None
            and self.expected is not None
            and np.array_equal(self.released, self.expected)
        )

    def participant_totals(self) -> dict[int, float]:
        """Each participant's protocol seconds, summed over all stages."""
        totals: dict[int, float] = defaultdict(float)
        for stage_times in self.participant_seconds.values():
            for u, seconds in stage_times.items():
                totals[u] += seconds
        return dict(totals)

    def both_shares_released(self) -> list[tuple[int, int]]:
        """(holder, owner) pairs where one holder gave up both shares of one owner."""
        return [
            (holder, owner)
            for holder, record in self.released_shares.items()
            for owner, kinds in record.items()
            if len(kinds) > 1
        ]

    def owners_with_both_kinds(self) -> list[int]:
        """Owners of whom the aggregator got both kinds of share (from any holders)."""
        kinds: dict[int, set[str]] = defaultdict(set)
        for record in self.released_shares.values():
            for owner, k in record.items():
                kinds[owner] |= k
        return sorted(o for o, k in kinds.items() if len(k) > 1)


def make_federation(
    ids: list[int],
) -> tuple[crypto.SigningKey, dict[int, crypto.SigningKey], dict[int, bytes]]:
    """Fresh long-term keys: the aggregator's, each participant's, and the public roster."""
    aggregator = crypto.SigningKey.generate()
    keys = {u: crypto.SigningKey.generate() for u in ids}
    return aggregator, keys, {u: k.public for u, k in keys.items()}


def run_simulation(
    inputs: Mapping[int, np.ndarray],
    *,
    bits: int,
    graph: str = "harary",
    threat: ThreatModel | None = None,
    policy: ParticipantPolicy | None = None,
    policies: Mapping[int, ParticipantPolicy] | None = None,
    minimum_aggregate: int = 3,
    dropouts: Mapping[int, str] | None = None,
    tamper: ServerTamper | None = None,
    client_tamper: ClientTamper | None = None,
    map_function: MapFunction | None = None,
    workers: int = 1,
    vector_name: str = "update",
    federation: tuple[crypto.SigningKey, dict[int, crypto.SigningKey], dict[int, bytes]]
    | None = None,
    participants_in_subprocess: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> SimulationResult:
    """Run one session. participants_in_subprocess puts every participant in a child
    process (messages cross a pipe as bytes), so this process's memory is the
    aggregator's alone; `clients` is then empty in the result. progress(stage,
    done, total) reports how many of the participants a stage's messages go to
    were handled so far (from 0 to total)."""
    ids = sorted(inputs)
    threat = threat or ThreatModel()
    policy = policy or ParticipantPolicy(minimum_aggregate=minimum_aggregate, threat=threat)
    dropouts = dict(dropouts or {})
    for u, stage in dropouts.items():
        if stage not in STAGES:
            raise ValueError(f"dropout stage {stage!r} for {u}: must be one of {', '.join(STAGES)}")
    dimension = len(inputs[next(iter(inputs))])
    aggregator_key, keys, roster = federation or make_federation(ids)
    server = SecAggServer(
        signing_key=aggregator_key,
        roster=roster,
        participants=ids,
        bits=bits,
        dimension=dimension,
        vector_name=vector_name,
        threat=threat,
        graph=graph,
        minimum_aggregate=minimum_aggregate,
        map_function=map_function,
        workers=workers,
    )
    client_policies = {u: (policies or {}).get(u, policy) for u in ids}
    if participants_in_subprocess:
        pool: _Participants = _SubprocessParticipants(
            ids, keys, roster, aggregator_key.public, client_policies, inputs
        )
    else:
        pool = _InProcessParticipants(
            ids, keys, roster, aggregator_key.public, client_policies, inputs
        )
    client_aborts: dict[int, ProtocolAbort] = {}
    rejected: dict[int, ProtocolAbort] = {}
    p_seconds: dict[str, dict[int, float]] = defaultdict(dict)
    a_seconds: dict[str, float] = defaultdict(float)
    up: dict[int, int] = defaultdict(int)
    down: dict[int, int] = defaultdict(int)
    server_abort: ProtocolAbort | None = None
    released: dict[int, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))

    def record_release(holder: int, reply: bytes) -> None:
        msg = wire.parse_client_message(reply)
        if msg.WhichOneof("body") == "unmasking_response":
            for s in msg.unmasking_response.self_seed_shares:
                released[holder][s.owner].add("self-seed")
            for s in msg.unmasking_response.mask_key_shares:
                released[holder][s.owner].add("mask-key")

    def deliver(stage_index: int, outgoing: dict[int, list[bytes]]) -> None:
        stage = STAGES[stage_index]
        for done, (u, messages) in enumerate(outgoing.items()):
            if progress is not None:
                progress(stage, done, len(outgoing))
            if u not in pool.ids or u in client_aborts:
                continue
            if u in dropouts and STAGES.index(dropouts[u]) < stage_index:
                continue  # gone before this stage
            for data in messages:
                down[u] += len(data)
                reply, abort, seconds = pool.handle(u, stage, data)
                if abort is not None:
                    client_aborts[u] = abort
                p_seconds[stage][u] = p_seconds[stage].get(u, 0.0) + seconds
                if reply is None or dropouts.get(u) == stage:
                    continue
                if client_tamper is not None and u not in client_aborts:
                    reply = client_tamper(stage, u, reply)
                up[u] += len(reply)
                if stage == "unmasking":
                    record_release(u, reply)
                t0 = time.perf_counter()
                try:
                    server.receive(u, reply)
                except ProtocolAbort as exc:
                    rejected[u] = exc
                a_seconds[stage] += time.perf_counter() - t0
                if u in client_aborts:
                    break
        if progress is not None:
            progress(stage, len(outgoing), len(outgoing))

    t0 = time.perf_counter()
    start = server.start()
    a_seconds[STAGES[0]] += time.perf_counter() - t0
    outgoing: dict[int, list[bytes]] = {u: [start] for u in ids}
    for index, stage in enumerate(STAGES):
        if tamper is not None:
            outgoing = tamper(stage, outgoing)
        deliver(index, outgoing)
        t0 = time.perf_counter()
        try:
            nxt = server.advance()
        except ProtocolAbort as exc:
            server_abort = exc
            abort = server.abort_message()
            deliver(index + 1 if index + 1 < len(STAGES) else index, {u: [abort] for u in ids})
            break
        finally:
            a_seconds[stage] += time.perf_counter() - t0
        outgoing = {u: [m] for u, m in nxt.items()}

    pool.close()  # dropped ones too: a participant that gives up erases its secrets
    u = server.u
    expected = None
    if 3 in u:
        dtype = crypto.mask_dtype(bits)
        expected = np.zeros(dimension, dtype=dtype)
        for v in u[3]:
            np.add(expected, np.asarray(inputs[v], dtype=dtype), out=expected)
        crypto.reduce_mod(expected, bits)
    params = server.params
    return SimulationResult(
        bits=bits,
        released=server.result,
        expected=expected,
        server_abort=server_abort,
        client_aborts=client_aborts,
        rejected=rejected,
        survivor_sets=u,
        k=params.k if params else None,
        t=params.t if params else None,
        full_graph=params.full if params else None,
        released_shares={h: {o: set(k) for o, k in r.items()} for h, r in released.items()},
        participant_seconds=dict(p_seconds),
        aggregator_seconds=dict(a_seconds),
        bytes_up=dict(up),
        bytes_down=dict(down),
        clients=pool.clients,
        server=server,
    )


class _Participants:
    """Where the simulated participants live: this process or a child process."""

    ids: frozenset[int]
    clients: dict[int, SecAggClient]

    def handle(
        self, u: int, stage: str, data: bytes
    ) -> tuple[bytes | None, ProtocolAbort | None, float]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _InProcessParticipants(_Participants):
    def __init__(self, ids, keys, roster, aggregator_public, policies, inputs) -> None:
        self.ids = frozenset(ids)
        self.inputs = inputs
        self.clients = {
            u: SecAggClient(
                participant_id=u, signing_key=keys[u], roster=roster,
                aggregator_key=aggregator_public, policy=policies[u],
            )
            for u in ids
        }  # fmt: skip

    def handle(self, u, stage, data):
        client = self.clients[u]
        if stage == "masked-input" and client.state is ClientState.SHARED:
            client.set_input(self.inputs[u])  # handed over only now: one input alive at a time
        t0 = time.perf_counter()
        try:
            return client.receive(data), None, time.perf_counter() - t0
        except ProtocolAbort as exc:
            return client.abort_message(), exc, time.perf_counter() - t0

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def _participant_process(conn, ids, seeds, roster, aggregator_public, policies, inputs) -> None:
    keys = {u: crypto.SigningKey.from_seed(seeds[u]) for u in ids}
    local = _InProcessParticipants(ids, keys, roster, aggregator_public, policies, inputs)
    while True:
        request = conn.recv()
        if request is None:
            local.close()
            conn.send(None)
            return
        reply, abort, seconds = local.handle(*request)
        flat = None if abort is None else (abort.reason.value, abort.detail, abort.culprit)
        conn.send((reply, flat, seconds))


class _SubprocessParticipants(_Participants):
    def __init__(self, ids, keys, roster, aggregator_public, policies, inputs) -> None:
        import multiprocessing

        self.ids = frozenset(ids)
        self.clients = {}
        ctx = multiprocessing.get_context("spawn")  # no inherited threads or locks
        self._conn, child = ctx.Pipe()
        seeds = {u: keys[u].seed_bytes() for u in ids}
        self._process = ctx.Process(
            target=_participant_process,
            args=(child, list(ids), seeds, roster, aggregator_public, policies, inputs),
            daemon=True,
        )
        self._process.start()
        child.close()

    def handle(self, u, stage, data):
        self._conn.send((u, stage, data))
        reply, flat, seconds = self._conn.recv()
        abort = (
            None if flat is None else ProtocolAbort(AbortReason(flat[0]), flat[1], culprit=flat[2])
        )
        return reply, abort, seconds

    def close(self) -> None:
        self._conn.send(None)
        self._conn.recv()
        self._process.join(timeout=30)


class RandomInputs(Mapping[int, np.ndarray]):
    """Uniform random test inputs mod 2^bits for ids first_id..first_id+n-1.

    Each vector is regenerated on access from a per-instance key, so a large
    simulation never holds more than the vectors in use (the benchmark measures
    the aggregator's memory, not the test data's).
    """

    def __init__(self, n: int, dimension: int, bits: int, *, first_id: int = 1) -> None:
        self._ids = range(first_id, first_id + n)
        self._dimension, self._bits = dimension, bits
        self._seed = crypto.random_bytes(32)
        self._generator = crypto.MaskGenerator()

    def __getitem__(self, u: int) -> np.ndarray:
        if u not in self._ids:
            raise KeyError(u)
        return self._generator.expand(
            self._seed, session=b"blindsum-test-inputs", owners=(u,), vector="input",
            length=self._dimension, bits=self._bits,
        )  # fmt: skip

    def __iter__(self):
        return iter(self._ids)

    def __getstate__(self) -> dict:  # picklable for a participants' process (the generator is not)
        return {
            "_ids": self._ids,
            "_dimension": self._dimension,
            "_bits": self._bits,
            "_seed": self._seed,
        }

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._generator = crypto.MaskGenerator()

    def __len__(self) -> int:
        return len(self._ids)


def random_inputs(n: int, dimension: int, bits: int, *, first_id: int = 1) -> dict[int, np.ndarray]:
    """Uniform random test inputs mod 2^bits, materialised."""
    lazy = RandomInputs(n, dimension, bits, first_id=first_id)
    return {u: lazy[u] for u in lazy}
