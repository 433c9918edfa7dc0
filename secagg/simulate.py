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
from secagg.errors import ProtocolAbort
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
) -> SimulationResult:
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
    clients = {
        u: SecAggClient(
            participant_id=u,
            signing_key=keys[u],
            roster=roster,
            aggregator_key=aggregator_key.public,
            policy=(policies or {}).get(u, policy),
        )
        for u in ids
    }
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
        for u, messages in outgoing.items():
            client = clients.get(u)
            if client is None or u in client_aborts:
                continue
            if u in dropouts and STAGES.index(dropouts[u]) < stage_index:
                continue  # gone before this stage
            if stage == "masked-input" and client.state is ClientState.SHARED:
                client.set_input(inputs[u])  # handed over only now: one input alive at a time
            for data in messages:
                down[u] += len(data)
                t0 = time.perf_counter()
                try:
                    reply = client.receive(data)
                except ProtocolAbort as exc:
                    client_aborts[u] = exc
                    reply = client.abort_message()
                p_seconds[stage][u] = p_seconds[stage].get(u, 0.0) + time.perf_counter() - t0
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

    for client in clients.values():
        client.close()  # dropped ones too: a participant that gives up erases its secrets
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
        clients=clients,
        server=server,
    )


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

    def __len__(self) -> int:
        return len(self._ids)


def random_inputs(n: int, dimension: int, bits: int, *, first_id: int = 1) -> dict[int, np.ndarray]:
    """Uniform random test inputs mod 2^bits, materialised."""
    lazy = RandomInputs(n, dimension, bits, first_id=first_id)
    return {u: lazy[u] for u in lazy}
